"""The SDK's exceptions: one root, a few precise subclasses.

Failures of a single task are *data* (its ``status`` and ``error``), never exceptions.
Exceptions are for input the SDK cannot start with and for misuse of the API.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from typing import Any


class ParallelCCError(Exception):
    """Root of every exception the SDK raises on purpose."""


class ValidationError(ParallelCCError, ValueError):
    """Bad input, found before any sandbox started or any money was spent."""


class TaskFileError(ValidationError):
    """A task file is missing, unreadable or malformed."""


class RepositoryError(ValidationError):
    """The ``repo`` argument is not a usable git repository."""


class CredentialsError(ValidationError):
    """The chosen agent or backend has no credentials to run with."""


class AgentNotFoundError(ValidationError):
    """The agent's executable cannot be found."""


class BackendUnavailableError(ValidationError):
    """The chosen backend cannot run on this machine (e.g. no working bubblewrap)."""


class GitError(ParallelCCError):
    """A git command the SDK ran failed."""


class RunFolderError(ParallelCCError):
    """A run folder cannot be read: its files are damaged or not what the SDK writes."""


class RunFolderNotFoundError(RunFolderError, ValidationError):
    """The path given as a run folder does not exist, or holds no run (bad input, too)."""


class SnapshotError(ParallelCCError):
    """Taking the run's snapshot of the repository failed."""


class SyncCallInRunningLoopError(ParallelCCError, RuntimeError):
    """A blocking call was made on the event loop thread that the run itself needs."""


class RunNotFinishedError(ParallelCCError, TimeoutError):
    """``handle.result(timeout=...)`` ran out of time before the run finished."""


class TransientBackendError(ParallelCCError):
    """A backend failure worth retrying: a rate limit on create, a 503, a dropped connection.

    A backend raises it from any sandbox step; the engine retries the attempt in a fresh sandbox
    exactly like an agent's transient failure (the run's ``retries`` budget, with backoff). Any
    other exception from a backend is the attempt's final failure.
    """


class ChangeCollectionError(ParallelCCError):
    """A task's changes could not be collected, or their archive is unsafe to unpack."""


class BaseUnavailableError(ParallelCCError):
    """The repository state a run started from cannot be rebuilt (no snapshot record, or its
    commit is no longer in the repository), so its patches cannot be merged or applied."""


class ApplyConflictError(ParallelCCError):
    """A task's patch does not apply cleanly; nothing was changed in the repository."""

    def __init__(self, message: str, *, task_id: str, path: str | None) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.path = path


class BranchExistsError(ValidationError):
    """The branch to create already exists in the repository."""


class PushError(ParallelCCError):
    """``git push`` or ``gh pr create`` failed."""


class SetupError(ParallelCCError):
    """The run's set-up command failed (or changed files the tasks' patches would show); no task
    started. ``record`` is what ``setup/setup.json`` holds (empty if the command never ran)."""

    def __init__(self, record: Mapping[str, Any], message: str) -> None:
        super().__init__(message)
        self.record = dict(record)
class OutputWriteError(ParallelCCError, OSError):
    """The run's folder could not be written (a full disk, a quota, a read-only disk).

    Raised only where nothing has started; a task whose files cannot be written is ``failed``.
    """


def describe_write_failure(path: str, exc: OSError) -> str:
    """One sentence for a file that could not be written: ``no space left on device while
    writing task-3/metadata.json``."""
    if exc.errno == errno.ENOSPC:
        return f"no space left on device while writing {path}"
    if exc.errno == errno.EDQUOT:
        return f"disk quota exceeded while writing {path}"
    return f"could not write {path}: {exc.strerror or exc}"
