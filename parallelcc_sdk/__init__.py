"""parallelcc_sdk: run many coding-agent tasks in parallel, each in its own sandbox, against one git
repository, and get the results back as data.

    import parallelcc_sdk as pcc
    result = pcc.run(["add type hints to utils.py", "write tests for parser.py"], repo=".")
    result.df
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .agents.base import Agent, AgentContext, AgentOutcome, Invocation, OutputParser, Progress
from .agents.command import Command
from .api import run, run_async, submit
from .backends.base import Backend, Sandbox
from .backends.local import LocalBackend
from .errors import (
    AgentNotFoundError,
    ApplyConflictError,
    BackendUnavailableError,
    BaseUnavailableError,
    BranchExistsError,
    CredentialsError,
    ParallelCCError,
    PushError,
    RepositoryError,
    RunNotFinishedError,
    SnapshotError,
    SyncCallInRunningLoopError,
    TaskFileError,
    ValidationError,
)
from .events import Event, EventType, Phase
from .handle import ExecutionHandle
from .land.apply import AppliedBranch
from .land.conflicts import ConflictReport
from .land.push import PushedBranch
from .models import Task, TaskResult, TaskStatus
from .results import RunResult, RunSummary, load_run
from .tasks import load_tasks

if TYPE_CHECKING:
    from .agents.claude import ClaudeCode


def __getattr__(name: str) -> Any:
    # The Claude agent is imported on first use, so `import parallelcc_sdk` stays light.
    if name == "ClaudeCode":
        from .agents.claude import ClaudeCode

        return ClaudeCode
    raise AttributeError(f"module 'parallelcc_sdk' has no attribute {name!r}")


__all__ = [
    "Agent",
    "AgentContext",
    "AgentNotFoundError",
    "AgentOutcome",
    "AppliedBranch",
    "ApplyConflictError",
    "Backend",
    "BackendUnavailableError",
    "BaseUnavailableError",
    "BranchExistsError",
    "ClaudeCode",
    "Command",
    "ConflictReport",
    "CredentialsError",
    "Event",
    "EventType",
    "ExecutionHandle",
    "Invocation",
    "LocalBackend",
    "OutputParser",
    "ParallelCCError",
    "Phase",
    "Progress",
    "PushError",
    "PushedBranch",
    "RepositoryError",
    "RunNotFinishedError",
    "RunResult",
    "RunSummary",
    "Sandbox",
    "SnapshotError",
    "SyncCallInRunningLoopError",
    "Task",
    "TaskFileError",
    "TaskResult",
    "TaskStatus",
    "ValidationError",
    "__version__",
    "load_run",
    "load_tasks",
    "run",
    "run_async",
    "submit",
]
