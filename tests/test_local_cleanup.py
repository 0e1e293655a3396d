"""LocalBackend.cleanup: what runs that died left behind goes; what a live run uses stays.

The crash case itself (a run process killed with SIGKILL) is in the conformance suite; here are
the local backend's own rules: folder names and owners, marked processes, live runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.e2e import local_run_options, marked_processes, pid_alive, wait_for, wait_until_gone

import parallelcc_sdk as pcc
from parallelcc_sdk.backends._cgroup import Cgroup, own_cgroup
from parallelcc_sdk.runfolder import read_journal

SANDBOX_MARKER = "PARALLELCC_SANDBOX_ID"
OWNER_MARKER = "PARALLELCC_SANDBOX_OWNER"
DEAD_OWNER = "999999999:12345"


@pytest.fixture
def system_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A system temporary folder of this test's own, for the runs and for cleanup(None)."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for proc in processes:
        proc.kill()
        proc.wait()


def marked_sleeper(marker: str, owner: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, SANDBOX_MARKER: marker, OWNER_MARKER: owner}
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)


def leftover(parent: Path, name: str, owner: str | None, age_s: float = 0) -> Path:
    folder = parent / name
    (folder / "workspace").mkdir(parents=True)
    if owner is not None:
        (folder / "owner").write_text(owner + "\n")
    if age_s:
        old = time.time() - age_s
        os.utime(folder, (old, old))
    return folder


def test_cleanup_of_every_run_closes_only_what_dead_runs_left(
    system_tmp: Path, spawned: list[subprocess.Popen[bytes]], pcc_git_env: Path
) -> None:
    me = f"{os.getpid()}:{_start_time(os.getpid())}"
    dead_box = leftover(system_tmp, "parallelcc-box.dead-run.task-1.1.ab12", DEAD_OWNER)
    dead_scratch = leftover(system_tmp, "parallelcc-run.dead-run.cd34", DEAD_OWNER)
    old_ownerless = leftover(system_tmp, "parallelcc-box.old.task-1.1.ef56", None, age_s=3600)
    young_ownerless = leftover(system_tmp, "parallelcc-box.new.task-1.1.gh78", None)
    live_box = leftover(system_tmp, "parallelcc-box.live-run.task-1.1.ij90", me)
    other = leftover(system_tmp, "parallelcc-something-else", DEAD_OWNER)
    orphan = marked_sleeper(f"local:{dead_box.name}", DEAD_OWNER)
    alive = marked_sleeper(f"local:{live_box.name}", me)
    spawned += [orphan, alive]
    wait_for(lambda: len(marked_processes([f"local:{dead_box.name}"])) == 1, what="the orphan")

    closed = pcc.cleanup()

    assert wait_until_gone([orphan.pid]) == []
    assert pid_alive(alive.pid)
    assert not dead_box.exists() and not dead_scratch.exists() and not old_ownerless.exists()
    assert young_ownerless.exists() and live_box.exists() and other.exists()
    assert f"local:{dead_box.name} (process {orphan.pid})" in closed
    assert any(str(dead_scratch) in item for item in closed)
    assert not any("live-run" in item for item in closed)


def test_cleanup_of_one_run_leaves_other_runs_alone(tmp_path: Path, pcc_git_env: Path) -> None:
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    run_dir = tmp_path / "results" / "run-a"
    run_dir.mkdir(parents=True)
    config = {"backend": {"name": "local", "isolation": "none", "work_dir": str(work_dir)}}
    journal = {"run_id": "run-a", "config": config, "tasks": []}
    (run_dir / "run.json").write_text(json.dumps(journal))
    mine = leftover(work_dir, "parallelcc-box.run-a.task-1.1.aa11", DEAD_OWNER)
    theirs = leftover(work_dir, "parallelcc-box.run-b.task-1.1.bb22", DEAD_OWNER)

    closed = pcc.cleanup(run_dir)

    assert (mine.exists(), theirs.exists()) == (False, True)
    assert closed == [f"local:{mine.name} (folder {mine})"]


def test_a_live_run_is_left_alone(
    system_tmp: Path, pcc_repo: Path, tmp_path: Path
) -> None:
    handle = pcc.submit(
        ["x"],
        agent=pcc.Command("echo ready; sleep 30"),
        **local_run_options(pcc_repo, tmp_path / "results"),
    )
    try:
        wait_for(lambda: handle.tasks[0].last_output == "ready", what="the task to run")
        record = handle.tasks[0]
        root = Path(record.sandbox_info["root"])
        assert root.parent == system_tmp
        assert root.name.startswith(f"parallelcc-box.{handle.run_id}.")
        assert read_journal(handle.run_dir).tasks[0].sandbox_info["root"] == str(root)

        assert pcc.cleanup(handle.run_dir) == []
        assert pcc.cleanup() == []

        assert root.exists() and marked_processes([record.sandbox_id or ""])
    finally:
        handle.cancel()
        handle.result(timeout=30)
    # The run itself removed its sandbox and its scratch folder.
    assert sorted(os.listdir(system_tmp)) == []


def test_cleanup_of_a_folder_that_is_not_a_run_says_so(tmp_path: Path) -> None:
    with pytest.raises(pcc.ValidationError, match=r"has no run\.json"):
        pcc.cleanup(tmp_path)


def _start_time(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2 :].split()[19]


@pytest.fixture
def cgroups() -> Iterator[list[Cgroup]]:
    home = own_cgroup()
    if home is None:
        pytest.fail("this machine gives no writable cgroup v2; the cleanup of cgroups needs one")
    made: list[Cgroup] = []
    yield made
    for cgroup in made:
        cgroup.remove()


def sleeper_in(cgroups: list[Cgroup], name: str, owner: str) -> tuple[Cgroup, int]:
    """A new cgroup ``name`` with a marked process in it, as a sandbox's command would be."""
    cgroup = Cgroup.create(name)
    assert cgroup is not None, f"cannot create the cgroup {name}"
    cgroups.append(cgroup)
    env = {**os.environ, SANDBOX_MARKER: f"local:{name}", OWNER_MARKER: owner}
    argv = cgroup.wrap([sys.executable, "-c", "import time; time.sleep(60)"])
    # Started and left to run: the cleanup (or the fixture) kills it; the reaper thread below
    # keeps it from staying a zombie.
    proc = subprocess.Popen(argv, env=env)
    threading.Thread(target=proc.wait, daemon=True).start()
    wait_for(lambda: proc.pid in cgroup.pids(), what="the process to join its cgroup")
    return cgroup, proc.pid


