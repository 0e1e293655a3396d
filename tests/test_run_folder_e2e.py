"""The run folder of real runs: killed with SIGKILL at any moment, it still loads; kept inside
the repository, it never shows in ``git status``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
from support.e2e import marked_processes, wait_for
from support.gitrepo import git

import parallelcc_sdk as pcc
from parallelcc_sdk import RunStatus, TaskStatus
from parallelcc_sdk.backends._cgroup import own_cgroup
from parallelcc_sdk.runfolder import read_journal
from parallelcc_sdk.runfolder.codec import task_result_from_json
from parallelcc_sdk.runfolder.reader import INTERRUPTED_PENDING_ERROR, INTERRUPTED_RUNNING_ERROR
from parallelcc_sdk.runfolder.writer import mark_interrupted

PACKAGE_ROOT = Path(pcc.__file__).resolve().parent.parent
TASKS = 20

_RUN_SCRIPT = textwrap.dedent(
    """
    import sys

    import parallelcc_sdk as pcc

    repo, out, tasks = sys.argv[1], sys.argv[2], int(sys.argv[3])
    pcc.run(
        [f"task number {i}" for i in range(tasks)],
        repo=repo,
        output_dir=out,
        # The last task outlasts the test: the run cannot end before it is killed.
        agent=pcc.Command(f'[ "$PARALLELCC_TASK_ID" = task-{tasks} ] && sleep 60 || sleep 0.3'),
        backend=pcc.LocalBackend(isolation="none"),
        max_concurrent=4,
        progress="off",
    )
    """
)


def finished_tasks(out: Path) -> int:
    return sum(1 for _ in out.glob("*/task-*/metadata.json"))


def journal_started(out: Path) -> bool:
    return any(out.glob("*/run.json"))


def sandbox_ids(out: Path) -> list[str]:
    if not journal_started(out):
        return []
    (info,) = pcc.list_runs(out)
    return [t.sandbox_id for t in read_journal(info.run_dir).tasks if t.sandbox_id]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kill_after", [0, TASKS // 2, TASKS - 1], ids=["start", "mid", "end"])
def test_a_run_killed_with_sigkill_loads_with_every_task_s_last_known_state(
    pcc_repo: Path, tmp_path: Path, kill_after: int
) -> None:
    script = tmp_path / "run.py"
    script.write_text(_RUN_SCRIPT)
    out = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(pcc_repo), str(out), str(TASKS)],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(
            lambda: (journal_started(out) and finished_tasks(out) >= kill_after)
            or proc.poll() is not None,
            timeout=60,
            what=f"{kill_after} finished tasks",
        )
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        # The task processes it started outlive it; ending them is the backend's cleanup, not
        # what this test is about.
        for pid in marked_processes(sandbox_ids(out)):
            os.kill(pid, signal.SIGKILL)

    (info,) = pcc.list_runs(out)
    loaded = pcc.load_run(info.run_dir)
    assert loaded.state is RunStatus.INTERRUPTED and info.state is RunStatus.INTERRUPTED
    assert [t.task_id for t in loaded.tasks] == [f"task-{i}" for i in range(1, TASKS + 1)]
    assert [t.prompt for t in loaded.tasks] == [f"task number {i}" for i in range(TASKS)]
    completed = interrupted = 0
    for task in loaded.tasks:
        metadata = info.run_dir / task.task_id / "metadata.json"
        if metadata.exists():
            # A task that finished before the kill is whole: its record is its metadata.json.
            assert task == task_result_from_json(json.loads(metadata.read_text()))
            assert task.status is TaskStatus.COMPLETED, task
            assert task.sandbox_id and task.finished_at and task.exit_code == 0
            completed += 1
        elif task.started_at is not None:
            assert task.status is TaskStatus.CANCELLED, task
            assert task.error == INTERRUPTED_RUNNING_ERROR and task.phase is None
            interrupted += 1
        else:
            assert task.status is TaskStatus.CANCELLED, task
            assert task.error == INTERRUPTED_PENDING_ERROR
    assert completed >= kill_after
    if kill_after:
        assert interrupted >= 1  # killed while tasks ran: they are shown as no longer running
    assert loaded.counts["completed"] == completed == info.counts["completed"]
    assert loaded.counts["pending"] == loaded.counts["running"] == 0
    assert info.counts == loaded.counts

    # Closing the dead run's journal keeps what a reader saw.
    assert mark_interrupted(info.run_dir) is True
    assert pcc.load_run(info.run_dir).tasks == loaded.tasks
    assert json.loads((info.run_dir / "run.json").read_text())["state"] == "interrupted"

    # What the killed run left (its last sandboxes' folders and cgroups, its snapshot) goes.
    pcc.cleanup(info.run_dir)
    assert leftovers_of(info.run_id) == []


def leftovers_of(run_id: str) -> list[Path]:
    """Folders and cgroups of the run's sandboxes and its scratch folder, where it made them."""
    found = list(Path(tempfile.gettempdir()).glob(f"parallelcc-*.{run_id}.*"))
    cgroups = own_cgroup()
    if cgroups is not None:
        found += cgroups.glob(f"parallelcc-*.{run_id}.*")
    return found


def test_results_inside_the_repository_never_show_in_git_status(
    pcc_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(pcc_repo)
    options: dict[str, Any] = {
        "agent": pcc.Command("echo changed > README.md; echo new > new.txt"),
        "backend": pcc.LocalBackend(isolation="none"),
        "progress": "off",
    }
    first = pcc.run(["a", "b"], **options)  # the default output_dir, ./parallel-results
    assert first.success
    assert first.run_dir.parent == (pcc_repo / "parallel-results").resolve()
    assert git("status", "--porcelain", "--untracked-files=all", cwd=pcc_repo) == ""

    # An output folder the SDK did not create has no .gitignore of its own: each run has one.
    (pcc_repo / "parallel-results" / ".gitignore").unlink()
    second = pcc.run(["c"], **options)
    assert second.success
    assert git("status", "--porcelain", "--untracked-files=all", cwd=pcc_repo) == ""
    assert not (pcc_repo / "parallel-results" / ".gitignore").exists()
