"""What a progress view shows, kept as plain data and updated from events.

The engine's listeners run on the run's loop thread. A view only ever folds events into a
:class:`RunState` there and renders from it; no renderer reads engine internals.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from ..events import Event, EventType
from ..models import STATUS_ORDER, TaskResult, TaskStatus
from ._format import last_line


@runtime_checkable
class HandleLike(Protocol):
    """The part of :class:`~parallelcc_sdk.handle.ExecutionHandle` the views use."""

    @property
    def run_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def tasks(self) -> list[TaskResult]: ...
    @property
    def total(self) -> int: ...
    @property
    def elapsed_s(self) -> float: ...
    def done(self) -> bool: ...
    def cancel(self, task_id: str | None = None) -> None: ...
    def add_listener(self, callback: Callable[[Event], Any]) -> Callable[[], None]: ...


class RunState:
    """The latest known record of every task, plus what events add (phase, last output line)."""

    def __init__(
        self,
        run_id: str,
        tasks: Sequence[TaskResult],
        *,
        elapsed_s: float | None = None,
        status: str = "running",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run_id = run_id
        self.tasks: dict[str, TaskResult] = {t.task_id: t for t in tasks}
        self.phase: dict[str, str] = {t.task_id: t.phase for t in tasks if t.phase}
        self.last_output: dict[str, str] = {
            t.task_id: t.last_output for t in tasks if t.last_output
        }
        self.status = status
        self.cancel_requested = False
        self._clock = clock
        # A live state counts its own wall clock; a snapshot of a handle freezes the handle's.
        self._elapsed_offset = elapsed_s or 0.0
        self._started = clock()
        self._ended: float | None = None if status == "running" else self._started

    @classmethod
    def from_handle(cls, handle: HandleLike) -> RunState:
        status = handle.status if handle.done() else "running"
        if status == "pending":
            status = "running"
        return cls(handle.run_id, handle.tasks, elapsed_s=handle.elapsed_s, status=status)

    # -- folding events ---------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        task = event.task
        task_id = event.task_id or (task.task_id if task is not None else None)
        if task is not None:
            self.tasks[task.task_id] = task
            if task.phase:
                self.phase[task.task_id] = task.phase
            if task.last_output:
                self.last_output[task.task_id] = task.last_output
        if task_id is None:
            if event.type is EventType.RUN_STARTED:
                self._started = self._clock()
                self._elapsed_offset = 0.0
            elif event.type is EventType.RUN_FINISHED:
                # The engine says how the run ended ("finished", "cancelled", "interrupted").
                self.finish(str(event.data.get("state") or "finished"))
            return
        if event.phase is not None:
            self.phase[task_id] = event.phase.value
        if event.type in (EventType.TASK_OUTPUT, EventType.TASK_PROGRESS):
            line = last_line(event.message)
            if line is not None:
                self.last_output[task_id] = line

    def finish(self, status: str) -> None:
        if self._ended is None:
            self._ended = self._clock()
        self.status = status

    # -- what renderers read -----------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.status != "running"

    @property
    def total(self) -> int:
        return len(self.tasks)

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUS_ORDER, 0)
        for task in self.tasks.values():
            counts[str(task.status)] += 1
        return counts

    @property
    def done_count(self) -> int:
        return sum(1 for t in self.tasks.values() if TaskStatus(t.status).is_final)

    @property
    def cost_usd(self) -> float | None:
        """Sum of reported costs so far; None when no task reported one (e.g. plain commands)."""
        costs = [t.cost_usd for t in self.tasks.values() if t.cost_usd is not None]
        return sum(costs) if costs else None

    @property
    def elapsed_s(self) -> float:
        end = self._ended if self._ended is not None else self._clock()
        return self._elapsed_offset + (end - self._started)

    def task_elapsed_s(self, task: TaskResult, now: datetime | None = None) -> float | None:
        if task.duration_s is not None:
            return task.duration_s
        if task.started_at is None:
            return None
        end = task.finished_at or now or datetime.now(UTC)
        return max((end - task.started_at).total_seconds(), 0.0)

    def phase_of(self, task: TaskResult) -> str:
        if TaskStatus(task.status).is_final or task.status == TaskStatus.PENDING:
            return ""
        return self.phase.get(task.task_id, "")
