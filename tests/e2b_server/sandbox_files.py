"""File operations on a sandbox's filesystem, as one of its users sees it.

Shared by envd's filesystem RPCs and its ``/files`` HTTP endpoints. Every path is resolved in the
sandbox's own view (``layout.py``) before anything is touched, and only the sandbox's writable
folders can change, so a symlink planted by a command cannot make the server write elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .layout import WRITABLE_ROOTS, Layout, Resolved, SandboxPathError, User

ErrorKind = Literal["not_found", "permission", "invalid", "exists"]
METADATA_XATTR = "user.e2b."
"""envd keeps a file's user metadata in extended attributes with this prefix."""


class FileError(Exception):
    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Entry:
    name: str
    path: str
    kind: Literal["file", "dir", "other"]
    """What the entry is (for a symlink: what it points to)."""
    is_symlink: bool
    symlink_target: str | None
    size: int
    mode: int
    permissions: str
    owner: str
    mtime_ns: int
    metadata: dict[str, str] = field(default_factory=dict)


Snapshot = dict[str, tuple[int, int, bool]]
"""Relative path -> (mtime_ns, size, is_dir): what a directory watch compares."""


class SandboxFiles:
    def __init__(self, layout: Layout, user: User) -> None:
        self.layout = layout
        self.user = user

    def resolve(self, path: str, *, follow_last: bool = True) -> Resolved:
        if not path:
            raise FileError("invalid", "path is required")
        try:
            return self.layout.resolve(path, self.user, follow_last=follow_last)
        except SandboxPathError as exc:
            raise FileError("invalid", str(exc)) from exc

    def _existing(self, path: str, *, follow_last: bool) -> tuple[Resolved, Path]:
        resolved = self.resolve(path, follow_last=follow_last)
        if resolved.host is None or not os.path.lexists(resolved.host):
            raise FileError("not_found", f"no such file or directory: {path}")
        return resolved, resolved.host

    def _writable(self, resolved: Resolved, path: str) -> Path:
        if not resolved.writable or resolved.host is None:
            raise FileError("permission", f"permission denied: {path} is on a read-only filesystem")
        return resolved.host

    # -- reading ----------------------------------------------------------------------------

    def entry(self, path: str) -> Entry:
        """Stat of ``path`` itself (a symlink is reported as one, with its target's kind)."""
        resolved, host = self._existing(path, follow_last=False)
        return self._entry(resolved.path, host)

    def _entry(self, sandbox_path: str, host: Path) -> Entry:
        info = os.lstat(host)
        target: str | None = None
        kind_of = info
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(host)
            followed = self.layout.resolve(sandbox_path, self.user).host
            with contextlib.suppress(OSError, TypeError):
                kind_of = os.lstat(followed) if followed is not None else info
        if stat.S_ISDIR(kind_of.st_mode):
            kind: Literal["file", "dir", "other"] = "dir"
        elif stat.S_ISREG(kind_of.st_mode):
            kind = "file"
        else:
            kind = "other"
        return Entry(
            name=os.path.basename(sandbox_path) or "/",
            path=sandbox_path,
            kind=kind,
            is_symlink=target is not None,
            symlink_target=target,
            size=info.st_size,
            mode=stat.S_IMODE(info.st_mode),
            permissions=stat.filemode(info.st_mode),
            # Through the user namespace, files of the server's uid are the viewer's own.
            owner=self.user.name if info.st_uid == os.getuid() else "nobody",
            mtime_ns=info.st_mtime_ns,
            metadata=_metadata(host) if target is None else {},
        )

    def list_dir(self, path: str, depth: int) -> list[Entry]:
        resolved, host = self._existing(path, follow_last=True)
        if not host.is_dir():
            raise FileError("invalid", f"not a directory: {path}")
        entries: list[Entry] = []
        self._walk(resolved.path, host, max(1, depth), entries)
        return entries

    def _walk(self, sandbox_dir: str, host_dir: Path, depth: int, out: list[Entry]) -> None:
        try:
            names = sorted(os.listdir(host_dir))
        except OSError:
            return
        for name in names:
            sandbox_path = f"{sandbox_dir.rstrip('/')}/{name}"
            host = self.layout.resolve(sandbox_path, self.user, follow_last=False).host
            if host is None or not os.path.lexists(host):
                continue
            entry = self._entry(sandbox_path, host)
            out.append(entry)
            if depth > 1 and entry.kind == "dir" and not entry.is_symlink:
                self._walk(sandbox_path, host, depth - 1, out)

    def readable_file(self, path: str) -> Path:
        _, host = self._existing(path, follow_last=True)
        if host.is_dir():
            raise FileError("invalid", f"path is a directory: {path}")
        return host

    def snapshot(self, path: str, *, recursive: bool) -> tuple[Resolved, Snapshot]:
        resolved, host = self._existing(path, follow_last=True)
        if not host.is_dir():
            raise FileError("invalid", f"not a directory: {path}")
        found: Snapshot = {}
        for dirpath, dirnames, filenames in os.walk(host):
            for name in [*dirnames, *filenames]:
                full = os.path.join(dirpath, name)
                with contextlib.suppress(OSError):
                    info = os.lstat(full)
                    found[os.path.relpath(full, host)] = (
                        info.st_mtime_ns,
                        info.st_size,
                        stat.S_ISDIR(info.st_mode),
                    )
            if not recursive:
                break
        return resolved, found

    # -- changing ---------------------------------------------------------------------------

    def make_dir(self, path: str) -> Entry:
        resolved = self.resolve(path, follow_last=False)
        if resolved.host is not None and os.path.lexists(resolved.host):
            raise FileError("exists", f"directory already exists: {path}")
        host = self._writable(resolved, path)
        host.mkdir(parents=True)
        return self._entry(resolved.path, host)

    def remove(self, path: str) -> None:
        resolved, host = self._existing(path, follow_last=False)
        self._writable(resolved, path)
        if resolved.path in WRITABLE_ROOTS:
            raise FileError("permission", f"cannot remove {path}: it is a mount point")
        if host.is_dir() and not host.is_symlink():
            shutil.rmtree(host)
        else:
            host.unlink()

    def move(self, source: str, destination: str) -> Entry:
        src_resolved, src = self._existing(source, follow_last=False)
        self._writable(src_resolved, source)
        if src_resolved.path in WRITABLE_ROOTS:
            raise FileError("permission", f"cannot move {source}: it is a mount point")
        dst_resolved = self.resolve(destination, follow_last=False)
        dst = self._writable(dst_resolved, destination)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, dst)
        return self._entry(dst_resolved.path, dst)

    def write(self, path: str, data: bytes, metadata: dict[str, str]) -> Entry:
        """Writes a whole file, making its parent folders (as envd does)."""
        resolved = self.resolve(path, follow_last=True)
        host = self._writable(resolved, path)
        if host.is_dir():
            raise FileError("invalid", f"path is a directory: {path}")
        host.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        for key, value in metadata.items():
            with contextlib.suppress(OSError):
                os.setxattr(host, METADATA_XATTR + key, value.encode())
        return self._entry(resolved.path, host)


def _metadata(host: Path) -> dict[str, str]:
    try:
        names = os.listxattr(host, follow_symlinks=False)
    except OSError:
        return {}
    found: dict[str, str] = {}
    for name in names:
        if name.startswith(METADATA_XATTR):
            with contextlib.suppress(OSError, UnicodeDecodeError):
                value = os.getxattr(host, name, follow_symlinks=False)
                found[name.removeprefix(METADATA_XATTR)] = value.decode()
    return found
