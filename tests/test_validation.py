"""Run parameter checks: good values come back in canonical form, bad ones raise one sentence."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from parallelcc_sdk.errors import ParallelCCError, ValidationError
from parallelcc_sdk.validation import (
    non_negative_int,
    optional_positive_float,
    positive_int,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1), (3, 3), (64, 64), ("3", 3), (" 12 ", 12), ("007", 7), (np.int64(4), 4)],
)
def test_positive_int_accepts_whole_numbers_of_at_least_one(value: object, expected: int) -> None:
    result = positive_int("max_concurrent", value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        2.5,
        3.0,
        "3abc",
        "2.5",
        "",
        "-1",
        "0",
        "٣",
        math.nan,
        math.inf,
        None,
        True,
        False,
        [3],
    ],
)
def test_positive_int_rejects_everything_else(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        positive_int("max_concurrent", value)
    message = str(caught.value)
    assert message.startswith("max_concurrent must be a whole number of at least 1")
    assert f"got {value!r}" in message
    assert "max_concurrent=3" in message


def test_validation_error_is_part_of_the_sdk_hierarchy() -> None:
    with pytest.raises(ParallelCCError):
        positive_int("max_concurrent", 0)
    with pytest.raises(ValueError):
        positive_int("max_concurrent", 0)


def test_long_bad_values_are_cut_short_in_the_message() -> None:
    with pytest.raises(ValidationError) as caught:
        positive_int("max_concurrent", "x" * 500)
    assert len(str(caught.value)) < 200
    assert "..." in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0), (1, 1), (5, 5), ("0", 0), ("2", 2), (np.int32(3), 3)]
)
def test_non_negative_int_accepts_zero_and_up(value: object, expected: int) -> None:
    result = non_negative_int("retries", value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    "value", [-1, -5, "-1", 1.5, 1.0, "1.5", "two", None, True, math.nan, math.inf]
)
def test_non_negative_int_rejects_everything_else(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        non_negative_int("retries", value)
    message = str(caught.value)
    assert message.startswith("retries must be a whole number of 0 or more")
    assert f"got {value!r}" in message
    assert "retries=0" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (1, 1.0),
        (0.5, 0.5),
        (600, 600.0),
        ("2.5", 2.5),
        (" 30 ", 30.0),
        ("1e3", 1000.0),
        (np.float64(1.25), 1.25),
        (Fraction(1, 4), 0.25),
    ],
)
def test_optional_positive_float_accepts_none_and_positive_finite_numbers(
    value: object, expected: float | None
) -> None:
    result = optional_positive_float("task_timeout", value)
    assert result == expected
    if expected is not None:
        assert type(result) is float


@pytest.mark.parametrize(
    "value",
    [
        0,
        0.0,
        -1,
        -0.5,
        "0",
        "-3",
        math.nan,
        math.inf,
        -math.inf,
        "nan",
        "inf",
        True,
        False,
        "abc",
        "",
        [1],
    ],
)
def test_optional_positive_float_rejects_everything_else(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        optional_positive_float("budget_usd", value)
    message = str(caught.value)
    assert message.startswith("budget_usd must be a finite number above 0 or None")
    assert f"got {value!r}" in message
    assert "budget_usd=None" in message
