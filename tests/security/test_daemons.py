"""A task ends when its command exits, and nothing it started outlives it.

Attacks that used to work without isolation: ``setsid sleep 300 & echo started`` kept the task
hanging until the daemon exited (it held the output pipe open); ``env -i setsid sleep 300
>/dev/null 2>&1 &`` lost the sandbox's marker and survived the run.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from support.attacks import copies
from support.e2e import backend_for, local_run_options, pid_alive, wait_until_gone

import parallelcc_sdk as pcc
from parallelcc_sdk import Task, TaskStatus
from parallelcc_sdk.backends._cgroup import own_cgroup

ISOLATIONS = ["none", pytest.param("bubblewrap", marks=pytest.mark.bwrap)]
# Long enough that only a hang could reach it; the tasks themselves take a second.
HANG_LIMIT_S = 60

# Each daemon sleeps for a duration no other process on this machine uses, so that it can be
# found from the host whatever PID namespace it is in; it then writes "up" into the workspace.
DAEMONS = {
    # Keeps the task's output open: the task must still end when its command does.
    "holds-output": "setsid sh -c 'echo up > daemon.txt; exec sleep {sleep}' & echo started",
    # Drops every trace of the sandbox in its environment, and every output.
    "env-wiped": "env -i setsid sh -c 'echo up > daemon.txt; exec sleep {sleep}' >/dev/null 2>&1 &",
    # Leaves the process group and double-forks.
    "double-fork": "(setsid sh -c '(echo up > daemon.txt; exec sleep {sleep}) &' &) ; echo forked",
}


def sleepers(duration: str) -> list[int]:
    """Live processes of this machine running ``sleep <duration>``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[:2] == [b"sleep", duration.encode()] and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_daemons_neither_keep_a_task_running_nor_survive_it(
    isolation: str, tmp_path: Path, pcc_repo: Path, repo_untouched: Callable[[], None]
) -> None:
    durations = {name: f"{300 + n}.{secrets.randbelow(10**6):06d}" for n, name in
                 enumerate(DAEMONS)}
    # The command waits until its daemon is up, then exits at once.
    agent = pcc.Command(
        'case "$PARALLELCC_TASK_ID" in '
        + " ".join(
            f"{name}) {command.format(sleep=durations[name])} ;; "
            for name, command in DAEMONS.items()
        )
        + "esac; i=0; while [ ! -s daemon.txt ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); "
        "done"
    )
    result = pcc.run(
        [Task(name, id=name) for name in DAEMONS],
        agent=agent,
        max_concurrent=len(DAEMONS),
        task_timeout=HANG_LIMIT_S,
        **local_run_options(pcc_repo, tmp_path / "results", backend=backend_for(isolation)),
    )
    statuses = {t.task_id: (t.status, t.error) for t in result.tasks}
    assert statuses == dict.fromkeys(DAEMONS, (TaskStatus.COMPLETED, None))
    assert all((copies(t) / "daemon.txt").read_text() == "up\n" for t in result.tasks)
    assert all(t.isolation == isolation for t in result.tasks)
    # Without a sandbox and without a cgroup, a daemon that wiped its environment cannot be
    # told from any other process: documented as what isolation="none" cannot guarantee.
    untraceable = {"env-wiped"} if isolation == "none" and own_cgroup() is None else set()
    survivors = {
        name: pids
        for name, duration in durations.items()
        if name not in untraceable and (pids := _gone_or_left(duration))
    }
    assert survivors == {}
    repo_untouched()


def _gone_or_left(duration: str) -> list[int]:
    return wait_until_gone(sleepers(duration))


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_output_printed_before_the_command_exits_is_all_kept(
    isolation: str, tmp_path: Path, pcc_repo: Path
) -> None:
    # A daemon holds the pipes open; the lines the command printed must still all be read.
    agent = pcc.Command(
        "setsid sleep 300 & i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done; "
        "printf 'no newline at the end'"
    )
    result = pcc.run(
        ["x"],
        agent=agent,
        task_timeout=HANG_LIMIT_S,
        **local_run_options(pcc_repo, tmp_path / "results", backend=backend_for(isolation)),
    )
    record = result.tasks[0]
    assert record.status is TaskStatus.COMPLETED, record.error
    log = (Path(record.output_path or "") / "execution.log").read_text().splitlines()
    assert log == [f"line-{i}" for i in range(2000)] + ["no newline at the end"]
