"""Bubblewrap isolation: the command sees the host read-only, holds no capability, and can write
only its own folders.

Which parts of the host a task may see is decided in :mod:`.visibility`; this module turns that
decision into bubblewrap's arguments, and finds out which kind of bubblewrap sandbox works here.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BWRAP = "bwrap"
HOST_TMP = Path("/tmp")
PRIVATE_PREFIX = "parallelcc-"
"""Folders whose name starts with this are sandboxes and run folders: never shown to a task."""
UNPRIVILEGED_UID = 1000
"""The uid a task runs as, in its own user namespace, when the SDK runs as root."""
_HIDDEN_MODE = "0555"
"""Hidden folders are empty and read-only: a write there fails instead of vanishing silently."""


@dataclass(frozen=True)
class Bubblewrap:
    """A kind of bubblewrap sandbox that works on this machine."""

    executable: str
    user_namespace: bool
    """The task runs in a user namespace of its own, as :attr:`uid`: as root, that means it is
    no longer root, even without capabilities."""
    no_nested_user_namespaces: bool
    """The task cannot create user namespaces itself (bubblewrap 0.8 and later)."""
    uid: int
    """The uid the task runs as, as the task sees it."""

    @property
    def runs_as_root(self) -> bool:
        return self.uid == 0

    def describe_user(self) -> str:
        """Who the task runs as, for ``run.json``."""
        who = "root" if self.runs_as_root else f"uid {self.uid}"
        where = " in its own user namespace" if self.user_namespace else ""
        return f"{who}{where}, without capabilities"


@dataclass(frozen=True)
class MountPlan:
    """What a task sees of the host, beyond the read-only root and its private /tmp."""

    writable: Sequence[Path]
    """Mounted read-write at their own paths (the task's workspace, home and tmp)."""
    readable: Sequence[Path] = ()
    """Mounted read-only at their own paths, also inside a hidden folder (the user's repository,
    the snapshot's objects)."""
    hidden: Sequence[Path] = ()
    """Shown empty (a folder) or as /dev/null (a file)."""
    exposed: Sequence[Path] = ()
    """Readable even inside a hidden folder (toolchains under a home); skipped when missing."""
    sandbox_parents: Sequence[Path] = field(default_factory=tuple)
    """Folders that hold sandboxes and run folders: the entries named ``parallelcc-*`` are hidden,
    the others stay readable (like /tmp)."""


def find_bubblewrap() -> Bubblewrap | None:
    """The bubblewrap that works here, the most isolating kind first; ``None`` if none does."""
    executable = shutil.which(BWRAP)
    if executable is None:
        return None
    return _probe(executable, os.geteuid())


def bubblewrap_works() -> bool:
    """True when ``bwrap`` is installed *and* can create a sandbox here (a container may not)."""
    return find_bubblewrap() is not None


@functools.cache
def _probe(executable: str, euid: int) -> Bubblewrap | None:
    # Cached per executable, so a different ``bwrap`` first on PATH is probed afresh.
    for candidate in _candidates(executable, euid):
        if _works(candidate):
            return candidate
    return None


def _candidates(executable: str, euid: int) -> Iterator[Bubblewrap]:
    uid = UNPRIVILEGED_UID if euid == 0 else euid
    yield Bubblewrap(executable, user_namespace=True, no_nested_user_namespaces=True, uid=uid)
    # Older bubblewrap has no --disable-userns; the read-only mounts stay locked regardless.
    yield Bubblewrap(executable, user_namespace=True, no_nested_user_namespaces=False, uid=uid)
    # No user namespaces here (disabled by the kernel or a security module): as root the task
    # stays uid 0, but without a single capability.
    yield Bubblewrap(executable, user_namespace=False, no_nested_user_namespaces=False, uid=euid)


def _works(candidate: Bubblewrap) -> bool:
    with tempfile.TemporaryDirectory(prefix=f"{PRIVATE_PREFIX}bwrap-check-") as tmp:
        folder = Path(tmp)
        # Every kind of mount a task's sandbox uses (--perms needs bubblewrap 0.5).
        (folder / "hidden").mkdir()
        probe = bubblewrap_argv(
            ["/bin/sh", "-c", "touch ok"],
            bwrap=candidate,
            plan=MountPlan(writable=[folder], hidden=[folder / "hidden"]),
            cwd=folder,
        )
        try:
            done = subprocess.run(probe, capture_output=True, timeout=15, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0 and (folder / "ok").exists()


def bubblewrap_argv(
    command: Sequence[str], *, bwrap: Bubblewrap, plan: MountPlan, cwd: Path
) -> list[str]:
    """Wraps ``command`` in a sandbox laid out by ``plan``.

    The host is mounted read-only at its own paths, so tools, the agent's executable and git work
    as usual, and every path the command is given means the same inside and outside. /tmp is a
    fresh tmpfs; what the host has there is mounted back read-only, except sandboxes and run
    folders. Mounts are stacked in this order, each over the ones before: hidden folders, then
    readable and exposed ones (visible again inside a hidden folder), then the hidden folders that
    lie inside those (hidden again), then the writable ones. A private PID namespace means that
    when the command exits, everything it started is killed.
    """
    argv = [bwrap.executable, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    argv += ["--tmpfs", str(HOST_TMP), "--tmpfs", "/dev/shm", *_public_entries(HOST_TMP)]
    parents = [p for p in _unique(plan.sandbox_parents) if p != HOST_TMP and os.path.isdir(p)]
    for parent in parents:
        argv += ["--perms", _HIDDEN_MODE, "--tmpfs", str(parent), *_public_entries(parent)]
    hidden = [p for p in _unique(plan.hidden) if p not in (Path("/"), HOST_TMP)]
    argv += _hide([p for p in hidden if not _strictly_inside_any(p, hidden)])
    shown = [*_unique(plan.readable), *_unique(plan.exposed)]
    for path in plan.readable:
        argv += ["--ro-bind", str(path), str(path)]
    for path in plan.exposed:
        argv += ["--ro-bind-try", str(path), str(path)]
    # A hidden folder inside a shown one (the output folder inside the repository, a kernel's
    # connection files inside an exposed ~/.local) is hidden again.
    argv += _hide([p for p in [*hidden, *parents] if _strictly_inside_any(p, shown)])
    for path in plan.writable:
        argv += ["--bind", str(path), str(path)]
    if bwrap.user_namespace:
        argv += ["--unshare-user"]
        if bwrap.no_nested_user_namespaces:
            argv += ["--disable-userns"]
        argv += ["--uid", str(bwrap.uid), "--gid", str(bwrap.uid)]
    argv += [
        "--cap-drop", "ALL",
        "--unshare-pid",
        "--die-with-parent",
        # No controlling terminal to push keystrokes into (TIOCSTI).
        "--new-session",
        "--chdir", str(cwd),
        "--",
        *command,
    ]
    return argv


def _hide(paths: Sequence[Path]) -> list[str]:
    argv: list[str] = []
    # Parents first, so that hiding a parent does not undo hiding its child.
    for path in sorted(paths, key=lambda p: len(p.parts)):
        # os.path: a path this user may not even look at is simply not there.
        if os.path.isdir(path):
            argv += ["--perms", _HIDDEN_MODE, "--tmpfs", str(path)]
        elif os.path.exists(path):
            argv += ["--ro-bind", os.devnull, str(path)]
    return argv


def _public_entries(folder: Path) -> list[str]:
    """Arguments that mount back, read-only, the entries of ``folder`` that are not private."""
    try:
        names = sorted(entry.name for entry in os.scandir(folder))
    except OSError:
        return []
    argv: list[str] = []
    for name in names:
        if not name.startswith(PRIVATE_PREFIX):
            # "-try": an entry that disappears before the sandbox starts is simply not there.
            argv += ["--ro-bind-try", str(folder / name), str(folder / name)]
    return argv


def _unique(paths: Sequence[Path]) -> list[Path]:
    return list(dict.fromkeys(paths))


def _strictly_inside_any(path: Path, folders: Sequence[Path]) -> bool:
    return any(path != folder and path.is_relative_to(folder) for folder in folders)
