"""Bringing tasks' changes home: one commit per task on a new branch of the user's repository.

Everything is built in a scratch repository that borrows the user's objects: the run's starting
state is rebuilt there, each patch is applied to an index, committed, and only when every patch
applied are the new objects fetched into the user's repository and the branch created, in one
ref update that fails if the branch appeared meanwhile. The working tree, the index and the
checked-out branch are never touched; a refusal leaves the repository exactly as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._git import GitError, git_sync
from ..errors import ApplyConflictError, BranchExistsError, ValidationError
from ..snapshot import resolve_repo
from ..views import format as fmt
from ._files import PATCH_FILE, task_file
from .base import SnapshotRecord, read_snapshot_record, rebuild_snapshot, require_head
from .scratch import Scratch

if TYPE_CHECKING:
    from ..results import RunResult

__all__ = ["AppliedBranch", "apply_tasks", "commit_message", "default_branch"]

_SUBJECT_PROMPT_CHARS = 60
_SCRATCH_REF = "refs/heads/parallelcc-land"


@dataclass(frozen=True)
class AppliedBranch:
    """A branch :meth:`RunResult.apply` made: its name, where it starts, and one commit per task."""

    repo: Path
    branch: str
    base: str
    """The commit the branch starts from: the user's HEAD when the run started."""
    commits: tuple[tuple[str, str], ...]
    """``(task_id, commit id)`` in the order applied."""

    @property
    def head(self) -> str:
        return self.commits[-1][1] if self.commits else self.base

    def __str__(self) -> str:
        return self.branch

    def __repr__(self) -> str:
        tasks = ", ".join(task for task, _ in self.commits)
        return (f"AppliedBranch({self.branch!r}: {len(self.commits)} commit"
                f"{'s' if len(self.commits) != 1 else ''} ({tasks}) on {self.base[:12]})")


def default_branch(run_id: str) -> str:
    return f"parallelcc/{run_id}"


def commit_message(run_id: str, task_id: str, prompt: str) -> str:
    """``parallelcc: <task_id>: <prompt excerpt>``, then the whole prompt and the run id."""
    subject = f"parallelcc: {task_id}: {fmt.one_line(prompt, _SUBJECT_PROMPT_CHARS)}"
    return f"{subject}\n\n{prompt.strip()}\n\nparallelcc run: {run_id}\n"


def _task_ids(result: RunResult, task_ids: str | Sequence[str]) -> list[str]:
    ids = [task_ids] if isinstance(task_ids, str) else list(task_ids)
    if not ids:
        raise ValidationError("apply() needs at least one task id, e.g. result.apply(['task-1']).")
    known = {t.task_id for t in result.tasks}
    unknown = [t for t in ids if t not in known]
    if unknown:
        raise ValidationError(
            f"run {result.run_id} has no task {', '.join(map(repr, unknown))}; "
            f"its tasks are {', '.join(sorted(known)) or 'none'}."
        )
    duplicates = sorted({t for t in ids if ids.count(t) > 1})
    if duplicates:
        raise ValidationError(f"task {', '.join(map(repr, duplicates))} is named more than once; "
                              "name each task once.")
    return ids


def _patches(result: RunResult, ids: Sequence[str]) -> dict[str, bytes]:
    patches: dict[str, bytes] = {}
    for task_id in ids:
        path = task_file(result, task_id, PATCH_FILE)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        if not data.strip():
            raise ValidationError(
                f"task {task_id!r} changed nothing (no {PATCH_FILE} in its folder, or an empty "
                "one): there is nothing to apply; leave it out."
            )
        patches[task_id] = data
    return patches


def _branch_name(repo: Path, branch: str) -> str:
    if git_sync("check-ref-format", "--branch", branch, cwd=repo, check=False).strip() == b"":
        raise ValidationError(
            f"branch={branch!r} is not a valid git branch name; use letters, digits, '/', '-' "
            "and '.', e.g. branch='parallelcc/fixes'."
        )
    exists = git_sync("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", cwd=repo,
                      check=False)
    if exists.strip():
        raise BranchExistsError(
            f"branch {branch!r} already exists in {repo}; pass another name, e.g. "
            f"branch='{branch}-2' (apply never changes an existing branch)."
        )
    return branch


def _identity(repo: Path) -> dict[str, str]:
    """The user's own git identity for the commits, when their config has one."""
    values = {}
    for key in ("user.name", "user.email"):
        values[key] = git_sync("config", "--get", key, cwd=repo, check=False).decode().strip()
    if not values["user.name"] or not values["user.email"]:
        return {}
    return {
        "GIT_AUTHOR_NAME": values["user.name"], "GIT_AUTHOR_EMAIL": values["user.email"],
        "GIT_COMMITTER_NAME": values["user.name"], "GIT_COMMITTER_EMAIL": values["user.email"],
    }


def _build(
    scratch: Scratch, record: SnapshotRecord, result: RunResult, patches: dict[str, bytes],
    identity: dict[str, str],
) -> list[tuple[str, str]]:
    head = require_head(record, scratch)
    if record.uncommitted:
        # The tasks started from HEAD plus the user's uncommitted changes; their patches name
        # blobs of that state. Building it once puts those blobs in the scratch store, so a
        # patch can be merged onto HEAD alone (three-way), leaving the uncommitted changes out.
        rebuild_snapshot(record, scratch)
    scratch.read_tree(head)
    parent = head
    commits: list[tuple[str, str]] = []
    for task_id, patch in patches.items():
        outcome = scratch.apply(patch, three_way=True)
        if not outcome.applied:
            where = f" in {outcome.path}" if outcome.path else ""
            earlier = f" after {', '.join(t for t, _ in commits)}" if commits else ""
            hint = (" (the run started with uncommitted changes, which the branch leaves out)"
                    if record.uncommitted else "")
            raise ApplyConflictError(
                f"task {task_id!r} does not apply{where}{earlier}: {outcome.reason}{hint}; "
                "nothing was changed. See result.conflicts() for an order that applies.",
                task_id=task_id, path=outcome.path,
            )
        tree = scratch.write_tree()
        prompt = result[task_id].prompt
        message = commit_message(result.run_id, task_id, prompt)
        parent = scratch.commit(tree, parent, message, identity)
        commits.append((task_id, parent))
    return commits


def apply_tasks(
    result: RunResult,
    task_ids: str | Sequence[str],
    *,
    branch: str | None = None,
    repo: str | Path | None = None,
) -> AppliedBranch:
    """See :meth:`RunResult.apply`."""
    ids = _task_ids(result, task_ids)
    record = read_snapshot_record(Path(result.run_dir))
    top = resolve_repo(repo if repo is not None else record.repo)
    name = _branch_name(top, branch or default_branch(result.run_id))
    patches = _patches(result, ids)
    with Scratch(top) as scratch:
        commits = _build(scratch, record, result, patches, _identity(top))
        head = commits[-1][1]
        scratch.git("update-ref", _SCRATCH_REF, head)
        try:
            # Objects only (no ref, no FETCH_HEAD); then the branch, created only if it is new.
            git_sync("fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
                     "--no-recurse-submodules", str(scratch.git_dir), _SCRATCH_REF, cwd=top)
            git_sync("update-ref", "-m", f"parallelcc: apply run {result.run_id}",
                     f"refs/heads/{name}", head, "", cwd=top)
        except GitError as exc:
            if "already exists" in str(exc) or "reference already exists" in str(exc):
                raise BranchExistsError(
                    f"branch {name!r} appeared in {top} while applying; pass another name."
                ) from exc
            raise
    return AppliedBranch(repo=top, branch=name, base=record.head or "", commits=tuple(commits))
