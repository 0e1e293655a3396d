"""Git workspaces on this machine: check out the run's snapshot, then measure what a task changed.

A workspace is a fresh repository whose object store borrows the snapshot's (git alternates), so
creating one writes only the checked-out files. Changes are measured against the snapshot commit
by the shared collection command (:mod:`~parallelcc_sdk.collection`), after staging everything,
so edits, new files, deletions, renames, mode changes, binary files and commits made by the agent
are all counted.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ._git import git
from ._quiet import run_quietly
from .collection import (
    ARCHIVE_NAME,
    CHANGED_FILES_DIR,
    DEFAULT_EXCLUDED_CHANGES,
    PATCH_FILE,
    collect_command,
    parse_name_status,
    parse_numstat,
    unpack_changes,
)
from .contract import ChangeStats
from .errors import ChangeCollectionError
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


async def collect_changes(
    workspace: Path,
    base: str,
    dest: Path,
    *,
    object_dirs: Sequence[Path] = (),
    exclude_file: Path | None = None,
    exclude_changes: Sequence[str] = DEFAULT_EXCLUDED_CHANGES,
) -> ChangeStats:
    """Writes ``dest/changes.patch`` and ``dest/changed-files/`` and returns the counts.

    Runs the shared collection command (see :mod:`~parallelcc_sdk.collection`) here, as a plain
    child process, in a scratch folder beside nothing the workspace can reach.
    """
    with tempfile.TemporaryDirectory(prefix="parallelcc-collect-") as scratch:
        out = Path(scratch) / "out"
        argv = collect_command(
            str(workspace),
            base,
            str(out),
            object_dirs=[str(d) for d in object_dirs],
            exclude_file=str(exclude_file) if exclude_file is not None else None,
            exclude_changes=exclude_changes,
        )
        code, err = await run_quietly(
            argv, env={"PATH": os.environ.get("PATH", os.defpath), "HOME": scratch}
        )
        if code != 0:
            message = err.strip() or f"exit code {code}"
            raise ChangeCollectionError(f"could not collect the changes: {message}")
        return await asyncio.to_thread(unpack_changes, out / ARCHIVE_NAME, dest)
