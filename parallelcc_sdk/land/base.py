"""The state a run started from, kept in its folder so its patches can be merged after the run.

The run's snapshot commit lives in a private repository that is removed when the run ends. What
it held is the user's HEAD plus their uncommitted changes, so the run folder keeps exactly that:
``snapshot.json`` (the snapshot's commit and tree ids, HEAD, the checked-out branch, the
repository) and, when there were uncommitted changes, ``snapshot.patch`` (them, as a binary patch
against HEAD). Rebuilding the snapshot from these in a scratch repository gives the same tree id,
which is checked.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._git import GitError, git
from ..errors import BaseUnavailableError
from ..snapshot import Snapshot
from ._files import SNAPSHOT_JSON, SNAPSHOT_PATCH, run_file
from .scratch import Scratch

__all__ = ["SnapshotRecord", "read_snapshot_record", "rebuild_snapshot", "record_snapshot"]

logger = logging.getLogger("parallelcc_sdk")

_FORMAT_VERSION = 1
_DIFF_ARGS = ("--binary", "--no-ext-diff", "--no-textconv", "--no-color", "--no-renames",
              "--src-prefix=a/", "--dst-prefix=b/")


@dataclass(frozen=True)
class SnapshotRecord:
    """What ``snapshot.json`` says about the state a run started from."""

    repo: Path
    """The user's repository (its top level) when the run started."""
    commit: str
    """The snapshot commit (gone with the run's private repository; kept as a name)."""
    tree: str
    """The snapshot's tree: HEAD's tree plus the uncommitted changes."""
    head: str | None
    """The user's HEAD commit at snapshot time; None in a repository without commits."""
    branch: str | None
    """The branch checked out at snapshot time; None for a detached HEAD."""
    patch: Path | None
    """The uncommitted changes as a patch against ``head``; None when there were none."""

    @property
    def uncommitted(self) -> bool:
        return self.patch is not None


async def record_snapshot(snapshot: Snapshot, run_dir: Path) -> None:
    """Writes ``snapshot.json`` (and ``snapshot.patch`` if needed) into ``run_dir``.

    Called once per run, right after the snapshot is taken. The patch holds only the uncommitted
    changes, so its size follows them, not the repository. A failure is logged, never raised:
    the run goes on, only merging its patches afterwards will say the record is missing.
    """
    try:
        await _record(snapshot, run_dir)
    except (GitError, OSError) as exc:
        logger.warning("could not record the run's snapshot in %s: %s", run_dir, exc)


async def _record(snapshot: Snapshot, run_dir: Path) -> None:
    env = {"GIT_DIR": str(snapshot.git_dir)}
    tree = (await git("rev-parse", f"{snapshot.commit}^{{tree}}", env=env)).decode().strip()
    branch_out = await git("symbolic-ref", "--quiet", "--short", "HEAD", cwd=snapshot.repo,
                           check=False)
    patch_name: str | None = None
    if snapshot.head is not None:
        head_tree = (await git("rev-parse", f"{snapshot.head}^{{tree}}", env=env)).decode().strip()
        if head_tree != tree:
            diff = await git("diff", *_DIFF_ARGS, snapshot.head, snapshot.commit, "--", env=env)
            run_file(run_dir, SNAPSHOT_PATCH).write_bytes(diff)
            patch_name = SNAPSHOT_PATCH
    record = {
        "format_version": _FORMAT_VERSION,
        "repo": str(snapshot.repo),
        "commit": snapshot.commit,
        "tree": tree,
        "head": snapshot.head,
        "branch": branch_out.decode().strip() or None,
        "patch": patch_name,
    }
    run_file(run_dir, SNAPSHOT_JSON).write_text(json.dumps(record, indent=2) + "\n",
                                                encoding="utf-8")


def read_snapshot_record(run_dir: Path) -> SnapshotRecord:
    """The run's snapshot record, or a :class:`BaseUnavailableError` saying why there is none."""
    path = run_file(run_dir, SNAPSHOT_JSON)
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaseUnavailableError(
            f"the run folder {run_dir} has no {SNAPSHOT_JSON}, so the state the run started from "
            "is unknown; runs made with this version of parallelcc record it."
        ) from None
    except (OSError, ValueError) as exc:
        raise BaseUnavailableError(f"cannot read {path}: {exc}") from exc
    try:
        patch = data.get("patch")
        return SnapshotRecord(
            repo=Path(data["repo"]),
            commit=str(data["commit"]),
            tree=str(data["tree"]),
            head=str(data["head"]) if data.get("head") else None,
            branch=str(data["branch"]) if data.get("branch") else None,
            patch=run_file(run_dir, str(patch)) if patch else None,
        )
    except (AttributeError, KeyError, TypeError) as exc:
        raise BaseUnavailableError(f"{path} is not a valid snapshot record: {exc}") from exc


def require_head(record: SnapshotRecord, scratch: Scratch) -> str:
    """The HEAD the run started from, checked to be in the scratch repository's reach."""
    if record.head is None:
        raise BaseUnavailableError(
            f"the run started in a repository with no commits ({record.repo}); commit the "
            "files first, then run again to get patches that can be applied."
        )
    if not scratch.has_commit(record.head):
        raise BaseUnavailableError(
            f"the commit {record.head[:12]} the run started from is no longer in "
            f"{scratch.repo}; fetch it back (or pass repo= the repository the run used)."
        )
    return record.head


def rebuild_snapshot(record: SnapshotRecord, scratch: Scratch) -> str:
    """Fills the scratch index with the snapshot and returns its tree id (the recorded one)."""
    head = require_head(record, scratch)
    scratch.read_tree(head)
    if record.patch is not None:
        try:
            patch = record.patch.read_bytes()
        except OSError as exc:
            raise BaseUnavailableError(f"cannot read {record.patch}: {exc}") from exc
        outcome = scratch.apply(patch, three_way=False)
        if not outcome.applied:
            raise BaseUnavailableError(
                f"the uncommitted changes the run started from ({record.patch.name}) do not "
                f"apply to {head[:12]}: {outcome.reason}"
            )
    tree = scratch.write_tree()
    if tree != record.tree:
        raise BaseUnavailableError(
            f"rebuilding the state the run started from gave tree {tree[:12]}, not the "
            f"recorded {record.tree[:12]}; the run folder's {SNAPSHOT_PATCH} may have been edited."
        )
    return tree
