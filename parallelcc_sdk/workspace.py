"""Git workspaces on this machine: check out the run's snapshot, then measure what a task changed.

A workspace is a fresh repository whose object store borrows the snapshot's (git alternates), so
creating one writes only the checked-out files. Changes are measured against the snapshot commit,
after staging everything, so edits, new files, deletions, renames, mode changes, binary files and
commits made by the agent are all counted.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from ._git import git
from .models import ChangeStats
from .runfolder.layout import CHANGED_FILES_DIR, PATCH_FILE
from .snapshot import Snapshot

__all__ = [
    "BASE_REF",
    "CHANGED_FILES_DIR",
    "PATCH_FILE",
    "TASK_BRANCH",
    "collect_changes",
    "create_workspace",
    "parse_name_status",
    "parse_numstat",
]
BASE_REF = "refs/parallelcc/base"
TASK_BRANCH = "refs/heads/parallelcc/task"

# Renames are found as a user would see them; the rest are flags that make output parseable.
_DIFF_ARGS = ("--cached", "--find-renames", "--no-ext-diff", "--no-textconv", "--no-color")


async def create_workspace(snapshot: Snapshot, path: Path) -> None:
    """Checks out ``snapshot`` into the new folder ``path``.

    Two git processes only: an empty ``init`` (no hook templates to copy), then one ``reset`` that
    fills the index and the files. The refs are plain files written directly, which is what git
    itself would write.
    """
    await git("init", "--quiet", "--template=", str(path))
    dot_git = path / ".git"
    (dot_git / "objects" / "info").mkdir(parents=True, exist_ok=True)
    (dot_git / "objects" / "info" / "alternates").write_text(
        "".join(f"{d}\n" for d in snapshot.object_dirs)
    )
    _write_ref(dot_git, BASE_REF, snapshot.commit)
    # A branch to work on, so an agent that commits does not leave a detached HEAD.
    _write_ref(dot_git, TASK_BRANCH, snapshot.commit)
    (dot_git / "HEAD").write_text(f"ref: {TASK_BRANCH}\n")
    # Files are checked out and measured byte for byte, whatever the user's global core.autocrlf
    # says; otherwise line endings, and so the diff, would depend on file timestamps.
    with (dot_git / "config").open("a", encoding="utf-8") as config:
        config.write("[core]\n\tautocrlf = false\n\tsafecrlf = false\n")
    await git("-c", "core.autocrlf=false", "reset", "--quiet", "--hard", snapshot.commit, cwd=path)


def _write_ref(dot_git: Path, ref: str, commit: str) -> None:
    file = dot_git / ref
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(f"{commit}\n")


async def collect_changes(workspace: Path, base: str, dest: Path) -> ChangeStats:
    """Writes ``dest/changes.patch`` and ``dest/changed-files/`` and returns the counts."""
    # Stage everything (the workspace is ours): new, deleted and renamed files all show in the diff.
    await git(
        "-c", "core.autocrlf=false", "-c", "core.safecrlf=false", "add", "--all", cwd=workspace
    )
    # A patch `git apply --binary` takes as it is, whatever the user's diff.noprefix,
    # diff.mnemonicPrefix or diff.context (0 would need --unidiff-zero) say.
    patch = await git(
        "diff",
        *_DIFF_ARGS,
        "--binary",
        "--unified=3",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        base,
        "--",
        cwd=workspace,
    )
    numstat = await git("diff", *_DIFF_ARGS, "--numstat", "-z", base, "--", cwd=workspace)
    name_status = await git("diff", *_DIFF_ARGS, "--name-status", "-z", base, "--", cwd=workspace)

    added, removed = parse_numstat(numstat)
    present, deleted = parse_name_status(name_status)
    await asyncio.to_thread(_write_outputs, workspace, patch, present, dest)
    return ChangeStats(
        files_changed=len(present) + len(deleted),
        lines_added=added,
        lines_removed=removed,
        paths=tuple(present),
        deleted_paths=tuple(deleted),
    )


def parse_numstat(raw: bytes) -> tuple[int, int]:
    """Sums ``git diff --numstat -z``; binary files (``-``) count no lines."""
    added = removed = 0
    fields = raw.split(b"\0")
    i = 0
    while i < len(fields):
        record = fields[i]
        if not record:
            i += 1
            continue
        parts = record.split(b"\t", 2)
        a, r = parts[0], parts[1]
        if a != b"-":
            added += int(a)
        if r != b"-":
            removed += int(r)
        # With -z a rename's path field is empty and the old and new paths follow as two fields.
        i += 3 if len(parts) < 3 or parts[2] == b"" else 1
    return added, removed


def parse_name_status(raw: bytes) -> tuple[list[str], list[str]]:
    """Paths that exist after the task (added, modified, renamed to, ...) and paths it deleted.

    Each diff entry is counted once: ``len(present) + len(deleted)`` is the number of files changed.
    """
    present: list[str] = []
    deleted: list[str] = []
    fields = raw.split(b"\0")
    i = 0
    while i < len(fields) and fields[i]:
        status = fields[i].decode()
        if status[0] in "RC":
            # A rename or copy is one changed file: its new path (the old one is in the patch).
            present.append(os.fsdecode(fields[i + 2]))
            i += 3
            continue
        path = os.fsdecode(fields[i + 1])
        (deleted if status[0] == "D" else present).append(path)
        i += 2
    return present, deleted


def _write_outputs(workspace: Path, patch: bytes, present: list[str], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / PATCH_FILE).write_bytes(patch)
    _copy_files(workspace, present, dest / CHANGED_FILES_DIR)


def _copy_files(workspace: Path, paths: list[str], dest: Path) -> None:
    for rel in paths:
        source = workspace / rel
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.unlink(missing_ok=True)
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target)
