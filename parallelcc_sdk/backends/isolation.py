"""Bubblewrap isolation: the command sees the host read-only and can write only its own folders."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

BWRAP = "bwrap"
HOST_TMP = Path("/tmp")
PRIVATE_PREFIX = "parallelcc-"
"""Names in /tmp that start with this are sandboxes and run folders: never shown to a task."""


@functools.cache
def bubblewrap_works() -> bool:
    """True when ``bwrap`` is installed *and* can create a sandbox here (a container may not)."""
    exe = shutil.which(BWRAP)
    if exe is None:
        return False
    with tempfile.TemporaryDirectory(prefix="parallelcc-bwrap-check-") as tmp:
        probe = bubblewrap_argv(
            ["/bin/sh", "-c", "touch ok"], writable=[Path(tmp)], readable=[], cwd=Path(tmp)
        )
        try:
            done = subprocess.run(probe, capture_output=True, timeout=15, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0 and (Path(tmp) / "ok").exists()


def bubblewrap_argv(
    command: Sequence[str],
    *,
    writable: Sequence[Path],
    readable: Sequence[Path],
    cwd: Path,
) -> list[str]:
    """Wraps ``command`` so that only ``writable`` folders (and a private /tmp) can be written.

    The host is mounted read-only at its own paths, so tools, the agent's executable and git work
    as usual. /tmp is a fresh tmpfs, so what the command creates there is its own; what the host
    has in /tmp (a virtualenv, a checkout) is mounted back read-only, except other sandboxes of
    this SDK, which a task must not see. ``readable`` folders are mounted read-only and
    ``writable`` ones read-write, at the same paths, so every path the command is given means the
    same thing inside and outside. A private PID namespace means killing the sandbox kills
    everything it started.
    """
    argv = [
        BWRAP,
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        "/dev/shm",
    ]
    for path in _host_tmp_entries():
        # "-try": an entry that disappears before the sandbox starts is simply not there.
        argv += ["--ro-bind-try", str(path), str(path)]
    for path in readable:
        argv += ["--ro-bind", str(path), str(path)]
    for path in writable:
        argv += ["--bind", str(path), str(path)]
    argv += ["--unshare-pid", "--die-with-parent", "--chdir", str(cwd), "--", *command]
    return argv


def _host_tmp_entries() -> list[Path]:
    try:
        names = sorted(entry.name for entry in os.scandir(HOST_TMP))
    except OSError:
        return []
    return [HOST_TMP / name for name in names if not name.startswith(PRIVATE_PREFIX)]
