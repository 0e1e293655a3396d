"""Events the engine emits for every state change of a run; views and listeners consume them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import TaskResult


class EventType(StrEnum):
    RUN_STARTED = "run_started"
    TASK_QUEUED = "task_queued"
    TASK_STARTED = "task_started"
    TASK_PHASE = "task_phase"
    TASK_OUTPUT = "task_output"
    TASK_PROGRESS = "task_progress"
    TASK_RETRY = "task_retry"
    TASK_FINISHED = "task_finished"
    RUN_FINISHED = "run_finished"


class Phase(StrEnum):
    """What a running task is doing now."""

    PREPARING = "preparing"
    RUNNING = "running"
    CHECKING = "checking"
    """The run's check command (``select_command``) runs in the workspace, after the agent."""
    COLLECTING = "collecting"
    CLOSING = "closing"


@dataclass(frozen=True)
class Event:
    """One thing that happened in a run.

    ``task`` is the task's result record *after* the change (``None`` for run-level events).
    ``message`` is a line of agent output for ``task_output`` and a short description for
    ``task_progress`` (e.g. ``"turn 3 · Edit src/app.py"``). ``data`` holds structured extras.
    """

    type: EventType
    run_id: str
    task_id: str | None = None
    task: TaskResult | None = None
    phase: Phase | None = None
    message: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
