"""Checks for run parameters, applied before any sandbox starts or any money is spent.

Each function returns the value in its canonical type or raises :class:`ValidationError` with one
sentence that names the parameter, the bad value and what to pass instead. Strings of digits are
accepted where a number is expected because the command line hands every value over as text.
"""

from __future__ import annotations

import math
import numbers
import re

from .errors import ValidationError

# ASCII only: ``int()`` also accepts digits of other scripts, which no CLI user means.
_DIGITS = re.compile(r"[0-9]+")
_MAX_SHOWN = 60


def _shown(value: object) -> str:
    """The bad value as it appears in a message, cut short so a long prompt cannot flood it."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _as_int(value: object) -> int | None:
    """``value`` as an int if it is a whole number given as an int or a string of digits."""
    # bool is an int subclass, but ``max_concurrent=True`` is a mistake, not the number 1.
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    return None


def gitignore_patterns(name: str, value: object) -> tuple[str, ...]:
    """``value`` as a tuple of one-line gitignore patterns (``[".venv/", "*.log"]``; ``[]``)."""
    example = f"{name}=['.venv/', 'node_modules/', '*.log'], or {name}=[] to keep everything"
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        raise ValidationError(
            f"{name} must be a list of gitignore patterns, got {_shown(value)}; pass {example}."
        )
    patterns: list[str] = []
    for pattern in value:
        one_line = isinstance(pattern, str) and "\n" not in pattern and "\0" not in pattern
        if not one_line or not pattern.strip():
            raise ValidationError(
                f"{name} holds {_shown(pattern)}, which is not a one-line gitignore pattern; "
                f"pass {example}."
            )
        patterns.append(pattern)
    return tuple(dict.fromkeys(patterns))


def positive_int(name: str, value: object) -> int:
    """``value`` as an int of at least 1; ``"3"`` passes, ``0``, ``2.5`` and ``"3abc"`` do not."""
    number = _as_int(value)
    if number is None or number < 1:
        raise ValidationError(
            f"{name} must be a whole number of at least 1, got {_shown(value)}; "
            f"pass for example {name}=3."
        )
    return number


def non_negative_int(name: str, value: object) -> int:
    """``value`` as an int of at least 0; ``"2"`` is accepted, ``-1``, ``1.5``, ``None`` are not."""
    number = _as_int(value)
    if number is None:
        raise ValidationError(
            f"{name} must be a whole number of 0 or more, got {_shown(value)}; "
            f"pass for example {name}=0 or {name}=2."
        )
    if number < 0:
        raise ValidationError(
            f"{name} must be a whole number of 0 or more, got {_shown(value)}; "
            f"pass {name}=0 to turn it off."
        )
    return number


def _as_float(value: object) -> float | None:
    """``value`` as a float if it is a real number or a string that spells one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def positive_float(name: str, value: object) -> float:
    """``value`` as a finite float above 0: ``"1.5"`` passes; ``0``, ``"nan"``, ``"2x"`` do not."""
    number = _finite_positive(value)
    if number is None:
        raise ValidationError(
            f"{name} must be a finite number above 0, got {_shown(value)}; "
            f"pass for example {name}=1.5."
        )
    return number


def optional_positive_float(name: str, value: object) -> float | None:
    """``None``, or ``value`` as a finite float above 0 (``"1.5"`` is accepted, ``0`` is not)."""
    if value is None:
        return None
    number = _finite_positive(value)
    if number is None:
        raise ValidationError(
            f"{name} must be a finite number above 0 or None, got {_shown(value)}; "
            f"pass for example {name}=1.5, or {name}=None for no limit."
        )
    return number


def _finite_positive(value: object) -> float | None:
    number = _as_float(value)
    return number if number is not None and math.isfinite(number) and number > 0 else None

