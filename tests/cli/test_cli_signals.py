"""SIGINT and SIGTERM in the middle of ``parallelcc run``, a second Ctrl-C while closing, and a run
killed with SIGKILL; then ``show``, ``ls`` and ``cleanup`` on the run folders those leave."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from support.cli import Cli, task_args
from support.e2e import wait_for

import parallelcc_sdk as pcc
from parallelcc_sdk.runfolder import read_journal

FOUR = task_args(["alpha", "beta", "gamma", "delta"])


def running_tasks(run_dir: Path) -> int:
    """Tasks whose sandbox is open, as the run's journal says."""
    try:
        tasks = read_journal(run_dir).tasks
    except pcc.ParallelCCError:  # not written yet
        return 0
    return sum(1 for t in tasks if t.status is pcc.TaskStatus.RUNNING and t.sandbox_id)


def start_and_wait_running(
    cli: Cli, command: str, n: int = 2
) -> tuple[subprocess.Popen[str], Path]:
    """Starts a 4-task run (2 at a time) of ``command`` and waits until ``n`` tasks run it."""
    before = set(cli.run_dirs())
    proc = cli.start(*cli.command_run(command, *FOUR, "--max-concurrent", "2", "--json"))
    wait_for(lambda: len(set(cli.run_dirs()) - before) == 1, what="the run folder")
    (run_dir,) = set(cli.run_dirs()) - before
    wait_for(lambda: running_tasks(run_dir) == n, what=f"{n} running tasks")
    # The journal names the sandbox as it opens; the command starts a moment later (and the
    # next tasks' sandboxes are being prepared meanwhile): each running command says "ready".
    wait_for(lambda: printed_ready(run_dir) >= n, what=f"{n} commands printing 'ready'")
    return proc, run_dir


def printed_ready(run_dir: Path) -> int:
    logs = run_dir.glob("task-*/execution.log")
    return sum(1 for log in logs if "ready" in log.read_text(errors="replace").split("\n"))


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_closes_everything_and_writes_the_report(
    cli: Cli, signum: signal.Signals, code: int
) -> None:
    proc, run_dir = start_and_wait_running(cli, "echo ready; sleep 30")
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err

    doc = json.loads(out)
    reason = f"run interrupted by {signum.name}"
    assert [(t["status"], t["error"]) for t in doc["tasks"]] == [("cancelled", reason)] * 4
    assert doc["summary"]["cancelledCount"] == 4
    assert f"{signum.name} received" in err

    journal = json.loads((run_dir / "run.json").read_text())
    assert journal["state"] == "interrupted"
    report = (run_dir / "summary-report.md").read_text()
    assert report.count("⊘ cancelled") == 4 or report.count("cancelled") >= 4
    for n in range(1, 5):
        assert json.loads((run_dir / f"task-{n}" / "metadata.json").read_text())["status"] == (
            "cancelled"
        )
    processes, folders = cli.leftovers(run_dir)
    assert processes == [], "task processes outlived the run"
    assert folders == [], "sandbox folders were left in TMPDIR"


def test_second_ctrl_c_says_what_it_waits_for_and_still_leaves_nothing(cli: Cli) -> None:
    # The command ignores SIGTERM, so closing its sandbox takes the kill's grace period.
    proc, run_dir = start_and_wait_running(cli, "trap '' TERM; echo ready; sleep 30")
    for n in (1, 2):
        log = run_dir / f"task-{n}" / "execution.log"
        wait_for(lambda log=log: "ready" in log.read_text(), what="the trap to be set")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "still closing 2 tasks: task-1 (" in err
    assert "no sandbox is left behind" in err
    assert f"parallelcc cleanup {run_dir}" in err
    assert json.loads(out)["summary"]["cancelledCount"] == 4
    assert cli.leftovers(run_dir) == ([], [])


