"""The run's archive: the snapshot packed once on this machine, to be unpacked in sandboxes.

It is a gzipped tar of two members: a git pack holding the base commit and every object of its
tree (not its history), and the snapshot's extra ignore rules. In a sandbox, git indexes the pack
(checking every object's hash) and checks the commit out, so the workspace is a git checkout of
exactly the files git put in the snapshot, and the shared collection command measures changes
against it.

Secret files (``.env``, private keys, credential files; see :data:`DEFAULT_SECRET_PATTERNS`) are
left out by default. The base commit is then the snapshot minus those files, so a task's changes
are measured against the tree it was given, and an omitted file never shows as deleted.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..._git import GitError, git
from ...errors import SnapshotError
from ...snapshot import Snapshot

__all__ = [
    "DEFAULT_SECRET_PATTERNS",
    "EXCLUDE_MEMBER",
    "PACK_MEMBER",
    "RunArchive",
    "omitted_paths",
    "pack_run_archive",
]

DEFAULT_SECRET_PATTERNS: tuple[str, ...] = (
    ".env",
    ".env.local",
    ".env.*.local",
    ".env.production",
    ".env.development",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    ".ssh/id_*",
    "credentials.json",
    "service-account*.json",
    ".aws/credentials",
    ".netrc",
    ".gnupg/*",
)
"""Secret files never sent to a sandbox. A pattern without ``/`` matches a file name at any
depth; one with ``/`` matches the end of a path (``.ssh/id_*`` is any ``.ssh`` folder's keys)."""

PACK_MEMBER = "objects/pack/base.pack"
EXCLUDE_MEMBER = "exclude"
_NULL_OID = "0" * 40


@dataclass(frozen=True)
class RunArchive:
    path: Path
    size: int
    base: str
    """The commit each sandbox's workspace starts from, and changes are measured against."""
    omitted: tuple[str, ...]
    """Secret files of the snapshot that were left out."""
    has_exclude: bool
    """Whether the archive carries ignore rules (``exclude``) for the collection command."""


def _matches(path: str, pattern: str) -> bool:
    if "/" not in pattern:
        return fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern)
    parts = path.split("/")
    depth = pattern.count("/") + 1
    return any(
        fnmatch.fnmatchcase("/".join(parts[i : i + depth]), pattern)
        for i in range(max(1, len(parts) - depth + 1))
    )


def omitted_paths(paths: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """The paths any pattern matches (a path under a matching folder counts too)."""
    return [
        p
        for p in paths
        if any(_matches(p, pattern) or _under(p, pattern) for pattern in patterns)
    ]


def _under(path: str, pattern: str) -> bool:
    # ".gnupg/*" must also cover .gnupg/private-keys-v1.d/x.key, and "secrets.key" a folder.
    parts = path.split("/")
    return any(_matches("/".join(parts[: i + 1]), pattern) for i in range(len(parts) - 1))


async def pack_run_archive(
    snapshot: Snapshot, scratch: Path, secret_patterns: Sequence[str]
) -> RunArchive:
    """Packs ``snapshot`` into ``scratch/run.tar.gz`` (once per run)."""
    env = {"GIT_DIR": str(snapshot.git_dir)}
    listing = await git("ls-tree", "-r", "-z", "--name-only", snapshot.commit, env=env)
    paths = [os.fsdecode(p) for p in listing.split(b"\0") if p]
    omitted = omitted_paths(paths, secret_patterns) if secret_patterns else []
    base = snapshot.commit
    if omitted:
        base = await _without(snapshot, scratch, omitted)
    pack = scratch / "base.pack"
    await _write_pack(snapshot.git_dir, base, pack)
    exclude = snapshot.exclude_file if snapshot.exclude_file.is_file() else None
    archive = scratch / "run.tar.gz"
    size = await asyncio.to_thread(_write_tar, archive, pack, exclude)
    await asyncio.to_thread(pack.unlink)
    return RunArchive(archive, size, base, tuple(omitted), exclude is not None)


async def _without(snapshot: Snapshot, scratch: Path, omitted: Sequence[str]) -> str:
    """A commit of the snapshot's tree minus ``omitted``; its parent is the snapshot."""
    env = {"GIT_DIR": str(snapshot.git_dir), "GIT_INDEX_FILE": str(scratch / "sandbox.index")}
    await git("read-tree", snapshot.commit, env=env)
    # Mode 0 removes an entry: no work tree is needed (the snapshot's repository has none).
    removals = b"".join(f"0 {_NULL_OID}\t{p}\0".encode("utf-8", "surrogateescape") for p in omitted)
    await git("update-index", "-z", "--index-info", env=env, stdin=removals)
    tree = (await git("write-tree", env=env)).decode().strip()
    message = b"parallelcc: the snapshot without its secret files\n"
    commit = await git(
        "commit-tree", "--no-gpg-sign", tree, "-p", snapshot.commit, env=env, stdin=message
    )
    return commit.decode().strip()


async def _write_pack(git_dir: Path, commit: str, pack: Path) -> None:
    """A pack of ``commit`` and its tree's objects (no history: ``-n 1``)."""
    env = {"GIT_DIR": str(git_dir)}
    objects = await git("rev-list", "--objects", "-n", "1", commit, env=env)
    try:
        with pack.open("wb") as out:
            await git("pack-objects", "--stdout", "--quiet", env=env, stdin=objects, stdout=out)
    except GitError as exc:
        raise SnapshotError(f"could not pack the snapshot: {exc}") from exc


def _write_tar(archive: Path, pack: Path, exclude: Path | None) -> int:
    # The pack is compressed already; gzip's fastest level only squeezes out tar's padding
    # (a small repository's archive would otherwise be mostly zeros).
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT, compresslevel=1) as tar:
        tar.add(pack, arcname=PACK_MEMBER, recursive=False)
        if exclude is not None:
            tar.add(exclude, arcname=EXCLUDE_MEMBER, recursive=False)
    return archive.stat().st_size