def test_cleanup_kills_and_removes_the_cgroups_dead_runs_left(
    system_tmp: Path, cgroups: list[Cgroup], pcc_git_env: Path
) -> None:
    me = f"{os.getpid()}:{_start_time(os.getpid())}"
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    dead_box = leftover(system_tmp, f"parallelcc-box.dead-{tag}.task-1.1.ab12", DEAD_OWNER)
    live_box = leftover(system_tmp, f"parallelcc-box.live-{tag}.task-1.1.cd34", me)
    dead_cgroup, dead_pid = sleeper_in(cgroups, dead_box.name, DEAD_OWNER)
    live_cgroup, live_pid = sleeper_in(cgroups, live_box.name, me)

    closed = pcc.cleanup()

    assert wait_until_gone([dead_pid]) == []
    assert not dead_cgroup.path.exists() and not dead_box.exists()
    assert f"local:{dead_box.name} (cgroup {dead_cgroup.path})" in closed
    assert pid_alive(live_pid) and live_cgroup.path.exists() and live_box.exists()
    assert not any(f"live-{tag}" in item for item in closed)


def test_cleanup_of_one_run_removes_its_empty_cgroups_once_it_is_over(
    tmp_path: Path, cgroups: list[Cgroup], pcc_git_env: Path
) -> None:
    run_id = f"run-{os.getpid()}-{time.monotonic_ns()}"
    run_dir = tmp_path / "results" / run_id
    run_dir.mkdir(parents=True)
    config = {"backend": {"name": "local", "isolation": "none", "work_dir": str(tmp_path)}}
    journal = {"run_id": run_id, "state": "finished", "config": config, "tasks": []}
    (run_dir / "run.json").write_text(json.dumps(journal))
    # Its folder is gone already (a close whose cgroup removal timed out).
    cgroup = Cgroup.create(f"parallelcc-box.{run_id}.task-1.1.ef56")
    assert cgroup is not None
    cgroups.append(cgroup)
    other = Cgroup.create(f"parallelcc-box.other-{run_id}.task-1.1.gh78")
    assert other is not None
    cgroups.append(other)

    closed = pcc.cleanup(run_dir)

    assert not cgroup.path.exists() and other.path.exists()
    assert f"local:{cgroup.path.name} (cgroup {cgroup.path})" in closed
