"""The Markdown summary report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from parallelcc_sdk.models import TaskResult, TaskStatus
from parallelcc_sdk.report import LOG_TAIL_LINES, escape_cell, render_report
from parallelcc_sdk.results import RunResult, RunSummary

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def task(task_id: str, duration: float | None, **fields: Any) -> TaskResult:
    values: dict[str, Any] = {"status": TaskStatus.COMPLETED, "duration_s": duration}
    if duration is not None:
        values |= {"started_at": T0, "finished_at": T0 + timedelta(seconds=duration)}
    values |= fields
    return TaskResult(task_id=task_id, prompt=values.pop("prompt", f"do {task_id}"), **values)


def report_of(tasks: list[TaskResult], total: float = 60.0, run_dir: Path = Path("out")) -> str:
    summary = RunSummary.from_results("20261127-080000-abcdef", tasks, total)
    return render_report(RunResult(summary.run_id, run_dir, tuple(tasks), summary))


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


def test_total_cost_is_not_reported_when_no_task_reports_one() -> None:
    assert statistics(report_of([task("task-1", 1.0)]))["Total cost"] == "not reported"


def test_a_run_with_some_costs_reports_their_sum() -> None:
    tasks = [task("task-1", 1.0, cost_usd=0.25), task("task-2", 1.0)]
    assert statistics(report_of(tasks))["Total cost"] == "$0.2500"


@dataclass(frozen=True)
class IsolatedResult(TaskResult):
    """A record that says what isolated its task, as the engine's records do."""

    isolation: str | None = None


def test_statistics_name_the_isolation_the_tasks_ran_in() -> None:
    same = [IsolatedResult(t, "p", isolation="bubblewrap") for t in ("a", "b")]
    assert statistics(report_of(list(same)))["Isolation"] == "bubblewrap"
    mixed = [*same, IsolatedResult("c", "p", isolation="none")]
    assert statistics(report_of(list(mixed)))["Isolation"] == "bubblewrap 2, none 1"
    assert "Isolation" not in statistics(report_of([task("task-1", 1.0)]))


def test_outcome_line_words_the_end_state_with_counts() -> None:
    tasks = [task("a", 1.0), task("b", None, status=TaskStatus.CANCELLED)]
    assert "**Outcome:** cancelled: 1 completed, 1 cancelled" in report_of(tasks)
    assert "**Outcome:** finished: 1 completed" in report_of(tasks[:1])


def test_task_table_rows() -> None:
    tasks = [
        task(
            "task-1",
            45.2,
            files_changed=2,
            lines_added=10,
            lines_removed=3,
            cost_usd=0.02,
            last_output="1 failed, 51 passed in 5.98s",
        ),
        task("task-2", None, status=TaskStatus.CANCELLED),
        task("task-3", 1.0, status=TaskStatus.TIMED_OUT),
    ]
    rows = table_rows(report_of(tasks), "## Tasks")
    assert rows == [
        [
            "task-1",
            "✓ completed",
            "45.2s",
            "2",
            "+10 / -3",
            "$0.0200",
            "do task-1",
            "1 failed, 51 passed in 5.98s",
        ],
        ["task-2", "⊘ cancelled", "—", "—", "—", "—", "do task-2", ""],
        ["task-3", "⏱ timed out", "1.0s", "—", "—", "—", "do task-3", ""],
    ]


def test_prompt_cell_escapes_pipes_and_stays_on_one_line() -> None:
    prompt = "Replace a|b with c || d\nthen\tcheck\n\nthat grep 'x|y' still works and more and more"
    report = report_of([task("task-1", 1.0, prompt=prompt)])
    rows = table_rows(report, "## Tasks")
    assert len(rows) == 1
    assert len(rows[0]) == 8  # no pipe leaked out of its cell
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
    assert errors.count("### task-3 (timed out)") == 1
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


