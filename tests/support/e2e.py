"""Helpers for the end-to-end tests: real processes and what is left (repositories: gitrepo.py)."""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

import parallelcc_sdk as pcc

SANDBOX_MARKER = "PARALLELCC_SANDBOX_ID"


# -- trees ------------------------------------------------------------------------------------


def tree_state(root: Path) -> dict[str, tuple[str, int, bytes]]:
    """Every entry under ``root`` (``.git`` included): kind, permission bits and content."""
    state: dict[str, tuple[str, int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            info = path.lstat()
            rel = path.relative_to(root).as_posix()
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                state[rel] = ("link", mode, os.readlink(path).encode())
            elif stat.S_ISDIR(info.st_mode):
                state[rel] = ("dir", mode, b"")
            else:
                state[rel] = ("file", mode, path.read_bytes())
    return state


def diff_states(
    before: Mapping[str, tuple[str, int, bytes]], after: Mapping[str, tuple[str, int, bytes]]
) -> list[str]:
    """Paths that were added, removed or changed, for a readable assertion message."""
    changed = [p for p in before.keys() & after.keys() if before[p] != after[p]]
    return sorted(
        [f"+{p}" for p in after.keys() - before.keys()]
        + [f"-{p}" for p in before.keys() - after.keys()]
        + [f"~{p}" for p in changed]
    )


# -- processes --------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """True if ``pid`` is a live process (a zombie waiting for a parent to reap it is dead)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "")
    return state != "Z"


def read_pids(path: Path) -> list[int]:
    """The pids a task command appended to ``path`` (``<task-id> <pid>`` or ``<pid>`` lines)."""
    if not path.exists():
        return []
    return [int(line.split()[-1]) for line in path.read_text().splitlines() if line.strip()]


def marked_processes(sandbox_ids: Iterable[str]) -> list[int]:
    """Live processes whose environment carries the marker of one of these sandboxes."""
    needles = {f"{SANDBOX_MARKER}={sid}".encode() for sid in sandbox_ids if sid}
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needles & set(environ.split(b"\0")) and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def wait_until_gone(pids: Iterable[int], timeout: float = 5.0) -> list[int]:
    """Pids still alive after ``timeout`` (processes killed a moment ago may take a tick to go)."""
    pending = list(pids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if pid_alive(p)]
        if pending:
            time.sleep(0.02)
    return pending


# -- backends ---------------------------------------------------------------------------------


def bubblewrap_backend() -> pcc.LocalBackend:
    """``LocalBackend(isolation="bubblewrap")``, failing loudly where bubblewrap is missing.

    A missing ``bwrap`` is a failure, not a skip, so a CI machine without it cannot pass the
    isolation tests silently; set PARALLELCC_NO_BWRAP=1 to skip them on purpose.
    """
    if os.environ.get("PARALLELCC_NO_BWRAP") == "1":
        pytest.skip("PARALLELCC_NO_BWRAP=1")
    if shutil.which("bwrap") is None:
        pytest.fail(
            "bubblewrap (bwrap) is not installed: install it (apt-get install bubblewrap) "
            "or set PARALLELCC_NO_BWRAP=1 to skip the isolation tests."
        )
    return pcc.LocalBackend(isolation="bubblewrap")


def local_run_options(repo: Path, output_dir: Path, **overrides: object) -> dict[str, Any]:
    """Keyword arguments of a quick run of ``repo`` on the local backend: no isolation, no progress
    view, results in ``output_dir``; ``overrides`` replace or add to them."""
    options: dict[str, Any] = {"repo": repo, "progress": "off", "output_dir": output_dir}
    options.update(overrides)
    if "backend" not in options:
        options["backend"] = pcc.LocalBackend(isolation="none")
    return options


def backend_for(isolation: str) -> pcc.LocalBackend:
    if isolation == "bubblewrap":
        return bubblewrap_backend()
    return pcc.LocalBackend(isolation="none")
