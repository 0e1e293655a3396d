"""Best-of-N on the local backend: real repositories, real processes, real check commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.e2e import local_run_options
from support.gitrepo import make_repo

import parallelcc_sdk as pcc
from parallelcc_sdk.bestof import expand_candidates, select_candidate
from parallelcc_sdk.models import Task, TaskResult, TaskStatus

# Three implementations of add(): only the second is right; the third is right-looking but wrong
# and changes more lines, so "smallest diff" and "tests" choose differently.
AGENT = r"""
case "$PARALLELCC_CANDIDATE" in
  1) printf 'def add(a, b):\n    return a - b\n' > calc.py ;;
  2) printf 'def add(a, b):\n    return a + b\n' > calc.py ;;
  *) printf 'def add(a, b):\n    total = a\n    total += b\n    return total * 2\n' > calc.py ;;
esac
"""
TEST = "import calc\nassert calc.add(2, 3) == 5, calc.add(2, 3)\nprint('1 passed')\n"


@pytest.fixture
def calc_repo(tmp_path: Path, pcc_git_env: Path) -> Path:
    return make_repo(
        tmp_path / "repo", {"calc.py": "def add(a, b):\n    return 0\n", "test_calc.py": TEST}
    )


def run_best_of(calc_repo: Path, tmp_path: Path, **options: Any) -> pcc.RunResult:
    return pcc.run(
        [pcc.Task("implement add", id="add", attempts=3), "a plain task"],
        **local_run_options(calc_repo, tmp_path / "results", agent=pcc.Command(AGENT), **options),
    )


def test_best_of_three_keeps_the_one_candidate_that_passes_the_tests(
    calc_repo: Path, tmp_path: Path
) -> None:
    result = run_best_of(calc_repo, tmp_path, select="tests", select_command="python3 test_calc.py")

    df = result.df
    candidates = df[df["candidate_of"] == "add"]
    assert list(candidates["task_id"]) == ["add~1", "add~2", "add~3"]
    assert list(candidates["candidate"]) == [1, 2, 3]
    assert list(candidates["check_exit_code"]) == [1, 0, 1]
    assert list(candidates["selected"]) == [False, True, False]
    assert result.best["add"].task_id == "add~2"
    assert result.best["task-2"].task_id == "task-2"
    assert result["add~2"].selection_reason == "the check passed; smallest diff of 1 passing"
    assert "the check failed (exit code 1)" in (result["add~1"].selection_reason or "")
    assert "1 passed" in (result["add~2"].check_output or "")
    assert "AssertionError" in (result["add~1"].check_output or "")
    # The choice is on disk: each candidate's metadata, the report, the reloaded run.
    metadata = json.loads((result.run_dir / "add~2" / "metadata.json").read_text())
    assert metadata["selected"] is True
    assert "return a + b" in (result.run_dir / "add~2" / "changes.patch").read_text()
    report = result.report_path.read_text()
    assert "## Best of N" in report and "★ add~2" in report
    assert pcc.load_run(result.run_dir).best["add"].task_id == "add~2"
    # The check's lines are in the candidate's log, marked.
    assert "[check] 1 passed" in (result.run_dir / "add~2" / "execution.log").read_text()


def test_smallest_diff_and_a_function_choose_otherwise(calc_repo: Path, tmp_path: Path) -> None:
    smallest = run_best_of(calc_repo, tmp_path / "a", select="smallest_diff")
    assert smallest.best["add"].task_id == "add~1"  # wrong, but the smallest change
    assert smallest["add~1"].check_exit_code is None  # no check command: no check ran

    def last(candidates: list[TaskResult]) -> TaskResult:
        return candidates[-1]

    chosen = run_best_of(calc_repo, tmp_path / "b", select=last)
    assert chosen.best["add"].task_id == "add~3"
    assert chosen["add~3"].selection_reason == "chosen by the select function"


def test_no_candidate_passing_selects_none(calc_repo: Path, tmp_path: Path) -> None:
    result = run_best_of(calc_repo, tmp_path, select_command="false")
    assert "add" not in result.best
    assert result.df["selected"].dropna().tolist() == [False, False, False]


def test_submit_attempts_expands_every_task_and_ids_stay_joinable() -> None:
    tasks = expand_candidates([Task("a", id="a"), Task("b", id="b", attempts=3)], attempts=2)
    assert [t.task_id for t in tasks] == ["a~1", "a~2", "b~1", "b~2", "b~3"]
    assert [t.env["PARALLELCC_CANDIDATE"] for t in tasks] == ["1", "2", "1", "2", "3"]
    assert {t.candidate_of for t in tasks} == {"a", "b"}


def test_cheapest_prefers_the_lower_cost() -> None:
    def done(task_id: str, cost: float, lines: int) -> TaskResult:
        return TaskResult(
            task_id,
            "p",
            status=TaskStatus.COMPLETED,
            cost_usd=cost,
            files_changed=1,
            lines_added=lines,
            lines_removed=0,
        )

    chosen, reasons = select_candidate([done("x~1", 0.5, 1), done("x~2", 0.1, 9)], "cheapest")
    assert chosen is not None and chosen.task_id == "x~2"
    assert reasons["x~1"] == "not selected: x~2 is cheapest of 2 completed"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"select": "tests"}, "select_command"),
        ({"select": "best"}, "is not a selector"),
        ({"attempts": 0}, "attempts"),
        ({"select_command": ""}, "select_command"),
    ],
)
def test_bad_best_of_options_are_refused_before_anything_starts(
    calc_repo: Path, tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(pcc.ValidationError, match=message):
        pcc.submit(
            ["x"],
            **local_run_options(calc_repo, tmp_path / "r", agent=pcc.Command("true"), **options),
        )
    assert not (tmp_path / "r").exists()
