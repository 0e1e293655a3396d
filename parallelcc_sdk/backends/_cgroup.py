"""A cgroup per sandbox, where this machine lets us make one: it holds every process the command
starts, whatever it does to hide (``setsid``, double forks, ``env -i``), so all of them can be
killed at once.

cgroup v2 only. Root can create one almost anywhere; a normal user where systemd delegated a
subtree. Where neither works, :meth:`Cgroup.create` returns ``None`` and the sandbox falls back
on its process group and environment marker (see ``_process``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

_REMOVE_WAIT_S = 2.0

# Joins the cgroup, then becomes the command: nothing the command starts can be outside it.
_JOIN = 'echo $$ > "$1" && shift && exec "$@"'


class Cgroup:
    """One cgroup holding one sandbox's processes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, name: str) -> Cgroup | None:
        """A new cgroup ``name`` (a sandbox's folder name, ``parallelcc-...``) below the SDK's
        own; ``None`` where it cannot be made."""
        parent = own_cgroup()
        if parent is None:
            return None
        path = parent / name
        try:
            path.mkdir()
        except OSError:
            return None
        return cls(path)

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv``, run so that it starts inside this cgroup."""
        return ["/bin/sh", "-c", _JOIN, "sh", str(self.path / "cgroup.procs"), *argv]

    def kill(self) -> None:
        """SIGKILLs every process in the cgroup."""
        try:
            (self.path / "cgroup.kill").write_text("1")
            return
        except FileNotFoundError:
            if not self.path.exists():
                return
        except OSError:
            pass
        # Kernels before 5.14 have no cgroup.kill: freeze, so nothing forks meanwhile, then kill.
        with contextlib.suppress(OSError):
            (self.path / "cgroup.freeze").write_text("1")
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            (self.path / "cgroup.freeze").write_text("0")

    def pids(self) -> list[int]:
        try:
            return [int(line) for line in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def remove(self) -> None:
        """Kills what is left and removes the cgroup (a killed process takes a moment to go)."""
        deadline = time.monotonic() + _REMOVE_WAIT_S
        while True:
            self.kill()
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.01)


def own_cgroup() -> Path | None:
    """The folder of the cgroup v2 this process is in, if it can be written."""
    return _own_cgroup(os.getpid())


@functools.cache
def _own_cgroup(_pid: int) -> Path | None:
    # Cached per pid: a forked child looks again.
    mount = _cgroup2_mount()
    if mount is None:
        return None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    relative = next((line[3:] for line in lines if line.startswith("0::")), None)
    if relative is None:
        return None
    folder = mount / relative.lstrip("/")
    return folder if os.access(folder, os.W_OK) else None


def _cgroup2_mount() -> Path | None:
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        # "<id> <parent> <dev> <root> <mount point> <options> ... - <fstype> <source> <options>"
        fields = line.split(" - ", 1)
        if len(fields) == 2 and fields[1].split(" ", 1)[0] == "cgroup2":
            return Path(fields[0].split(" ")[4].replace("\\040", " "))
    return None
