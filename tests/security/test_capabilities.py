"""A task holds no capability: as root it cannot remount the read-only host and write to it.

As root, bubblewrap used to keep every capability (CapEff 000001fffeffffff): a task remounted /
read-write and wrote to /root and to the user's repository. The same attacks run here as the SDK
runs them (as root in CI), and again as an unprivileged user (through ``setpriv`` when the tests
run as root).
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.attacks import ATTEMPT, copies, report_of, verdicts_in
from support.e2e import bubblewrap_backend, diff_states, local_run_options, tree_state
from support.gitrepo import make_repo

import parallelcc_sdk as pcc
from parallelcc_sdk import TaskStatus
from parallelcc_sdk.backends.isolation import (
    Bubblewrap,
    MountPlan,
    bubblewrap_argv,
    find_bubblewrap,
)

pytestmark = pytest.mark.bwrap

NO_CAPABILITIES = "0000000000000000"
NOBODY = 65534


def privileged_attacks(targets: dict[str, Path]) -> str:
    """Shell code trying every way out that a capability or root would open."""
    writes = " ".join(
        f"attempt write-{name} 'echo pwned >> \"{path}\"';" for name, path in targets.items()
    )
    return (
        ATTEMPT
        + "grep CapEff /proc/self/status | awk '{print $2}' > capeff.txt; id -u > uid.txt; "
        "attempt remount-root 'mount -o remount,rw,bind /'; "
        f"attempt remount-then-write 'mount -o remount,rw,bind / && touch \"{targets['etc']}\"'; "
        "attempt mount-tmpfs 'mount -t tmpfs none /mnt'; "
        "attempt new-user-namespace 'unshare --user --map-root-user true'; "
        "attempt chroot 'chroot / true'; "
        "attempt raw-socket 'python3 -c \"import socket; socket.socket(socket.AF_INET, "
        "socket.SOCK_RAW, socket.IPPROTO_ICMP)\"'; "
        f"{writes}"
    )


def test_a_task_holds_no_capability_and_cannot_remount_or_write_the_host(
    tmp_path: Path, pcc_repo: Path, repo_untouched: Callable[[], None]
) -> None:
    backend = bubblewrap_backend()
    probe = f"pcc-probe-{uuid.uuid4().hex}"
    targets = {
        "root-home": Path("/root") / probe,
        "etc": Path("/etc") / probe,
        "repo": pcc_repo / probe,
        "repo-file": pcc_repo / "README.md",
        "repo-git-config": pcc_repo / ".git" / "config",
        "repo-objects": pcc_repo / ".git" / "objects" / probe,
    }
    try:
        result = pcc.run(
            ["break out"],
            agent=pcc.Command(privileged_attacks(targets)),
            **local_run_options(pcc_repo, tmp_path / "results", backend=backend),
        )
        record = result.tasks[0]
        assert record.status is TaskStatus.COMPLETED, record.error
        assert record.isolation == "bubblewrap"
        assert (copies(record) / "capeff.txt").read_text().strip() == NO_CAPABILITIES
        assert set(report_of(record).values()) == {"denied"}, report_of(record)
        assert len(report_of(record)) == 6 + len(targets)
        # Where user namespaces work, the task is not root even though the SDK may be; and what
        # the agent is told (Claude Code needs to know) is the truth.
        uid = int((copies(record) / "uid.txt").read_text())
        bwrap = backend.bubblewrap
        assert bwrap is not None and (uid == 0) == bwrap.runs_as_root
        if os.geteuid() == 0 and bwrap.user_namespace:
            assert uid != 0
        assert [p for p in targets.values() if p.name == probe and p.exists()] == []
        repo_untouched()
    finally:
        for path in targets.values():
            if path.name == probe:
                path.unlink(missing_ok=True)


# -- as a normal user ---------------------------------------------------------------------------


@pytest.fixture
def unprivileged_area() -> Iterator[Path]:
    """A folder an unprivileged user can reach (pytest's temporary folders are root's, 0700)."""
    area = Path(tempfile.mkdtemp(prefix="pcc-unprivileged-"))
    area.chmod(0o755)
    try:
        yield area
    finally:
        shutil.rmtree(area, ignore_errors=True)


def as_unprivileged(argv: list[str]) -> list[str]:
    """``argv`` run as ``nobody`` when the tests run as root, as they are otherwise."""
    if os.geteuid() != 0:
        return argv
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *argv]


def owned_folder(path: Path, uid: int) -> Path:
    path.mkdir(parents=True)
    os.chown(path, uid, uid)
    return path


def test_as_a_normal_user_the_sandbox_holds_too(unprivileged_area: Path) -> None:
    installed = find_bubblewrap()
    assert installed is not None, "bubblewrap does not work here"
    uid = NOBODY if os.geteuid() == 0 else os.geteuid()
    # The sandbox bubblewrap makes for a normal user: its own uid, in a user namespace.
    bwrap = Bubblewrap(installed.executable, user_namespace=True,
                       no_nested_user_namespaces=installed.no_nested_user_namespaces, uid=uid)
    area = unprivileged_area
    workspace = owned_folder(area / "parallelcc-task-1" / "workspace", uid)
    home = owned_folder(area / "home-of-user", uid)
    (home / ".npmrc").write_text("//registry.npmjs.org/:_authToken=npm_secret_token_1234\n")
    os.chown(home / ".npmrc", uid, uid)
    (home / ".npmrc").chmod(0o600)
    own_files = owned_folder(area / "users-files", uid)
    other = owned_folder(area / "parallelcc-task-2" / "workspace", uid)
    (other / "theirs.txt").write_text("another task's work\n")
    os.chown(other / "theirs.txt", uid, uid)
    script = (
        ATTEMPT
        + "grep CapEff /proc/self/status | awk '{print $2}' > capeff.txt; "
        "attempt remount-root 'mount -o remount,rw,bind /'; "
        f"attempt write-own-files 'echo pwned > \"{own_files}/pwned\"'; "
        f"attempt read-home 'cat \"{home}/.npmrc\"'; "
        f"attempt read-other-sandbox 'cat \"{other}/theirs.txt\"'; "
        f"attempt write-other-sandbox 'echo pwned > \"{other}/pwned\"'; "
        "attempt workspace 'echo mine > mine.txt'"
    )
    argv = bubblewrap_argv(
        ["/bin/sh", "-c", script],
        bwrap=bwrap,
        plan=MountPlan(writable=[workspace], hidden=[home], sandbox_parents=[area]),
        cwd=workspace,
    )
    done = subprocess.run(as_unprivileged(argv), capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert (workspace / "capeff.txt").read_text().strip() == NO_CAPABILITIES
    verdicts = verdicts_in(workspace)
    assert verdicts == {
        "remount-root": "denied",
        "write-own-files": "denied",
        "read-home": "denied",
        "read-other-sandbox": "denied",
        "write-other-sandbox": "denied",
        "workspace": "done",
    }
    assert list(own_files.iterdir()) == []
    assert sorted(p.name for p in other.iterdir()) == ["theirs.txt"]


def unprivileged_python(env: dict[str, str]) -> str | None:
    """A Python that ``nobody`` can run with this SDK and its dependencies importable."""
    candidates = [sys.executable, shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")]
    for python in dict.fromkeys(c for c in candidates if c):
        probe = as_unprivileged([python, "-c", "import parallelcc_sdk, pandas, yaml"])
        if subprocess.run(probe, env=env, capture_output=True, check=False).returncode == 0:
            return python
    return None


def test_a_whole_run_as_a_normal_user_is_sandboxed_the_same_way(unprivileged_area: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the other tests of this file already run as this normal user")
    assert find_bubblewrap() is not None, "bubblewrap does not work here"
    area = unprivileged_area
    home = area / "home"
    repo = make_repo(area / "repo", {"README.md": "# demo\n"})
    (home / ".npmrc").parent.mkdir()
    (home / ".npmrc").write_text("//registry.npmjs.org/:_authToken=npm_secret_token_1234\n")
    (home / ".npmrc").chmod(0o600)
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(area)], check=True)
    before = tree_state(repo)
    sdk_root = Path(pcc.__file__).resolve().parent.parent
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(sdk_root), *site.getsitepackages()]),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    python = unprivileged_python(env)
    if python is None:
        pytest.skip("no Python here that an unprivileged user can run with the SDK importable")
    targets = {
        "repo": repo / "pwned",
        "repo-file": repo / "README.md",
        "home": home / "pwned",
        "etc": Path("/etc") / f"pcc-probe-{uuid.uuid4().hex}",
    }
    attack = privileged_attacks(targets) + f"attempt read-npmrc 'cat \"{home}/.npmrc\"'"
    script = (
        "import json, sys, parallelcc_sdk as pcc\n"
        "r = pcc.run(['attack'], repo=sys.argv[1], output_dir=sys.argv[2], progress='off',\n"
        "            backend=pcc.LocalBackend(isolation='bubblewrap'),\n"
        "            agent=pcc.Command(sys.argv[3]))\n"
        "t = r.tasks[0]\n"
        "print(json.dumps({'status': t.status.value, 'error': t.error, 'path': t.output_path,\n"
        "                  'isolation': t.isolation}))\n"
    )
    try:
        done = subprocess.run(
            as_unprivileged([python, "-c", script, str(repo), str(area / "results"), attack]),
            env=env, capture_output=True, timeout=120, check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        record = json.loads(done.stdout.decode().splitlines()[-1])
        assert (record["status"], record["error"], record["isolation"]) == (
            "completed", None, "bubblewrap"
        )
        changed = Path(record["path"]) / "changed-files"
        assert (changed / "capeff.txt").read_text().strip() == NO_CAPABILITIES
        assert (changed / "uid.txt").read_text().strip() == str(NOBODY)
        verdicts = verdicts_in(changed)
        assert set(verdicts.values()) == {"denied"}, verdicts
        assert diff_states(before, tree_state(repo)) == []
        assert not (home / "pwned").exists()
    finally:
        targets["etc"].unlink(missing_ok=True)
