"""Why a task failed, where a user looks: its error, ``result.df``, ``results.csv`` and the report.

The end-to-end test runs a real pytest inside a task of the default local backend (sandboxed
where bubblewrap works), the way a user checks a change against a repository's test suite.
"""

from __future__ import annotations

import csv
import re
import shlex
import sys
from pathlib import Path

import pytest
from support.gitrepo import make_repo

import parallelcc_sdk as pcc
from parallelcc_sdk.agents.base import LastLine
from parallelcc_sdk.agents.command import Command
from parallelcc_sdk.models import Task, TaskStatus

TESTS = "".join(f"def test_ok_{i}():\n    assert {i} + 1 == {i + 1}\n\n\n" for i in range(3)) + (
    "def test_sum():\n    assert sum([1, 1]) == 3\n"
)
SUMMARY = re.compile(r"1 failed, 3 passed in [0-9.]+s")


@pytest.mark.usefixtures("pcc_git_env")
def test_a_failing_pytest_task_says_why_in_its_error_the_df_the_csv_and_the_report(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo", {"test_sums.py": TESTS})
    # The host's Python (a virtualenv here) is readable inside the sandbox: tasks use it as is.
    # Bytecode written as a user's Python would (this suite's environment turns it off).
    agent = pcc.Command(
        f"{shlex.quote(sys.executable)} -m pytest", env={"PYTHONDONTWRITEBYTECODE": ""}
    )

    result = pcc.run(
        ["run the test suite"], repo=repo, agent=agent, output_dir=tmp_path / "out", progress="off"
    )

    task = result.tasks[0]
    assert (task.status, task.exit_code) == (TaskStatus.FAILED, 1)
    assert task.error is not None
    assert re.fullmatch(r"command exited with code 1: " + SUMMARY.pattern, task.error), task.error
    assert task.last_output is not None and SUMMARY.search(task.last_output)
    # Compiled files are not the task's changes (.pytest_cache/ ignores itself with a .gitignore).
    assert (task.files_changed, task.excluded_paths) == (0, ("__pycache__/",))

    row = result.df.iloc[0]
    assert row["error"] == task.error and row["last_output"] == task.last_output
    with result.run_dir.joinpath("results.csv").open(newline="") as f:
        saved = next(csv.DictReader(f))
    assert (saved["error"], saved["last_output"]) == (task.error, task.last_output)

    report = result.report_path.read_text()
    task_row = next(line for line in report.splitlines() if line.startswith("| task-1 "))
    assert SUMMARY.search(task_row), task_row  # the Last output column
    errors = report[report.index("## Errors") :]
    assert task.error in errors
    assert "Last lines of `task-1/execution.log`:" in errors
    # The log's tail shows the failing assertion itself.
    assert "assert 2 == 3" in errors and "FAILED test_sums.py::test_sum" in errors


def parse(lines: list[tuple[str, str]], exit_code: int | None) -> str | None:
    parser = Command("true").parser(Task("x", id="t"))
    for stream, line in lines:
        parser.feed(stream, line)  # type: ignore[arg-type]
    outcome = parser.finish(exit_code)
    return outcome.error


def test_the_error_ends_with_the_last_line_that_says_something_on_either_stream() -> None:
    assert parse([("stderr", "warning"), ("stdout", "3 errors")], 2) == (
        "command exited with code 2: 3 errors"
    )
    assert parse([("stdout", "building"), ("stderr", "ld: missing -lfoo")], 1) == (
        "command exited with code 1: ld: missing -lfoo"
    )
    assert parse([("stdout", "=== 1 failed in 0.1s ==="), ("stdout", ""), ("stderr", "  ")], 1) == (
        "command exited with code 1: 1 failed in 0.1s"
    )
    assert parse([("stdout", "Error: boom"), ("stdout", "----------")], 1) == (
        "command exited with code 1: Error: boom"
    )
    assert parse([], 3) == "command exited with code 3"
    assert parse([("stdout", "partial")], None) == "command was killed: partial"
    assert parse([("stdout", "all good")], 0) is None


def test_last_line_is_cut_to_its_limit_and_keeps_signs_and_short_dashes() -> None:
    last = LastLine(limit=10)
    last.feed("x" * 10_000_000)
    assert last.text == "x" * 10
    for line, shown in [("-1", "-1"), ("-- done --", "-- done --"), ("#### 2 ####", "2")]:
        last.feed(line)
        assert last.text == shown
