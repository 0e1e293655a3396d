"""parallelcc_sdk: run many coding-agent tasks in parallel, each in its own sandbox, against one git
repository, and get the results back as data.

    import parallelcc_sdk as pcc
    result = pcc.run(["add type hints to utils.py", "write tests for parser.py"], repo=".")
    result.df
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .agents.base import Agent, AgentOutcome, OutputParser, Progress
from .agents.command import Command
from .api import run, run_async, submit
from .backends.base import Backend, PreparedRun, RunSpec, Sandbox, SandboxSpec
from .backends.lines import LineSplitter
from .backends.local import IsolationWarning, LocalBackend
from .cleanup import cleanup, cleanup_async
from .collection import collect_command, unpack_changes
from .contract import (
    AgentContext,
    AgentMetrics,
    ChangeStats,
    Invocation,
    LineHandler,
    SandboxFile,
    Stream,
)
from .errors import (
    AgentNotFoundError,
    ApplyConflictError,
    BackendUnavailableError,
    BaseUnavailableError,
    BranchExistsError,
    ChangeCollectionError,
    CredentialsError,
    GitError,
    OutputWriteError,
    ParallelCCError,
    PushError,
    RepositoryError,
    RunFolderError,
    RunFolderNotFoundError,
    RunNotFinishedError,
    SetupError,
    SnapshotError,
    SyncCallInRunningLoopError,
    TaskFileError,
    TransientBackendError,
    ValidationError,
)
from .events import Event, EventType, Phase
from .handle import ExecutionHandle
from .land.apply import AppliedBranch
from .land.conflicts import ConflictReport
from .land.push import PushedBranch
from .models import RunStatus, Task, TaskResult, TaskStatus
from .results import RunResult, RunSummary
from .resume import resume, retry, submit_resume, submit_retry
from .runfolder import RunInfo, list_runs, load_run
from .snapshot import Snapshot
from .tasks import load_tasks

if TYPE_CHECKING:
    from .agents.claude import ClaudeCode
    from .backends.e2b import E2BBackend, E2BRates


def __getattr__(name: str) -> Any:
    # The Claude agent and the E2B backend are imported on first use, so `import parallelcc_sdk`
    # stays light (and never imports the e2b SDK).
    if name == "ClaudeCode":
        from .agents.claude import ClaudeCode

        return ClaudeCode
    if name in ("E2BBackend", "E2BRates"):
        from .backends import e2b

        return getattr(e2b, name)
    raise AttributeError(f"module 'parallelcc_sdk' has no attribute {name!r}")


__all__ = [
    "Agent",
    "AgentContext",
    "AgentMetrics",
    "AgentNotFoundError",
    "AgentOutcome",
    "AppliedBranch",
    "ApplyConflictError",
    "Backend",
    "BackendUnavailableError",
    "BaseUnavailableError",
    "BranchExistsError",
    "ChangeCollectionError",
    "ChangeStats",
    "ClaudeCode",
    "Command",
    "ConflictReport",
    "CredentialsError",
    "E2BBackend",
    "E2BRates",
    "Event",
    "EventType",
    "ExecutionHandle",
    "GitError",
    "Invocation",
    "IsolationWarning",
    "LineHandler",
    "LineSplitter",
    "LocalBackend",
    "OutputParser",
    "OutputWriteError",
    "ParallelCCError",
    "Phase",
    "PreparedRun",
    "Progress",
    "PushError",
    "PushedBranch",
    "RepositoryError",
    "RunFolderError",
    "RunFolderNotFoundError",
    "RunInfo",
    "RunNotFinishedError",
    "RunResult",
    "RunSpec",
    "RunStatus",
    "RunSummary",
    "Sandbox",
    "SandboxFile",
    "SandboxSpec",
    "SetupError",
    "Snapshot",
    "SnapshotError",
    "Stream",
    "SyncCallInRunningLoopError",
    "Task",
    "TaskFileError",
    "TaskResult",
    "TaskStatus",
    "TransientBackendError",
    "ValidationError",
    "__version__",
    "cleanup",
    "cleanup_async",
    "collect_command",
    "list_runs",
    "load_run",
    "load_tasks",
    "resume",
    "retry",
    "run",
    "run_async",
    "submit",
    "submit_resume",
    "submit_retry",
    "unpack_changes",
]
