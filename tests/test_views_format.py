"""The one set of formatters every renderer uses: durations, costs, counts, end states."""

from __future__ import annotations

import subprocess
import sys

import pytest

from parallelcc_sdk.models import STATUS_ORDER, TaskResult, TaskStatus, count_statuses
from parallelcc_sdk.views import format as fmt


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0.0s"),
        (45.24, "45.2s"),
        (59.94, "59.9s"),
        (59.96, "1m 00s"),
        (185, "3m 05s"),
        (3599.6, "1h 00m 00s"),
        (7384, "2h 03m 04s"),
        (7200, "2h 00m 00s"),
        (90061, "25h 01m 01s"),
        (-3, "0.0s"),
        (None, "—"),
        (float("nan"), "—"),
    ],
)
def test_duration(seconds: float | None, text: str) -> None:
    assert fmt.duration(seconds) == text


def test_cost_of_a_task_and_of_a_run() -> None:
    assert fmt.cost(0.0123) == "$0.0123"
    assert fmt.cost(0.0) == "$0.0000"
    assert fmt.cost(12.345) == "$12.35"
    assert fmt.cost(1234.5) == "$1,234.50"
    assert fmt.cost(None) == fmt.cost(float("nan")) == "—"
    # A total nobody reported says so; it is not a free run.
    assert fmt.total_cost(None) == fmt.total_cost(float("nan")) == "not reported"
    assert fmt.total_cost(0.5) == "$0.5000"


def test_every_status_has_one_symbol_and_a_place_in_the_display_order() -> None:
    assert sorted(fmt.STATUS_SYMBOLS) == sorted(STATUS_ORDER)
    assert sorted(fmt.DISPLAY_ORDER) == sorted(STATUS_ORDER)
    assert len(set(fmt.STATUS_SYMBOLS.values())) == len(STATUS_ORDER)
    assert fmt.status_symbol("cancelled") == "⊘"
    assert fmt.status_label("timed_out") == "timed out"


def counts(**numbers: int) -> dict[str, int]:
    return {status: numbers.get(status, 0) for status in STATUS_ORDER}


def test_count_phrase_puts_outcomes_first() -> None:
    assert fmt.count_phrase(counts(running=2, completed=3, failed=1)) == (
        "3 completed, 1 failed, 2 running"
    )
    assert fmt.count_phrase(counts(timed_out=1, cancelled=4), sep=" · ") == (
        "1 timed out · 4 cancelled"
    )
    assert fmt.count_phrase(counts()) == "no tasks"


@pytest.mark.parametrize(
    ("state", "numbers", "text"),
    [
        ("running", {"completed": 3, "failed": 1, "running": 2}, "4 of 6 done: "),
        ("finished", {"completed": 6}, "finished: 6 completed"),
        ("cancelled", {"completed": 4, "cancelled": 26}, "cancelled: 4 completed, 26 cancelled"),
        ("interrupted", {"cancelled": 6}, "interrupted: 6 cancelled"),
    ],
)
def test_run_outcome_says_how_the_run_ended_not_n_of_n_done(
    state: str, numbers: dict[str, int], text: str
) -> None:
    outcome = fmt.run_outcome(state, counts(**numbers))
    assert outcome.startswith(text)
    if state != "running":
        assert "done" not in outcome


def test_end_state_of_a_loaded_run() -> None:
    assert fmt.end_state(counts(completed=2, failed=1)) == "finished"
    assert fmt.end_state(counts(completed=2, cancelled=1)) == "cancelled"
    assert fmt.end_state(counts(completed=2, running=1, cancelled=1)) == "interrupted"


def test_count_statuses_lists_every_status_in_order() -> None:
    records = [
        TaskResult("a", "p", status=TaskStatus.FAILED),
        TaskResult("b", "p", status=TaskStatus.FAILED),
        TaskResult("c", "p"),
    ]
    assert count_statuses(records) == counts(failed=2, pending=1)
    assert list(count_statuses([])) == list(STATUS_ORDER)


def test_isolation_phrase() -> None:
    assert fmt.isolation_phrase({}) is None
    assert fmt.isolation_phrase({"bubblewrap": 3}) == "bubblewrap"
    assert fmt.isolation_phrase({"none": 1, "bubblewrap": 3}) == "bubblewrap 3, none 1"


def test_one_line_and_last_line() -> None:
    assert fmt.one_line("a\n b\t\tc  ") == "a b c"
    assert fmt.one_line("x" * 10, 5) == "xxxx…"
    assert fmt.one_line(None) == ""
    assert fmt.last_line("first\nsecond line\n\n  \n") == "second line"
    assert fmt.last_line("\n \n") is None


def test_the_formatters_import_nothing_heavy() -> None:
    code = (
        "import sys, parallelcc_sdk.views.format;"
        "heavy = ('ipywidgets', 'matplotlib', 'pandas', 'IPython', 'rich');"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
