"""Run budget and retry accounting, through the real engine and local backend.

The agent here is a small one written against the public Agent protocol: a shell command prints
``COST <usd>`` / ``FINAL <usd>`` lines, and exits 75 for a failure worth retrying.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from support.e2e import local_run_options
from support.gitrepo import make_repo

import parallelcc_sdk as pcc
from parallelcc_sdk import (
    AgentContext,
    AgentMetrics,
    AgentOutcome,
    Invocation,
    Progress,
    Stream,
    Task,
    TaskStatus,
)

TRANSIENT_EXIT = 75


class CostReportingAgent(pcc.Agent):
    name = "cost-reporting"

    def __init__(self, script: str) -> None:
        self.script = script

    def invocation(self, task: Task, context: AgentContext) -> Invocation:
        return Invocation(
            argv=("/bin/sh", "-c", self.script),
            stdin=task.prompt.encode(),
            env={"PROMPT": task.prompt},
        )

    def parser(self, task: Task) -> pcc.OutputParser:
        return _Parser()


class _Parser(pcc.OutputParser):
    def __init__(self) -> None:
        self.cost: float | None = None

    def feed(self, stream: Stream, line: str) -> Sequence[Progress]:
        kind, _, value = line.partition(" ")
        if kind in ("COST", "FINAL"):
            self.cost = float(value)
            return (Progress(message=line, cost_usd=self.cost, final=kind == "FINAL"),)
        return ()

    def finish(self, exit_code: int | None) -> AgentOutcome:
        metrics = AgentMetrics(cost_usd=self.cost)
        if exit_code == 0:
            return AgentOutcome(TaskStatus.COMPLETED, metrics=metrics)
        return AgentOutcome(
            TaskStatus.FAILED,
            error=f"exit {exit_code}",
            metrics=metrics,
            transient=exit_code == TRANSIENT_EXIT,
        )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"a.txt": "a\n"})


def run(
    repo: Path, tmp_path: Path, prompts: list[str], script: str, **options: object
) -> pcc.RunResult:
    return pcc.run(
        prompts,
        agent=CostReportingAgent(script),
        **local_run_options(repo, tmp_path / "out", **options),
    )


def test_a_running_task_that_crosses_the_run_budget_is_cancelled(
    repo: Path, tmp_path: Path
) -> None:
    # Each task reports $0.40 while still working, then works on for 30 s.
    result = run(
        repo,
        tmp_path,
        ["one", "two", "three"],
        "echo COST 0.40; sleep 30; echo FINAL 0.5",
        max_concurrent=2,
        budget_usd=0.5,
    )
    statuses = [t.status for t in result.tasks]
    assert statuses == [TaskStatus.CANCELLED] * 3
    assert all("run budget of $0.50 reached" in (t.error or "") for t in result.tasks)
    assert result.summary.total_duration_s < 20
    # The third never started (its sandbox may have been prepared ahead): no start, no duration.
    assert result.tasks[2].started_at is None and result.tasks[2].duration_s is None


def test_the_task_whose_closing_report_crosses_the_budget_completes(
    repo: Path, tmp_path: Path
) -> None:
    # The closing report comes a moment before the process exits: a stop must not cancel it.
    result = run(
        repo,
        tmp_path,
        ["one", "two", "three"],
        "echo FINAL 0.30; sleep 0.5",
        max_concurrent=1,
        budget_usd=0.5,
    )
    first, second, third = result.tasks
    assert (first.status, second.status) == (TaskStatus.COMPLETED, TaskStatus.COMPLETED)
    assert third.status == TaskStatus.CANCELLED and "budget" in (third.error or "")
    assert result.summary.total_cost_usd == pytest.approx(0.60)


def test_a_retried_task_reports_the_cost_of_every_attempt(repo: Path, tmp_path: Path) -> None:
    # The first attempt spends $0.10 and fails transiently; the second spends $0.25 and succeeds.
    # Each attempt has a fresh sandbox under work_dir, so the marker lives one level above it.
    work_dir = tmp_path / "sandboxes"
    work_dir.mkdir()
    script = (
        'if [ -e "$HOME/../../marker" ]; then echo FINAL 0.25; exit 0; fi; '
        'touch "$HOME/../../marker"; echo FINAL 0.10; exit 75'
    )
    result = run(
        repo,
        tmp_path,
        ["go"],
        script,
        backend=pcc.LocalBackend(isolation="none", work_dir=work_dir),
        retries=2,
        retry_backoff_s=0.01,
    )
    (task,) = result.tasks
    assert task.status == TaskStatus.COMPLETED
    assert task.attempts == 2
    assert task.cost_usd == pytest.approx(0.35)


def test_a_permanent_failure_is_not_retried(repo: Path, tmp_path: Path) -> None:
    result = run(repo, tmp_path, ["go"], "echo FINAL 0.10; exit 1", retries=3, retry_backoff_s=0.01)
    (task,) = result.tasks
    assert (task.status, task.attempts) == (TaskStatus.FAILED, 1)
    assert task.cost_usd == pytest.approx(0.10)
