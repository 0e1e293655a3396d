"""What a sandbox's filesystem looks like, and where each of its paths lives on this machine.

A sandbox is a folder. Inside the sandbox the host is visible read-only, except a few writable
folders that belong to the sandbox alone (its users' homes, ``/workspace`` and ``/tmp``); those
live under ``<sandbox folder>/fs`` at the same relative path. The bubblewrap view (``jail.py``) and
the file services (``envd_filesystem.py``, ``files_http.py``) both read this one description, so a
path means the same thing to a command and to the SDK's file calls.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

WRITABLE_ROOTS: tuple[str, ...] = ("/home/user", "/root", "/workspace", "/tmp")
"""Sandbox paths a command (and the files API) may write; everything else is the read-only host."""

GENERATED_FILES: tuple[str, ...] = ("/etc/passwd", "/etc/group")
"""Host files replaced by the sandbox's own copy, so ``user`` has its name and home inside."""

OWN_TOP_LEVEL: frozenset[str] = frozenset(root.split("/")[1] for root in WRITABLE_ROOTS)
"""Top-level folders the sandbox has instead of the host's (the host's /home is not visible)."""

KERNEL_TOP_LEVEL: frozenset[str] = frozenset({"proc", "dev", "sys"})
"""Top-level folders the kernel provides; the file services do not serve them."""

MAX_SYMLINKS = 40
"""Same limit as Linux: a deeper chain of links is a loop."""


@dataclass(frozen=True)
class User:
    """A user of the sandbox, as envd knows it: ``Basic base64("<name>:")`` selects one."""

    name: str
    uid: int
    home: str


USERS: dict[str, User] = {
    "user": User("user", 1000, "/home/user"),
    "root": User("root", 0, "/root"),
}
DEFAULT_USER = "user"
"""E2B's templates run commands and file calls as ``user`` unless the SDK names another."""


class SandboxPathError(Exception):
    """A sandbox path that cannot be resolved (a symlink loop)."""


@dataclass(frozen=True)
class Resolved:
    """A sandbox path after symlinks were followed inside the sandbox's own view."""

    path: str
    """Absolute, normalised sandbox path."""
    host: Path | None
    """Where it lives on this machine; None for paths the sandbox cannot see."""
    writable: bool


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class Layout:
    """The filesystem of one sandbox folder (``folder/fs`` holds the writable roots)."""

    def __init__(self, folder: Path, hidden: Sequence[Path] = ()) -> None:
        self.folder = folder
        self.fs = folder / "fs"
        self.etc = folder / "etc"
        self.hidden = tuple(str(path) for path in hidden)
        """Host folders a sandbox must not see (where all sandboxes live)."""

    def create(self) -> None:
        """Makes the writable roots and the generated files of a new sandbox."""
        for root in WRITABLE_ROOTS:
            self.host_of(root).mkdir(parents=True, exist_ok=True)
        (self.fs / "tmp").chmod(0o1777)
        self.etc.mkdir(parents=True, exist_ok=True)
        (self.etc / "passwd").write_text(_passwd())
        (self.etc / "group").write_text(_group())

    def host_of(self, sandbox_path: str) -> Path:
        """Host path of a sandbox path inside a writable root (no symlink is followed)."""
        return self.fs / sandbox_path.lstrip("/")

    def _lexical_host(self, path: str) -> tuple[Path | None, bool]:
        """Where an already resolved sandbox path lives, and whether it is writable."""
        for root in WRITABLE_ROOTS:
            if _within(path, root):
                return self.host_of(path), True
        if path in GENERATED_FILES:
            return self.etc / PurePosixPath(path).name, False
        top = path.split("/")[1] if path != "/" else ""
        if top in OWN_TOP_LEVEL:
            if any(_within(root, path) for root in WRITABLE_ROOTS):
                # A parent of a writable root, which bubblewrap builds as a folder (/home).
                return self.host_of(path), False
            return None, False
        if top in KERNEL_TOP_LEVEL or any(_within(path, hidden) for hidden in self.hidden):
            return None, False
        return Path(path), False

    def resolve(self, path: str, user: User, *, follow_last: bool = True) -> Resolved:
        """Follows ``path`` the way the kernel would inside the sandbox.

        Relative paths start at the user's home (as envd does). Symlinks are read from the
        sandbox's folders and their targets are resolved in the sandbox's view, never on the
        host, so a link to ``/root`` inside a sandbox means that sandbox's ``/root``.
        """
        if not path.startswith("/"):
            path = f"{user.home}/{path}"
        pending = _parts(path)
        current: list[str] = []
        links = 0
        while pending:
            name = pending.pop(0)
            if name == "..":
                if current:
                    current.pop()
                continue
            candidate = [*current, name]
            if not pending and not follow_last:
                current = candidate
                break
            host, _ = self._lexical_host("/" + "/".join(candidate))
            target = _readlink(host)
            if target is None:
                current = candidate
                continue
            links += 1
            if links > MAX_SYMLINKS:
                raise SandboxPathError(f"too many levels of symbolic links: {path}")
            if target.startswith("/"):
                current = []
            pending = _parts(target) + pending
        resolved = "/" + "/".join(current)
        host, writable = self._lexical_host(resolved)
        return Resolved(resolved, host, writable)


def _readlink(host: Path | None) -> str | None:
    if host is None:
        return None
    try:
        if not stat.S_ISLNK(os.lstat(host).st_mode):
            return None
        return os.readlink(host)
    except OSError:
        return None


def _passwd() -> str:
    lines = [
        line
        for line in _read_host("/etc/passwd")
        if line.split(":")[0] not in USERS and line.split(":")[2:3] != ["1000"]
    ]
    lines += [f"{u.name}:x:{u.uid}:{u.uid}::{u.home}:/bin/bash" for u in USERS.values()]
    return "\n".join(lines) + "\n"


def _group() -> str:
    lines = [
        line
        for line in _read_host("/etc/group")
        if line.split(":")[0] not in USERS and line.split(":")[2:3] != ["1000"]
    ]
    lines += [f"{u.name}:x:{u.uid}:" for u in USERS.values()]
    return "\n".join(lines) + "\n"


def _read_host(path: str) -> list[str]:
    try:
        return [line for line in Path(path).read_text().splitlines() if line.count(":") >= 2]
    except OSError:
        return []
