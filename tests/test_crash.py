"""Signals and crashes in the middle of a run started by a script with ``pcc.run``, as users do:
SIGINT once and twice, SIGTERM, and ``kill -9``, while sandboxes are being opened and while
they run, in runs of 10 and of 3,000 tasks.

After each, no process of a sandbox and no ``parallelcc-box.*`` / ``parallelcc-run.*`` folder
is left (after ``pcc.cleanup`` where the run was killed), and the journal is final:
``interrupted``, every task ``cancelled``. The 3,000-task runs are marked ``scale``; they run
in CI like the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import tempfile
import time
from pathlib import Path

import pytest
from support.crash import ScriptRun, script_run
from support.gitrepo import make_repo

import parallelcc_sdk as pcc
from parallelcc_sdk.models import RunStatus

SMALL, SMALL_AT_ONCE = 10, 5
LARGE, LARGE_AT_ONCE = 3000, 50
# Generous: a stop takes a few seconds here (the sandboxes close in about two, the rest is
# writing 3,000 records on a busy disk); before, it took a minute and left 51 folders.
SMALL_STOP_S = 20.0
LARGE_STOP_S = 60.0

scale = pytest.mark.scale

REASONS = {
    signal.SIGINT: "run interrupted (KeyboardInterrupt)",
    signal.SIGTERM: "run interrupted by SIGTERM",
}
# How a script ends: SIGINT as Python ends on an uncaught KeyboardInterrupt (by the signal
# itself), SIGTERM with SystemExit(143), the status a shell shows for it.
EXIT_CODES = {signal.SIGINT: -signal.SIGINT, signal.SIGTERM: 128 + signal.SIGTERM}


@pytest.fixture
def repo(tmp_path: Path, pcc_git_env: Path) -> Path:
    return make_repo(tmp_path / "repo", {"README.md": "# demo\n"})


def assert_closed_and_recorded(run: ScriptRun, reason: str) -> None:
    """Nothing of the run is left, and its journal says it was interrupted, for good."""
    processes, folders = run.leftovers()
    assert processes == [], f"sandbox processes outlived the run: {processes}"
    assert folders == [], f"folders were left behind: {folders[:5]}"
    journal = run.run_json()
    assert journal["state"] == "interrupted"
    assert journal["finished_at"] is not None
    assert not (run.run_dir / "journal.jsonl").exists()
    statuses = [t["status"] for t in journal["tasks"]]
    assert statuses == ["cancelled"] * run.tasks
    assert {t["error"] for t in journal["tasks"]} == {reason}
    # The report was written too, with every task listed as cancelled.
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["state"] == "interrupted"
    assert summary["summary"]["cancelled_count"] == run.tasks


def stop_with(run: ScriptRun, *signums: signal.Signals) -> None:
    run.send(*signums)
    code = run.wait_exit()
    assert code == EXIT_CODES[signums[0]], run.stderr
    assert "pcc.run returned" not in run.stdout


# -- 10 tasks -------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("moment", ["opening", "running"])
def test_a_signal_stops_a_script_and_leaves_nothing(
    repo: Path, tmp_path: Path, moment: str, signum: signal.Signals
) -> None:
    with script_run(repo, tmp_path, tasks=SMALL, at_once=SMALL_AT_ONCE) as run:
        run.wait_opening() if moment == "opening" else run.wait_running()
        stop_with(run, signum)
        assert run.exit_s < SMALL_STOP_S
        assert_closed_and_recorded(run, REASONS[signum])
    if signum is signal.SIGTERM:
        assert "Traceback" not in run.stderr  # SystemExit: a clean exit, not a crash


def test_a_second_ctrl_c_while_closing_says_what_it_waits_for_and_leaves_nothing(
    repo: Path, tmp_path: Path
) -> None:
    # The commands ignore SIGTERM, so closing their sandboxes takes the kill's grace period:
    # the second Ctrl-C arrives while they are still being closed.
    command = "trap '' TERM; echo ready; sleep 60"
    # In a checkout the command itself gets the SIGTERM it ignores; in an overlay workspace its
    # mount namespace's wrapper would take the SIGTERM and end it at once, with nothing to wait for.
    with script_run(
        repo, tmp_path, tasks=SMALL, at_once=SMALL_AT_ONCE, command=command, workspace="checkout"
    ) as run:
        run.wait_running()
        # A process exists before its shell has set the trap: wait until each one said so.
        run.wait_output("ready", SMALL_AT_ONCE)
        stop_with(run, signal.SIGINT, signal.SIGINT)
        assert run.exit_s < SMALL_STOP_S
        assert "SIGINT received again: still closing 5 tasks: task-1 (" in run.stderr
        assert "no sandbox is left behind" in run.stderr
        assert f"pcc.cleanup({str(run.run_dir)!r})" in run.stderr
        assert_closed_and_recorded(run, REASONS[signal.SIGINT])


def test_a_script_that_ends_while_its_run_goes_on_leaves_nothing(
    repo: Path, tmp_path: Path
) -> None:
    # The interpreter's exit hook stops the run before the thread pools that closing needs
    # shut down; the run is recorded cancelled (nobody interrupted it: the script just ended).
    with script_run(repo, tmp_path, tasks=SMALL, at_once=SMALL_AT_ONCE, how="leave") as run:
        run.stopped_at = time.monotonic()
        assert run.wait_exit() == 1
        assert "the script fails while its run goes on" in run.stderr
        assert "cannot schedule new futures" not in run.stderr
        assert run.exit_s < SMALL_STOP_S
        assert run.leftovers() == ([], [])
        journal = run.run_json()
        assert journal["state"] == "cancelled"
        assert [t["status"] for t in journal["tasks"]] == ["cancelled"] * SMALL


async def test_sandboxes_cancelled_while_their_folders_are_made_leave_none(
    repo: Path, tmp_path: Path
) -> None:
    # The folder is made in a worker thread, which a cancellation cannot stop: the sandbox
    # waits for it and removes the folder before the cancellation goes on.
    work = tmp_path / "work"
    work.mkdir()
    backend = pcc.LocalBackend(isolation="none", work_dir=work)
    run_dir = tmp_path / "results" / "r1"
    run_dir.mkdir(parents=True)
    prepared = await backend.start_run(
        pcc.RunSpec(run_id="r1", run_dir=run_dir, repo=repo, labels={"parallelcc_run_id": "r1"})
    )
    scratch = {p.name for p in work.iterdir()}
    for attempt in range(1, 21):
        spec = pcc.SandboxSpec(
            run=prepared, task_id="task-1", attempt=attempt, task_dir=run_dir / "task-1"
        )
        opening = asyncio.create_task(backend.open(spec))
        await asyncio.sleep(0)  # its thread is making the folder
        opening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await (await opening).close()  # had it finished first, it would be closed here
        assert {p.name for p in work.iterdir()} == scratch, f"attempt {attempt} left a folder"
    await backend.end_run(prepared)
    assert list(work.iterdir()) == []


def kill_9(run: ScriptRun) -> None:
    run.proc.kill()
    run.wait_exit()
    _, folders = run.leftovers(settle_s=0)
    assert folders, "a killed run leaves its folders: this test would prove nothing"
    # Read back before any cleanup, the dead run says so instead of showing tasks running.
    loaded = pcc.load_run(run.run_dir)
    assert loaded.state is RunStatus.INTERRUPTED
    assert loaded.counts["running"] == loaded.counts["pending"] == 0
    assert loaded.counts["cancelled"] == run.tasks


def assert_cleaned_up(run: ScriptRun, closed: list[str]) -> None:
    assert f"run {run.run_dir.name}: journal marked interrupted" in closed
    processes, folders = run.leftovers()
    assert processes == [] and folders == []
    journal = run.run_json()
    assert journal["state"] == "interrupted" and journal["finished_at"] is not None
    assert all(t["status"] == "cancelled" for t in journal["tasks"])
    assert not (run.run_dir / "journal.jsonl").exists()
    assert pcc.cleanup(run.run_dir) == []  # nothing more to close


@pytest.mark.parametrize("moment", ["opening", "running"])
@pytest.mark.parametrize("which", ["every run", "this run"])
def test_kill_9_then_cleanup_closes_everything_and_the_journal(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moment: str, which: str
) -> None:
    with script_run(repo, tmp_path, tasks=SMALL, at_once=SMALL_AT_ONCE) as run:
        run.wait_opening() if moment == "opening" else run.wait_running()
        kill_9(run)
        if moment == "running":
            assert run.processes(), "the killed run's commands should still run"
        # cleanup() without a run looks in the system's temporary folder: the script's one.
        monkeypatch.setattr(tempfile, "tempdir", str(run.tmp))
        closed = pcc.cleanup() if which == "every run" else pcc.cleanup(run.run_dir)
        assert_cleaned_up(run, closed)


# -- 3,000 tasks, 50 at a time --------------------------------------------------------------


@scale
def test_ctrl_c_on_3000_tasks_closes_everything_in_bounded_time(
    repo: Path, tmp_path: Path
) -> None:
    with script_run(repo, tmp_path, tasks=LARGE, at_once=LARGE_AT_ONCE) as run:
        run.wait_running()
        stop_with(run, signal.SIGINT)
        assert run.exit_s < LARGE_STOP_S
        assert_closed_and_recorded(run, REASONS[signal.SIGINT])


@scale
def test_ctrl_c_twice_on_3000_tasks_still_closes_everything(repo: Path, tmp_path: Path) -> None:
    with script_run(repo, tmp_path, tasks=LARGE, at_once=LARGE_AT_ONCE) as run:
        run.wait_running()
        stop_with(run, signal.SIGINT, signal.SIGINT)
        assert run.exit_s < LARGE_STOP_S
        assert "SIGINT received again: still" in run.stderr
        assert_closed_and_recorded(run, REASONS[signal.SIGINT])


@scale
def test_sigterm_while_3000_tasks_open_their_sandboxes(repo: Path, tmp_path: Path) -> None:
    with script_run(repo, tmp_path, tasks=LARGE, at_once=LARGE_AT_ONCE) as run:
        run.wait_opening()
        stop_with(run, signal.SIGTERM)
        assert run.exit_s < LARGE_STOP_S
        assert_closed_and_recorded(run, REASONS[signal.SIGTERM])


@scale
def test_kill_9_on_3000_tasks_then_cleanup(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with script_run(repo, tmp_path, tasks=LARGE, at_once=LARGE_AT_ONCE) as run:
        run.wait_running()
        kill_9(run)
        assert len(run.processes()) >= LARGE_AT_ONCE
        monkeypatch.setattr(tempfile, "tempdir", str(run.tmp))
        assert_cleaned_up(run, pcc.cleanup())
