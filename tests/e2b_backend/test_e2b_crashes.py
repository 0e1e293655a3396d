"""A run on ``E2BBackend`` whose process is interrupted (Ctrl-C) or killed (``kill -9``): no
sandbox may be left running, whether the run closes them or a later ``cleanup`` does."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from e2b import Sandbox
from e2b_server.server import E2BTestServer
from support.e2e import wait_for

import parallelcc_sdk as pcc
from parallelcc_sdk.backends._process import owner_token

pytestmark = [pytest.mark.bwrap, pytest.mark.timeout(120)]

TESTS_DIR = Path(__file__).resolve().parent.parent
PACKAGE_ROOT = TESTS_DIR.parent

# A run of three long tasks in a child process; it prints its run folder once all three run.
CHILD = textwrap.dedent(
    """
    import sys, threading, time
    import parallelcc_sdk as pcc

    repo, out = sys.argv[1:3]
    started = set()
    ready = threading.Event()

    def listen(event):
        if event.type is pcc.EventType.TASK_OUTPUT and event.message == "started":
            started.add(event.task_id)
            if len(started) == 3:
                ready.set()

    handle = pcc.submit(
        ["a", "b", "c"], repo=repo, output_dir=out, progress="off", max_concurrent=3,
        backend=pcc.E2BBackend(create_rate=100), agent=pcc.Command("echo started; sleep 600"),
        listeners=[listen],
    )
    threading.Thread(target=lambda: (ready.wait(60), print(handle.run_dir, flush=True)),
                     daemon=True).start()
    handle.result()
    """
)


def start_child(repo: Path, out: Path) -> tuple[subprocess.Popen[bytes], Path]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT), str(TESTS_DIR)])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(repo), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    line: list[bytes] = []
    assert child.stdout is not None
    reader = threading.Thread(target=lambda: line.append(child.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(60)
    if not line or not line[0].strip():
        child.kill()
        _, err = child.communicate(timeout=10)
        raise AssertionError(f"the child run never started its tasks: {err.decode()[-2000:]}")
    return child, Path(line[0].decode().strip())


def test_ctrl_c_mid_run_leaves_no_sandbox_alive(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    child, run_dir = start_child(repo, tmp_path / "out")
    assert len(server.alive()) == 4  # the base and three forks
    child.send_signal(signal.SIGINT)
    child.wait(30)
    assert child.returncode != 0
    assert server.alive() == []
    assert {r.end_reason for r in server.records()} == {"killed"}
    run = pcc.load_run(run_dir)
    assert [t.status for t in run.tasks] == ["cancelled"] * 3


def test_cleanup_kills_what_a_killed_run_left_running(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    child, run_dir = start_child(repo, tmp_path / "out")
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    left = server.alive()
    assert len(left) == 4  # nothing closed them

    closed = pcc.cleanup(run_dir)

    assert sorted(left) == sorted(
        sandbox_id for sandbox_id in left if any(sandbox_id in line for line in closed)
    ), closed
    assert server.alive() == []
    assert {r.end_reason for r in server.records()} == {"killed"}
    assert not [line for line in pcc.cleanup(run_dir) if "E2B sandbox" in line]


def test_cleanup_without_a_run_folder_kills_only_dead_runs_of_this_machine(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    host = socket.gethostname()
    labels = {"parallelcc_run_id": "elsewhere"}
    # A run on another machine, and a run of a process that is alive here: both left alone.
    other = Sandbox.create(metadata={**labels, "parallelcc_owner": "other-host:1:1"})
    alive = Sandbox.create(metadata={**labels, "parallelcc_owner": f"{host}:{owner_token()}"})
    unlabelled = Sandbox.create()
    child, _ = start_child(repo, tmp_path / "out")
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    dead_run = set(server.alive()) - {other.sandbox_id, alive.sandbox_id, unlabelled.sandbox_id}
    assert len(dead_run) == 4

    closed = pcc.cleanup()

    assert sorted(s for s in dead_run if any(s in line for line in closed)) == sorted(dead_run)
    wait_for(lambda: set(server.alive()) == {other.sandbox_id, alive.sandbox_id,
                                             unlabelled.sandbox_id}, what="only the others left")
    for sandbox in (other, alive, unlabelled):
        sandbox.kill()


def test_cleanup_of_a_live_run_leaves_it_alone(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    child, run_dir = start_child(repo, tmp_path / "out")
    try:
        assert pcc.cleanup(run_dir) == []
        assert len(server.alive()) == 4
    finally:
        child.send_signal(signal.SIGINT)
        child.wait(30)
    assert server.alive() == []
    assert json.loads((run_dir / "run.json").read_text())["state"] == "interrupted"