def test_errors_section_quotes_the_end_of_each_failed_tasks_log(tmp_path: Path) -> None:
    failing = tmp_path / "pytest-subset"
    failing.mkdir()
    noise = [f"collected line {i}" for i in range(500)]
    (failing / "execution.log").write_text(
        "\n".join([*noise, "FAILED tests/test_x.py::test_y", "", "1 failed, 51 passed in 5.98s"])
    )
    ok = tmp_path / "ok"
    ok.mkdir()
    (ok / "execution.log").write_text("all good\n")
    tasks = [
        task(
            "pytest-subset",
            6.0,
            status=TaskStatus.FAILED,
            exit_code=1,
            error="command exited with code 1: 1 failed, 51 passed in 5.98s",
        ),
        task("ok", 1.0),
        task("never-ran", None, status=TaskStatus.FAILED, error="could not start"),
    ]
    errors = section(report_of(tasks, run_dir=tmp_path), "## Errors")
    text = "\n".join(errors)
    assert "Last lines of `pytest-subset/execution.log`:" in text
    start = errors.index("Last lines of `pytest-subset/execution.log`:")
    fence_end = errors.index("```", start + 3)
    tail = errors[start + 3 : fence_end]
    assert len(tail) == LOG_TAIL_LINES
    assert tail[-2:] == ["FAILED tests/test_x.py::test_y", "1 failed, 51 passed in 5.98s"]
    assert "all good" not in text  # only failed tasks
    assert "### never-ran (failed)" in text and "never-ran/execution.log" not in text


def test_log_tail_of_a_huge_log_reads_only_its_end(tmp_path: Path) -> None:
    from parallelcc_sdk.report import log_tail

    log = tmp_path / "execution.log"
    with log.open("w") as out:
        out.write("x" * 20_000_000 + "\n")  # one 20 MB line, then the lines that matter
        out.write("\n".join(f"line {i}" for i in range(30)) + "\n")
    tail = log_tail(log)
    assert tail is not None
    assert tail.splitlines() == [f"line {i}" for i in range(10, 30)]
    assert log_tail(tmp_path / "missing.log") is None
    (tmp_path / "one-line.log").write_text("y" * 100_000)
    assert log_tail(tmp_path / "one-line.log") == "y" * 499 + "…"


def test_a_real_failing_run_says_why_in_df_csv_summary_and_report(
    notes_repo: Path, tmp_path: Path
) -> None:
    import json

    import pandas as pd
    from support.e2e import local_run_options

    import parallelcc_sdk as pcc

    script = (
        'if [ "$PARALLELCC_TASK_ID" = fails ]; then '
        "for i in $(seq 1 40); do echo collecting $i; done; "
        'echo "1 failed, 51 passed in 5.98s" >&2; exit 1; fi; echo all good'
    )
    result = pcc.run(
        [pcc.Task("fine", id="fine"), pcc.Task("fails", id="fails")],
        agent=pcc.Command(script),
        **local_run_options(notes_repo, tmp_path / "out"),
    )
    df = result.df.set_index("task_id")
    assert df.loc["fine", "last_output"] == "all good"
    assert df.loc["fails", "last_output"] == "1 failed, 51 passed in 5.98s"
    csv = pd.read_csv(result.run_dir / "results.csv").set_index("task_id")
    assert csv.loc["fails", "last_output"] == "1 failed, 51 passed in 5.98s"

    # No agent reported a cost: unknown, not zero, in summary.json and in the report.
    assert result.summary.total_cost_usd is None
    assert pd.isna(df["cost_usd"]).all()
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["summary"]["total_cost_usd"] is None
    report = result.report_path.read_text()
    assert statistics(report)["Total cost"] == "not reported"
    assert "**Outcome:** finished: 1 completed, 1 failed" in report

    errors = "\n".join(section(report, "## Errors"))
    assert "Last lines of `fails/execution.log`:" in errors
    assert "collecting 40\n[stderr] 1 failed, 51 passed in 5.98s\n```" in errors
    assert "collecting 20\n" not in errors  # the tail, not the whole log
