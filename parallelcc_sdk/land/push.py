"""Pushing a branch of applied tasks to a remote, and opening a pull request with the GitHub CLI."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._git import GitError, git_env, git_sync
from ..errors import PushError, ValidationError
from ..redaction import Redactor
from ..snapshot import resolve_repo
from .apply import apply_tasks
from .base import read_snapshot_record

if TYPE_CHECKING:
    from ..results import RunResult

__all__ = ["PushedBranch", "push_branch", "task_branch"]

_GH_TIMEOUT_S = 120
# "https://user:token@host/..." in a remote URL that git or gh prints back.
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def _scrub(text: str) -> str:
    return Redactor().redact(_URL_CREDENTIALS.sub("[REDACTED]@", text))


@dataclass(frozen=True)
class PushedBranch:
    """What :meth:`RunResult.push` did."""

    repo: Path
    local_branch: str
    remote: str
    branch: str
    """The branch's name on the remote."""
    commit: str
    pull_request_url: str | None = None

    def __str__(self) -> str:
        return self.pull_request_url or f"{self.remote}/{self.branch}"


def task_branch(run_id: str, task_id: str) -> str:
    """The branch of one task's changes: ``parallelcc/<run_id>-<task_id>``.

    Not ``parallelcc/<run_id>/<task_id>``: git cannot hold that next to the run's branch
    ``parallelcc/<run_id>``, a ref cannot also be a folder of refs.
    """
    return f"parallelcc/{run_id}-{task_id}"


def _local_commit(repo: Path, branch: str) -> str | None:
    out = git_sync("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}",
                   cwd=repo, check=False)
    return out.decode().strip() or None


def _remote_exists(repo: Path, remote: str) -> None:
    names = git_sync("remote", cwd=repo).decode().split()
    if remote not in names:
        known = f"its remotes are {', '.join(names)}" if names else "it has no remote"
        raise ValidationError(
            f"remote={remote!r} is not a remote of {repo} ({known}); add it with "
            f"`git remote add {remote} URL` or pass remote= one of them."
        )


def _gh() -> str:
    gh = shutil.which("gh")
    if gh is None:
        raise ValidationError(
            "pull_request=True needs the GitHub CLI, which is not installed: install gh "
            "(https://cli.github.com) and run `gh auth login`, or push with pull_request=False."
        )
    return gh


def _pull_request(gh: str, repo: Path, branch: str, base: str | None) -> str:
    args = [gh, "pr", "create", "--head", branch, "--fill"]
    if base:
        args += ["--base", base]
    try:
        done = subprocess.run(args, cwd=repo, env=git_env(), capture_output=True, text=True,
                              timeout=_GH_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PushError(f"the branch was pushed, but `gh pr create` failed: {exc}") from exc
    if done.returncode != 0:
        detail = _scrub(done.stderr.strip() or f"exit code {done.returncode}")
        raise PushError(f"the branch was pushed, but `gh pr create` failed: {detail}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def push_branch(
    result: RunResult,
    task_id_or_branch: str,
    *,
    remote: str = "origin",
    branch: str | None = None,
    pull_request: bool = False,
    repo: str | Path | None = None,
) -> PushedBranch:
    """See :meth:`RunResult.push`."""
    record = read_snapshot_record(Path(result.run_dir))
    top = resolve_repo(repo if repo is not None else record.repo)
    _remote_exists(top, remote)
    gh = _gh() if pull_request else None
    is_task = any(t.task_id == task_id_or_branch for t in result.tasks)
    local = task_branch(result.run_id, task_id_or_branch) if is_task else task_id_or_branch
    commit = _local_commit(top, local)
    if commit is None:
        if not is_task:
            raise ValidationError(
                f"{task_id_or_branch!r} is neither a task of run {result.run_id} nor a branch of "
                f"{top}; pass a task id, or the branch result.apply(...) returned."
            )
        commit = apply_tasks(result, [task_id_or_branch], branch=local, repo=top).head
    target = branch or local
    try:
        git_sync("push", "--quiet", remote, f"refs/heads/{local}:refs/heads/{target}", cwd=top)
    except GitError as exc:
        # A remote URL can carry a token; git may print it back.
        raise PushError(_scrub(f"could not push {local} to {remote}: {exc}")) from exc
    url = _pull_request(gh, top, target, record.branch) if gh is not None else None
    return PushedBranch(top, local, remote, target, commit, url)
