"""Plain records shared by every layer: tasks, task and run statuses, and task results."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .contract import AgentMetrics, ChangeStats

__all__ = [
    "STATUS_ORDER",
    "AgentMetrics",
    "ChangeStats",
    "Task",
    "TaskResult",
    "TaskStatus",
]


class TaskStatus(StrEnum):
    """A task's state. The order is the order of the pandas category in ``result.df``."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def is_final(self) -> bool:
        return self not in (TaskStatus.PENDING, TaskStatus.RUNNING)


STATUS_ORDER: tuple[str, ...] = tuple(s.value for s in TaskStatus)


class RunStatus(StrEnum):
    """A whole run's state: ``running`` until it ends as one of the other three.

    ``cancelled``: stopped early on purpose (``handle.cancel()``, fail-fast, the budget);
    ``interrupted``: stopped by Ctrl-C or an error, or its process died without closing the run.
    """

    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def is_final(self) -> bool:
        return self is not RunStatus.RUNNING


@dataclass(frozen=True)
class Task:
    """One unit of work: a prompt for the agent, run in its own sandbox.

    ``id`` defaults to ``task-N`` (N = position in the input, from 1). ``timeout`` overrides the
    run's ``task_timeout`` for this task; ``env`` adds environment variables for this task's agent.
    ``attempts`` > 1 runs the task that many times as independent candidates (best-of-N, see
    ``submit(select=...)``). ``candidate_of`` and ``candidate`` are set by the SDK on the tasks it
    makes for those candidates.
    """

    prompt: str
    id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    attempts: int = 1
    candidate_of: str | None = None
    candidate: int | None = None

    @property
    def task_id(self) -> str:
        """The id, which is always set once tasks have been normalised by the loader."""
        if self.id is None:
            raise ValueError("this task has no id yet; ids are assigned when tasks are loaded")
        return self.id


@dataclass(frozen=True)
class TaskResult:
    """The outcome of one task. Immutable; the engine builds a new one at each state change."""

    task_id: str
    prompt: str
    status: TaskStatus = TaskStatus.PENDING
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    files_changed: int | None = None
    lines_added: int | None = None
    lines_removed: int | None = None
    cost_usd: float | None = None
    """What the task cost in all: ``agent_cost_usd`` plus ``sandbox_cost_usd``."""
    agent_cost_usd: float | None = None
    """What the agent reported spending (its model's tokens), over every attempt."""
    sandbox_cost_usd: float | None = None
    """What the task's sandboxes cost (a cloud backend's billed seconds), over every attempt."""
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    num_turns: int | None = None
    error: str | None = None
    output_path: str | None = None
    sandbox_id: str | None = None
    attempts: int = 0
    session_id: str | None = None
    final_text: str | None = None
    phase: str | None = None
    last_output: str | None = None
    changed_paths: tuple[str, ...] = ()
    deleted_paths: tuple[str, ...] = ()
    excluded_paths: tuple[str, ...] = ()
    """What was left out of the changes because it is never source (``.venv/``...), as paths
    relative to the workspace (a new folder as one entry); see ``submit(exclude_changes=...)``."""
    excluded_bytes: int | None = None
    """The size in bytes of what was left out (0: nothing; ``None``: not measured)."""
    sandbox_info: Mapping[str, Any] = field(default_factory=dict)
    """Where the sandbox lives (a folder, a remote id...), as its ``describe()`` says."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    isolation: str | None = None
    """What isolated the task from the machine (``"bubblewrap"``, ``"none"``, ...)."""
    secrets_in_changes: tuple[str, ...] = ()
    """Output files (relative to the task's folder) that hold a value the SDK knows is secret;
    the files are left as they are, so the patch still applies."""
    candidate_of: str | None = None
    """For one candidate of a best-of-N task: the id of the task the user gave."""
    candidate: int | None = None
    """For one candidate of a best-of-N task: its number, from 1."""
    check_exit_code: int | None = None
    """The exit code of the run's check command (``select_command``), when it ran."""
    check_output: str | None = None
    """The end of the check command's output (redacted)."""
    selected: bool | None = None
    """For a candidate: whether the selector chose it, once every candidate has finished."""
    selection_reason: str | None = None
    """Why the selector chose (or passed over) this candidate."""

    def __post_init__(self) -> None:
        # Records read back from JSON carry lists; a record compares equal however it was made.
        for name in ("changed_paths", "deleted_paths", "secrets_in_changes", "excluded_paths"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value or ()))

    def replace(self, **changes: Any) -> TaskResult:
        return dataclasses.replace(self, **changes)


def count_statuses(records: Iterable[TaskResult]) -> dict[str, int]:
    """How many records are in each status: every status present, in status order."""
    counts = dict.fromkeys(STATUS_ORDER, 0)
    for record in records:
        counts[TaskStatus(record.status).value] += 1
    return counts
