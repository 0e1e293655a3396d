"""What a view of a run shows, kept as plain data and updated from events.

The engine's listeners run on the run's loop thread. A live view only ever folds events into a
:class:`RunState` there and renders from it; no renderer reads engine internals. A finished
:class:`~parallelcc_sdk.results.RunResult` becomes a RunState too, so one renderer serves both.

Everything a render reads about the whole run (counts, tasks done, cost, isolation, the tasks
worth listing) is kept up to date in :meth:`RunState.apply`, at a cost per event that does not
grow with the number of tasks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..events import Event, EventType
from ..models import STATUS_ORDER, TaskResult, TaskStatus
from . import format as fmt

if TYPE_CHECKING:
    from ..results import RunResult, RunSummary


@runtime_checkable
class HandleLike(Protocol):
    """The part of :class:`~parallelcc_sdk.handle.ExecutionHandle` the views use."""

    @property
    def run_id(self) -> str: ...
    @property
    def run_dir(self) -> Path: ...
    @property
    def status(self) -> str: ...
    @property
    def tasks(self) -> list[TaskResult]: ...
    @property
    def total(self) -> int: ...
    @property
    def elapsed_s(self) -> float: ...
    @property
    def blocking(self) -> bool: ...
    def done(self) -> bool: ...
    def cancel(self, task_id: str | None = None) -> None: ...
    def add_listener(self, callback: Callable[[Event], Any]) -> Callable[[], None]: ...


class RunState:
    """The latest record of every task, what events add (phase, last output line), and running
    totals over the tasks."""

    def __init__(
        self,
        run_id: str,
        tasks: Sequence[TaskResult],
        *,
        run_dir: str | Path | None = None,
        elapsed_s: float | None = None,
        status: str = "running",
        summary: RunSummary | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run_id = run_id
        self.run_dir = str(run_dir) if run_dir is not None else None
        self.tasks: dict[str, TaskResult] = {}
        self.phase: dict[str, str] = {}
        self.last_output: dict[str, str] = {}
        self._counts = dict.fromkeys(STATUS_ORDER, 0)
        # Task ids by status, in the order they entered it (dicts as ordered sets).
        self._by_status: dict[str, dict[str, None]] = {s: {} for s in STATUS_ORDER}
        self._cost_sum = 0.0
        self._cost_reporters = 0
        self._isolation: dict[str, int] = {}
        for task in tasks:
            self._put(task)
        self.status = status
        self.summary = summary
        self.cancel_requested = False
        # A blocking call (pcc.run, handle.result) holds the kernel: a button click cannot arrive.
        self.cancel_blocked = False
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
        state = cls(
            handle.run_id,
            handle.tasks,
            run_dir=handle.run_dir,
            elapsed_s=handle.elapsed_s,
            status=status,
        )
        if state.finished:
            state.summary = state._summarize()
        return state

    @classmethod
    def from_result(cls, result: RunResult) -> RunState:
        return cls(
            result.run_id,
            result.tasks,
            run_dir=result.run_dir,
            elapsed_s=result.summary.total_duration_s,
            status=fmt.end_state(result.counts),
            summary=result.summary,
        )

    # -- folding events ---------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        task = event.task
        task_id = event.task_id or (task.task_id if task is not None else None)
        if task is not None:
            self._put(task)
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
            line = fmt.last_line(event.message)
            if line is not None:
                self.last_output[task_id] = line

    def _put(self, task: TaskResult) -> None:
        old = self.tasks.get(task.task_id)
        self.tasks[task.task_id] = task
        if task.phase:
            self.phase[task.task_id] = task.phase
        if task.last_output:
            self.last_output[task.task_id] = task.last_output
        if old is not None:
            if (
                old.status == task.status
                and old.cost_usd == task.cost_usd
                and fmt.isolation_of(old) == fmt.isolation_of(task)
            ):
                return  # an output line: nothing counted changed
            self._tally(old, -1)
        self._tally(task, +1)

    def _tally(self, task: TaskResult, sign: int) -> None:
        status = TaskStatus(task.status).value
        self._counts[status] += sign
        members = self._by_status[status]
        if sign > 0:
            members.setdefault(task.task_id)
        else:
            members.pop(task.task_id, None)
        if task.cost_usd is not None:
            self._cost_sum += sign * task.cost_usd
            self._cost_reporters += sign
        isolation = fmt.isolation_of(task)
        if isolation is not None:
            left = self._isolation.get(isolation, 0) + sign
            if left:
                self._isolation[isolation] = left
            else:
                self._isolation.pop(isolation, None)

    def finish(self, status: str) -> None:
        if self._ended is None:
            self._ended = self._clock()
        self.status = status
        if self.summary is None:
            self.summary = self._summarize()

    def _summarize(self) -> RunSummary:
        from ..results import RunSummary

        return RunSummary.from_results(self.run_id, list(self.tasks.values()), self.elapsed_s)

    # -- what renderers read -----------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.status != "running"

    @property
    def total(self) -> int:
        return len(self.tasks)

    @property
    def counts(self) -> dict[str, int]:
        """Tasks in each status, every status present."""
        return dict(self._counts)

    @property
    def done_count(self) -> int:
        return fmt.done_count(self._counts)

    @property
    def cost_usd(self) -> float | None:
        """Sum of reported costs so far; None when no task reported one (e.g. plain commands)."""
        if not self._cost_reporters:
            return None
        # Adding and taking back floats leaves rounding dust; a cost is never below zero.
        return max(self._cost_sum, 0.0)

    @property
    def isolation(self) -> str | None:
        """What isolated the tasks that say so (see :func:`format.isolation_phrase`)."""
        return fmt.isolation_phrase(self._isolation)

    @property
    def show_isolation_column(self) -> bool:
        """Only when tasks were isolated differently; otherwise the title says it once."""
        return len(self._isolation) > 1

    @property
    def headline(self) -> str:
        return fmt.headline(self.status, self._counts)

    @property
    def outcome(self) -> str:
        return fmt.run_outcome(self.status, self._counts)

    def with_status(self, *statuses: str) -> Iterator[TaskResult]:
        """Tasks in these statuses, status by status, each in the order it entered it."""
        for status in statuses:
            for task_id in self._by_status[status]:
                yield self.tasks[task_id]

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

