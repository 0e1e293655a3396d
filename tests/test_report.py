"""The Markdown summary report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from parallelcc_sdk.models import TaskResult, TaskStatus
from parallelcc_sdk.report import escape_cell, format_cost, format_duration, render_report
from parallelcc_sdk.results import RunResult, RunSummary

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def task(task_id: str, duration: float | None, **fields: Any) -> TaskResult:
    values: dict[str, Any] = {"status": TaskStatus.COMPLETED, "duration_s": duration}
    if duration is not None:
        values |= {"started_at": T0, "finished_at": T0 + timedelta(seconds=duration)}
    values |= fields
    return TaskResult(task_id=task_id, prompt=values.pop("prompt", f"do {task_id}"), **values)


def report_of(tasks: list[TaskResult], total: float = 60.0) -> str:
    summary = RunSummary.from_results("20261127-080000-abcdef", tasks, total)
    return render_report(RunResult(summary.run_id, Path("out"), tuple(tasks), summary))


def split_row(line: str) -> list[str]:
    """Cells of a Markdown table row, split the way GitHub does: a backslash escapes one char."""
    assert line.startswith("|") and line.endswith("|"), line
    cells, current, chars = [], "", iter(line[1:-1])
    for char in chars:
        if char == "\\":
            current += char + next(chars, "")
        elif char == "|":
            cells.append(current.strip())
            current = ""
        else:
            current += char
    cells.append(current.strip())
    return cells


def section(report: str, heading: str) -> list[str]:
    lines = report.splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def table_rows(report: str, heading: str) -> list[list[str]]:
    rows = [line for line in section(report, heading) if line.startswith("|")]
    return [split_row(r) for r in rows[2:]]  # skip the header and the alignment row


def statistics(report: str) -> dict[str, str]:
    return {name: value for name, value in table_rows(report, "## Statistics")}


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
        (None, "—"),
        (float("nan"), "—"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_cost() -> None:
    assert format_cost(None) == "—"
    assert format_cost(0.0123) == "$0.0123"
    assert format_cost(12.345) == "$12.35"
    assert format_cost(1234.5) == "$1,234.50"


def test_escape_cell() -> None:
    assert escape_cell("a | b") == "a \\| b"
    assert escape_cell("line one\nline two\r\nthree") == "line one line two three"
    # A backslash before a pipe must not cancel the escape.
    cell = escape_cell("a\\|b")
    assert cell == "a\\\\\\|b"
    assert split_row("| " + cell + " | x |") == [cell, "x"]


def test_statistics_table() -> None:
    tasks = [
        task("task-1", 3000.0, files_changed=2, cost_usd=0.5),
        task("task-2", 4384.0, status=TaskStatus.FAILED, files_changed=1, cost_usd=1.0),
        task("task-3", None, status=TaskStatus.CANCELLED),
        task("task-4", 100.0, status=TaskStatus.TIMED_OUT),
    ]
    stats = statistics(report_of(tasks, total=4500.0))
    assert stats == {
        "Tasks": "4",
        "Completed": "1",
        "Failed": "1",
        "Cancelled": "1",
        "Timed out": "1",
        "Total duration": "1h 15m 00s",
        "Sequential duration": "2h 04m 44s",
        "Time saved": "49m 44s",
        "Files changed": "3",
        "Total cost": "$1.50",
    }


def test_total_cost_is_a_dash_when_no_task_reports_one() -> None:
    assert statistics(report_of([task("task-1", 1.0)]))["Total cost"] == "—"


def test_task_table_rows() -> None:
    tasks = [
        task("task-1", 45.2, files_changed=2, lines_added=10, lines_removed=3, cost_usd=0.02),
        task("task-2", None, status=TaskStatus.CANCELLED),
    ]
    rows = table_rows(report_of(tasks), "## Tasks")
    assert rows == [
        ["task-1", "✓ completed", "45.2s", "2", "+10 / -3", "$0.0200", "do task-1"],
        ["task-2", "○ cancelled", "—", "—", "—", "—", "do task-2"],
    ]


def test_prompt_cell_escapes_pipes_and_stays_on_one_line() -> None:
    prompt = "Replace a|b with c || d\nthen\tcheck\n\nthat grep 'x|y' still works and more and more"
    report = report_of([task("task-1", 1.0, prompt=prompt)])
    rows = table_rows(report, "## Tasks")
    assert len(rows) == 1
    assert len(rows[0]) == 7  # no pipe leaked out of its cell
    cell = rows[0][6]
    assert cell.startswith("Replace a\\|b with c \\|\\| d then check that grep 'x\\|y'")
    unescaped = cell.replace("\\|", "|")
    assert len(unescaped) <= 60
    assert unescaped.endswith("…")
    assert "\n" not in cell


def test_task_id_with_pipe_does_not_break_the_table() -> None:
    report = report_of([task("odd|id", 1.0)])
    assert table_rows(report, "## Tasks")[0][0] == "odd\\|id"


def test_long_durations_show_hours_in_the_task_table() -> None:
    rows = table_rows(report_of([task("task-1", 7384.0)], total=7384.0), "## Tasks")
    assert rows[0][2] == "2h 03m 04s"


def test_errors_section_has_one_fenced_block_per_task_with_an_error() -> None:
    tasks = [
        task("task-1", 1.0),
        task("task-2", 2.0, status=TaskStatus.FAILED, exit_code=1, error="boom | bang\nline 2"),
        task("task-3", 3.0, status=TaskStatus.TIMED_OUT, error="timed out after 3s"),
    ]
    errors = section(report_of(tasks), "## Errors")
    text = "\n".join(errors)
    assert "### task-1" not in text
    assert errors.count("### task-2 (failed)") == 1
    assert errors.count("### task-3 (timed_out)") == 1
    start = errors.index("### task-2 (failed)")
    assert errors[start + 2 : start + 8] == [
        "Exit code: 1",
        "",
        "```",
        "boom | bang",
        "line 2",
        "```",
    ]
    assert "```\ntimed out after 3s\n```" in text


def test_error_containing_a_fence_gets_a_longer_fence() -> None:
    error = "see:\n```\ncode\n```"
    errors = section(
        report_of([task("t", 1.0, status=TaskStatus.FAILED, error=error)]), "## Errors"
    )
    assert errors[-6:] == ["````", "see:", "```", "code", "```", "````"]


def test_no_errors_section_without_errors() -> None:
    report = report_of([task("task-1", 1.0)])
    assert "## Errors" not in report
    assert report.startswith("# Parallel Run Summary\n")
    assert "20261127-080000-abcdef" in report
    assert report.endswith("\n")
