"""Which process writes a run, and whether it is still alive.

A run's journal records the process that runs it, so a reader can tell a live run from one whose
process died (``kill -9``, a crash, a reboot) without any lock or heartbeat. A pid alone is not
enough: pids are reused. On Linux the kernel's boot id and the process's start time (in clock
ticks since boot) together name one process for good; elsewhere the pid is all there is.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RunProcess"]

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _read_boot_id() -> str | None:
    try:
        return _BOOT_ID.read_text().strip() or None
    except OSError:
        return None


def _start_ticks(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat``: when the process started, in ticks since boot."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        if fields[0] in (b"Z", b"X"):  # a zombie has exited; only its exit code is left
            return None
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


@dataclass(frozen=True)
class RunProcess:
    """The identity of the process that runs a run."""

    pid: int
    host: str
    boot_id: str | None = None
    start_ticks: int | None = None

    @classmethod
    def current(cls) -> RunProcess:
        """This process."""
        return cls.of(os.getpid())

    @classmethod
    def of(cls, pid: int) -> RunProcess:
        """The process ``pid`` of this machine, as it is now."""
        return cls(pid, socket.gethostname(), _read_boot_id(), _start_ticks(pid))

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "host": self.host,
            "boot_id": self.boot_id,
            "start_ticks": self.start_ticks,
        }

    @classmethod
    def from_json(cls, data: Any) -> RunProcess | None:
        """The recorded process, or ``None`` if the journal has none (or a damaged one)."""
        if not isinstance(data, Mapping):
            return None
        pid, host = data.get("pid"), data.get("host")
        boot_id, ticks = data.get("boot_id"), data.get("start_ticks")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            return None
        if not isinstance(host, str):
            return None
        return cls(
            pid,
            host,
            boot_id if isinstance(boot_id, str) else None,
            ticks if isinstance(ticks, int) and not isinstance(ticks, bool) else None,
        )

    def is_alive(self) -> bool | None:
        """True or False where this machine can tell; ``None`` for a run on another host."""
        if self.host != socket.gethostname():
            return None
        if self.boot_id is not None:
            boot_id = _read_boot_id()
            if boot_id is not None and boot_id != self.boot_id:
                return False  # the machine rebooted since: every process of the run is gone
        if self.start_ticks is not None:
            ticks = _start_ticks(self.pid)
            if ticks is not None or Path("/proc/self/stat").exists():
                return ticks == self.start_ticks
        return _pid_exists(self.pid)