def kill_9_run(cli: Cli) -> Path:
    proc, run_dir = start_and_wait_running(cli, "echo ready; sleep 30")
    proc.kill()
    proc.communicate(timeout=10)
    return run_dir


def test_show_and_ls_read_a_killed_run(cli: Cli) -> None:
    finished = cli.run(*cli.command_run("true", "--task", "quick"))
    assert finished.returncode == 0
    killed = kill_9_run(cli)

    # Its process is gone: the run reads as interrupted, and no task as still going.
    shown = cli.run("show", str(killed))
    assert shown.returncode == 0, shown.stderr
    assert f"Run {killed.name} interrupted: 4 tasks" in shown.stdout
    assert "not written" in shown.stdout  # the report: the run never got to write it
    for n in range(1, 5):
        assert f"task-{n}" in shown.stdout
    as_json = json.loads(cli.run("show", str(killed), "--json").stdout)
    assert as_json["state"] == "interrupted"
    assert [t["status"] for t in as_json["tasks"]] == ["cancelled"] * 4
    # The two that were running say so, unlike the two that never started.
    errors = [t["error"] for t in as_json["tasks"]]
    assert errors[0] == errors[1] != errors[2] == errors[3]
    assert as_json["reportPath"] is None

    listed = cli.run("ls", str(cli.output_dir))
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if line.strip()]
    assert rows[0].split()[:2] == ["run", "created"]
    assert rows[1].startswith(killed.name) and " interrupted " in rows[1]  # newest first
    finished_dir = next(d for d in cli.run_dirs() if d != killed)
    assert rows[2].startswith(finished_dir.name) and " finished " in rows[2]


def test_show_prints_a_finished_run_like_the_run_did(cli: Cli) -> None:
    done = cli.run(*cli.command_run("exit 2", "--task", "one", "--task", "two", "--json"))
    assert done.returncode == 1
    run_dir = cli.only_run_dir()
    shown = cli.run("show", str(run_dir))
    assert shown.returncode == 0
    assert f"Run {run_dir.name} finished: 2 tasks" in shown.stdout
    assert "Failed tasks" in shown.stdout and "command exited with code 2" in shown.stdout
    assert "prompt" in shown.stdout and "one" in shown.stdout
    again = json.loads(cli.run("show", str(run_dir), "--json").stdout)
    first = json.loads(done.stdout)
    assert again["tasks"] == first["tasks"] and again["summary"] == first["summary"]
    assert again["state"] == "finished"


def test_show_and_ls_refuse_what_is_not_a_run(cli: Cli, tmp_path: Path) -> None:
    shown = cli.run("show", str(tmp_path))
    assert shown.returncode == 2 and "is not a run folder" in shown.stderr
    listed = cli.run("ls", str(tmp_path / "nothing-here"))
    assert listed.returncode == 2 and "does not exist" in listed.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.run("ls", str(empty)).stdout.strip() == f"no runs in {empty}"


CLEANUP_ARRIVES = pytest.mark.xfail(
    not hasattr(pcc, "cleanup"),
    reason="pcc.cleanup(run_dir) is not in this version of the SDK",
    strict=True,
)


@CLEANUP_ARRIVES
def test_cleanup_closes_what_a_killed_run_left(cli: Cli) -> None:
    killed = kill_9_run(cli)
    processes, folders = cli.leftovers(killed)
    assert len(processes) >= 2 and folders, "the killed run should have left something"
    done = cli.run("cleanup", str(killed))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert cli.leftovers(killed) == ([], [])
    again = cli.run("cleanup", str(killed))
    assert again.returncode == 0 and "nothing" in again.stdout


@CLEANUP_ARRIVES
def test_cleanup_without_a_run_dir_looks_across_runs(cli: Cli) -> None:
    killed = kill_9_run(cli)
    done = cli.run("cleanup", cwd=cli.output_dir.parent)
    assert done.returncode == 0, done.stderr
    assert cli.leftovers(killed) == ([], [])
