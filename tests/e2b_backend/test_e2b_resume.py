"""Resume on ``E2BBackend`` after ``kill -9`` of the run's process: the local E2B server runs in
this test's process and outlives the run, which runs in a subprocess; the tasks that were
running are re-attached to in their sandboxes, still alive on the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from e2b_server.server import E2BTestServer
from support.e2b_runs import FAST_RATE, task_sandbox
from support.e2e import wait_for

import parallelcc_sdk as pcc
from parallelcc_sdk import RunStatus, TaskStatus
from parallelcc_sdk.backends.e2b.scripts import AGENT_MARK
from parallelcc_sdk.runfolder.reader import read_journal

pytestmark = [pytest.mark.bwrap, pytest.mark.timeout(180)]

PACKAGE_ROOT = Path(pcc.__file__).resolve().parent.parent
PROMPTS = ["quick", "block", "block", "quick", "quick"]
RUNNING = ("task-2", "task-3")
# A "block" task waits for a file the test puts into its sandbox once the run is resumed.
AGENT = (
    'echo "started $PARALLELCC_TASK_ID"; '
    'if [ "$PARALLELCC_PROMPT" = block ]; then '
    'while [ ! -e "$HOME/release" ]; do sleep 0.1; done; fi; '
    'echo "$PARALLELCC_TASK_ID" > "done-$PARALLELCC_TASK_ID.txt"; echo finished'
)
_RUN_SCRIPT = textwrap.dedent(
    f"""
    import json, sys

    import parallelcc_sdk as pcc

    handle = pcc.submit(
        json.loads(sys.argv[3]),
        repo=sys.argv[1],
        output_dir=sys.argv[2],
        agent=pcc.Command(sys.argv[4]),
        backend=pcc.E2BBackend(prepare="fork", create_rate={FAST_RATE}),
        max_concurrent=2,
        progress="off",
    )
    print(handle.run_dir, flush=True)
    handle.result()
    """
)


def _blocked(run_dir: Path, server: E2BTestServer) -> bool:
    if not (run_dir / "run.json").exists():
        return False
    tasks = {t.task_id: t for t in read_journal(run_dir).tasks}
    if tasks["task-1"].status is not TaskStatus.COMPLETED:
        return False
    # Their agents run, and the process that is to die has written some of their output.
    return all(
        (sandbox_id := tasks[t].sandbox_id) is not None
        and any(AGENT_MARK in line for line in server.commands(sandbox_id))
        and f"started {t}" in (run_dir / t / "execution.log").read_text()
        for t in RUNNING
    )


def kill_run_while_two_tasks_run(server: E2BTestServer, repo: Path, tmp_path: Path) -> Path:
    """Starts the run in a subprocess and kills it (SIGKILL) once task-1 finished and task-2
    and task-3 run; returns its folder."""
    path = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    argv = [str(repo), str(tmp_path / "out"), json.dumps(PROMPTS), AGENT]
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN_SCRIPT, *argv],
        env={**os.environ, "PYTHONPATH": path},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        run_dir = Path(proc.stdout.readline().strip())
        wait_for(
            lambda: proc.poll() is not None or _blocked(run_dir, server),
            timeout=90,
            what="task-1 to finish and task-2 and task-3 to run their agent",
        )
        assert proc.poll() is None, proc.communicate()[1]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    return run_dir


def release(server: E2BTestServer, sandbox_id: str) -> None:
    """Lets a "block" task's agent finish."""
    path = server.host_path(sandbox_id, "/home/user/release")
    assert path is not None
    path.write_text("go\n")


def test_resume_after_kill_9_reattaches_to_the_running_sandboxes(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    run_dir = kill_run_while_two_tasks_run(server, repo, tmp_path)
    before = {t.task_id: t for t in read_journal(run_dir).tasks}
    sandboxes = {t: before[t].sandbox_id for t in RUNNING}
    assert set(sandboxes.values()) <= set(server.alive())  # they outlived the process
    made_before = len(server.records())
    task_1 = (run_dir / "task-1" / "metadata.json").read_bytes()

    handle = pcc.submit_resume(run_dir, progress="off")
    for task_id, sandbox_id in sandboxes.items():
        log = run_dir / task_id / "execution.log"
        wait_for(
            lambda log=log: "re-attached" in log.read_text(), timeout=60, what="re-attaching"
        )
        release(server, str(sandbox_id))
    result = handle.result()

    assert result.state is RunStatus.FINISHED and result.success, result.df[["task_id", "error"]]
    tasks = {t.task_id: t for t in result.tasks}
    for task_id, sandbox_id in sandboxes.items():
        task = tasks[task_id]
        # The same attempt went on in the same sandbox, and its changes were collected there.
        assert task.sandbox_id == sandbox_id and task.attempts == 1
        assert task.sandbox_info["reattached_pid"] > 0
        log = (run_dir / task_id / "execution.log").read_text()
        assert f"started {task_id}" in log  # written by the process that died
        assert f"[parallelcc] re-attached to sandbox {sandbox_id}" in log
        assert log.rstrip().endswith("finished")  # followed to its end by this process
        assert f"+++ b/done-{task_id}.txt" in (run_dir / task_id / "changes.patch").read_text()
        assert server.log.count("connect", sandbox_id=sandbox_id) >= 1
    # Kept as it was; the pending tasks ran, in new forks; no new sandbox for the re-attached.
    assert (run_dir / "task-1" / "metadata.json").read_bytes() == task_1
    assert tasks["task-4"].attempts == tasks["task-5"].attempts == 1
    made = server.records()[made_before:]
    assert sum(task_sandbox(r) for r in made) == 2
    assert {r.sandbox_id for r in made}.isdisjoint(sandboxes.values())
    assert server.alive() == []


def test_a_task_whose_sandbox_is_gone_is_restarted(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    run_dir = kill_run_while_two_tasks_run(server, repo, tmp_path)
    before = {t.task_id: t.sandbox_id for t in read_journal(run_dir).tasks}
    assert server.kill_sandbox(str(before["task-3"]))  # its lifetime ran out meanwhile

    handle = pcc.submit_resume(run_dir, progress="off")
    wait_for(
        lambda: "re-attached" in (run_dir / "task-2" / "execution.log").read_text(),
        timeout=60,
        what="re-attaching to task-2",
    )
    release(server, str(before["task-2"]))

    def restarted() -> str | None:
        task = {t.task_id: t for t in read_journal(run_dir).tasks}["task-3"]
        sandbox_id = task.sandbox_id
        if sandbox_id in (None, before["task-3"]):
            return None
        return sandbox_id if any(AGENT_MARK in c for c in server.commands(sandbox_id)) else None

    wait_for(lambda: restarted() is not None, timeout=60, what="task-3 to start again")
    release(server, str(restarted()))
    result = handle.result()

    assert result.success, result.df[["task_id", "error"]]
    tasks = {t.task_id: t for t in result.tasks}
    assert (tasks["task-2"].sandbox_id, tasks["task-2"].attempts) == (before["task-2"], 1)
    assert tasks["task-3"].sandbox_id != before["task-3"] and tasks["task-3"].attempts == 2
    log = (run_dir / "task-3" / "execution.log").read_text()
    assert "re-attached" not in log and "[parallelcc] attempt 2" in log
    assert "+++ b/done-task-3.txt" in (run_dir / "task-3" / "changes.patch").read_text()
    assert server.alive() == []
