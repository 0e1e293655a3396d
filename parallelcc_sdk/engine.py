"""The scheduler: order, limits, cancellation, retries, timeouts, budgets, events and the journal.

No subprocess or HTTP code lives here: sandboxes come from a :class:`Backend`, commands from an
:class:`Agent`. One event loop owns a run; every method runs on that loop's thread.

Cancellation is asyncio cancellation of the task's own ``asyncio.Task``, so a task is stopped at
whichever await it is in: there is no gap between two steps through which it could slip.

``max_concurrent`` limits the commands running at once, not the set-up around them: where the
backend allows it (``Backend.prepares_ahead``), up to ``max_concurrent`` more tasks open and
prepare their sandboxes while the others run, and a task collects its changes and closes
its sandbox after giving its slot back, so the next command starts as soon as one exits. A
task being prepared ahead, or prepared and waiting for a slot, is still ``pending`` (its phase
says ``preparing``); it becomes ``running``, with its ``started_at``, when its command gets a
slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .agents.base import Agent, Progress
from .attempt import AttemptOutcome, AttemptRunner
from .backends.base import (
    LABEL_ATTEMPT,
    LABEL_RUN_ID,
    LABEL_TASK_ID,
    Backend,
    PreparedRun,
    RunSpec,
    Sandbox,
    SandboxSpec,
)
from .bestof import Selection, Selector
from .collection import DEFAULT_EXCLUDED_CHANGES
from .continuation import TASK_OPTIONS, Continuation, task_options
from .contract import Stream
from .errors import OutputWriteError, SetupError, describe_write_failure
from .events import Event, EventType, Phase
from .land.base import record_snapshot
from .models import RunStatus, Task, TaskResult, TaskStatus
from .redaction import Redactor
from .results import RunResult, RunSummary
from .runfolder.layout import RunLayout
from .runfolder.writer import RunJournal, write_run_outputs, write_task_metadata
from .setup_step import run_setup_step
from .slots import Slots
from .spend import SpendLedger
from .task_output import TaskOutput, run_relative

logger = logging.getLogger("parallelcc_sdk")

_LAST_OUTPUT_CHARS = 200


@dataclass(frozen=True)
class RunConfig:
    """Everything a run was asked to do, already validated."""

    repo: Path
    backend: Backend
    agent: Agent
    max_concurrent: int = 3
    fail_fast: bool = False
    task_timeout: float | None = None
    retries: int = 0
    retry_backoff_s: float = 2.0
    budget_usd: float | None = None
    exclude_changes: tuple[str, ...] = DEFAULT_EXCLUDED_CHANGES
    check_command: str | None = None
    """Run in each task's workspace after its agent completed (see ``checking``)."""
    select: Selector | None = None
    """How best-of-N candidates are chosen between (see ``bestof``)."""
    setup: str | None = None
    """A command run once before any task, in the state every task starts from (``setup_step``)."""

    def describe(self) -> dict[str, Any]:
        """The configuration for ``run.json``: no secrets, only plain values."""
        return {
            "repo": str(self.repo),
            "backend": dict(self.backend.describe()),
            "agent": dict(self.agent.describe()),
            "max_concurrent": self.max_concurrent,
            "fail_fast": self.fail_fast,
            "task_timeout": self.task_timeout,
            "retries": self.retries,
            "retry_backoff_s": self.retry_backoff_s,
            "budget_usd": self.budget_usd,
            "exclude_changes": list(self.exclude_changes),
            "check_command": self.check_command,
            "select": self.select if isinstance(self.select, str | None) else "function",
            "setup": self.setup,
        }


class Engine:
    """Runs one batch of tasks. Create it, then ``await engine.run()`` once."""

    def __init__(
        self,
        tasks: Sequence[Task],
        config: RunConfig,
        *,
        run_id: str,
        run_dir: Path,
        emit: Callable[[Event], None],
        continuation: Continuation | None = None,
    ) -> None:
        self.tasks = list(tasks)
        # A resumed or retried run: tasks whose record is final are kept, the others run.
        self.continuation = continuation
        earlier = continuation.records if continuation is not None else {}
        self.config = config
        self.run_id = run_id
        self.run_dir = run_dir
        self._emit_callback = emit
        self.layout = RunLayout(run_dir)
        self.results: dict[str, TaskResult] = {
            t.task_id: earlier.get(t.task_id)
            or TaskResult(
                task_id=t.task_id,
                prompt=t.prompt,
                output_path=str(self.layout.task_dir(t.task_id)),
                metadata=dict(t.metadata),
                candidate_of=t.candidate_of,
                candidate=t.candidate,
            )
            for t in tasks
        }
        self.redactor = Redactor((*config.agent.secrets(), *config.backend.secrets()))
        self.journal = RunJournal(
            run_dir,
            run_id,
            config.describe() | {TASK_OPTIONS: task_options(tasks)},
            list(self.results.values()),
            created_at=continuation.created_at if continuation is not None else None,
        )
        if continuation is not None:
            self.journal.extra.update(continuation.extra)
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self._queue: deque[Task] = deque(
            t for t in tasks if not self.results[t.task_id].status.is_final
        )
        self._running: dict[str, asyncio.Task[None]] = {}
        self._cancel_reasons: dict[str, str] = {}
        self._stop_reason: str | None = None
        self._interrupted = False
        self.spend = SpendLedger(config.budget_usd)
        self._attempts = AttemptRunner(
            config.backend, config.agent, self.redactor, check_command=config.check_command
        )
        self._selection = Selection.of(tasks, config.select or "smallest_diff", self.results)
        self._t0 = 0.0
        # Writing the records of queued tasks a stop cancelled (see _cancel_unstarted).
        self._settling: list[asyncio.Future[None]] = []
        # Commands running at once; sandboxes are prepared and closed outside these slots.
        self._slots = Slots(config.max_concurrent)
        self._places: dict[str, int] = {}
        self._task_t0: dict[str, float] = {}
        # Tries of each task in this process (its attempt numbers go on from earlier runs).
        self._tries: dict[str, int] = {}

    # -- public, loop thread only -------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stop_reason is not None

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def interrupt(self, reason: str = "run interrupted (KeyboardInterrupt)") -> None:
        """Stops the whole run like ``cancel()``, but records it as ``interrupted`` (Ctrl-C)."""
        self._interrupted = True
        self._stop(reason)

    def cancel(self, task_id: str | None = None, reason: str | None = None) -> None:
        """Cancels one task (queued or running), or the whole run when ``task_id`` is None."""
        if task_id is None:
            self._stop(reason or "run cancelled by the user")
            return
        if task_id not in self.results:
            raise KeyError(task_id)
        why = reason or "cancelled by the user"
        queued = next((t for t in self._queue if t.task_id == task_id), None)
        if queued is not None:
            self._queue.remove(queued)
            self._finish_unstarted(queued, why)
        elif task_id in self._running:
            self._cancel_reasons[task_id] = why
            self._running[task_id].cancel(why)

    async def run(self) -> RunResult:
        self.started_at = datetime.now(UTC)
        self._t0 = time.monotonic()
        try:
            self.journal.write()
        except OSError as exc:  # nothing has started: the run cannot be recorded, so it fails
            where = describe_write_failure(self.layout.run_json.name, exc)
            raise OutputWriteError(f"run {self.run_id} cannot start: {where}") from exc
        self._emit(Event(EventType.RUN_STARTED, self.run_id, data={"total": len(self.tasks)}))
        for task in self.tasks:
            kept = self.results[task.task_id].status.is_final
            event = EventType.TASK_FINISHED if kept else EventType.TASK_QUEUED
            self._emit_task(event, task.task_id)
        spec = RunSpec(
            run_id=self.run_id,
            run_dir=self.run_dir,
            repo=self.config.repo,
            # Earlier runs' results, when the output folder lies inside the repository.
            exclude=(self.run_dir.parent,),
            exclude_changes=self.config.exclude_changes,
            labels={LABEL_RUN_ID: self.run_id},
        )
        prepared: PreparedRun | None = None
        state = RunStatus.FINISHED
        try:
            prepared = await self._start_run(spec)
            await record_snapshot(prepared.snapshot, self.run_dir)
            await self._setup(prepared)
            # Twice the slots where the backend allows: as many tasks again are prepared (or
            # closed) while others run.
            ahead = 2 if self.config.backend.prepares_ahead else 1
            workers = [
                asyncio.create_task(self._worker(prepared), name=f"parallelcc-worker-{i}")
                for i in range(min(ahead * self.config.max_concurrent, len(self._queue)))
            ]
            await asyncio.gather(*workers)
        except BaseException:
            # Interrupted (cancelled, KeyboardInterrupt, a bug): stop everything, wait until every
            # sandbox is closed, and still write what is known before re-raising.
            state = RunStatus.INTERRUPTED
            self._stop("run interrupted")
            await self._drain()
            raise
        finally:
            if state is RunStatus.FINISHED and self._stop_reason is not None:
                state = RunStatus.INTERRUPTED if self._interrupted else RunStatus.CANCELLED
            await self._settled()
            for task in self.tasks:
                self._finish_unstarted(task, self._stop_reason or "run ended before it started")
            self._queue.clear()
            result = self._finalize(state)
            if prepared is not None:
                await self._end_run(prepared)
        return result

    async def _start_run(self, spec: RunSpec) -> PreparedRun:
        try:
            prepared = await self.config.backend.start_run(spec)
        except Exception as exc:
            # No task can run (a rejected key, a snapshot that failed): each says why, and the
            # exception goes on to the caller.
            self._stop(f"the run could not start: {self.redactor.redact(str(exc))}")
            raise
        # What the run made that a crash could leave behind (a base sandbox) is journaled now.
        try:
            shared = self.config.backend.describe_run(prepared)
            if shared:
                self.journal.set_backend_run(dict(shared))
        except Exception as exc:  # the backend's labels still lead a cleanup to it
            logger.warning("could not journal what run %s shares: %s", self.run_id, exc)
        return prepared

    async def _setup(self, prepared: PreparedRun) -> None:
        if self.config.setup is None:
            return
        try:
            record = await run_setup_step(
                self.config.backend, prepared, self.config.setup, self.redactor
            )
        except SetupError as exc:
            self.journal.extra["setup"] = exc.record
            self._stop("the run's set-up failed")
            raise
        self.journal.extra["setup"] = record
        self.journal.write()  # no task has started: run.json holds every record already

    async def _end_run(self, prepared: PreparedRun) -> None:
        try:
            await asyncio.shield(self.config.backend.end_run(prepared))
        except Exception as exc:  # the results are written; a leftover is for cleanup() to find
            logger.warning("the backend could not end run %s: %s", self.run_id, exc)

    # -- scheduling ---------------------------------------------------------------------------

    async def _worker(self, run: PreparedRun) -> None:
        while self._queue and not self.stopping:
            task = self._queue.popleft()
            place = self._places[task.task_id] = self._slots.take_place()
            job = asyncio.create_task(self._run_task(task, run), name=task.task_id)
            self._running[task.task_id] = job
            job.add_done_callback(functools.partial(self._forget_job, task.task_id))
            # The job can be cancelled on its own; waiting on it must not cancel the worker.
            await asyncio.wait([job])
            # Whatever happened to the task, it no longer holds up the line.
            self._slots.leave_line(place)
            if job.cancelled():
                # Cancelled before its first step ran: nothing was opened, only the record is left.
                self._finish_unstarted(task, self._cancel_reasons.get(task.task_id, "cancelled"))
            elif (exc := job.exception()) is not None:
                raise exc

    def _forget_job(self, task_id: str, _job: asyncio.Task[None]) -> None:
        self._running.pop(task_id, None)

    def _stop(self, reason: str, spare: str | None = None) -> None:
        """No new task starts; running ones (but ``spare``) are cancelled with ``reason``."""
        if self._stop_reason is None:
            self._stop_reason = reason
        # Running tasks first: their sandboxes start closing while the queued ones are recorded.
        for task_id, job in list(self._running.items()):
            if task_id != spare and not job.done() and task_id not in self._cancel_reasons:
                self._cancel_reasons[task_id] = reason
                job.cancel(reason)
        if self._queue:
            unstarted = list(self._queue)
            self._queue.clear()
            self._cancel_unstarted(unstarted, reason)

    def _cancel_unstarted(self, tasks: Sequence[Task], reason: str) -> None:
        """Records queued tasks ``cancelled`` at once, in memory and in the journal.

        Their ``metadata.json`` files are written in a worker thread, and only then do their
        events fire (a listener finds the file): a stop with thousands of tasks queued does not
        hold up the loop, and with it the sandboxes being closed.
        """
        records = [
            self._update(task.task_id, None, status=TaskStatus.CANCELLED, error=reason)
            for task in tasks
            if not self.results[task.task_id].status.is_final
        ]
        if not records:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # not on a loop (a test driving the engine by hand): write now
            self._write_unstarted(records)
            for record in records:
                self._emit_task(EventType.TASK_FINISHED, record.task_id)
            return
        self._settling.append(asyncio.ensure_future(self._settle_unstarted(records)))

    async def _settle_unstarted(self, records: Sequence[TaskResult]) -> None:
        try:
            await asyncio.to_thread(self._write_unstarted, records)
        finally:
            for record in records:
                self._emit_task(EventType.TASK_FINISHED, record.task_id)

    def _write_unstarted(self, records: Sequence[TaskResult]) -> None:
        """Writes the ``metadata.json`` of tasks that never started (any thread)."""
        for record in records:
            try:
                write_task_metadata(self.layout.task_dir(record.task_id), record)
            except OSError as exc:
                # Their records are in the journal; a full disk must not fail what is left.
                logger.warning(
                    "could not write the records of %d tasks that never started: %s",
                    len(records),
                    describe_write_failure(run_relative(exc.filename, self.run_dir), exc),
                )
                return

    async def _settled(self) -> None:
        """Waits until the records of every cancelled queued task are written."""
        while self._settling:
            pending, self._settling = self._settling, []
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(asyncio.gather(*pending, return_exceptions=True))

    async def _drain(self) -> None:
        """Waits for every running task to finish cleaning up after a stop."""
        jobs = [j for j in self._running.values() if not j.done()]
        if jobs:
            await asyncio.shield(asyncio.gather(*jobs, return_exceptions=True))

    # -- one task -----------------------------------------------------------------------------

    async def _run_task(self, task: Task, run: PreparedRun) -> None:
        task_id = task.task_id
        files = self.layout.task(task_id)
        output = TaskOutput(files, self.run_dir, functools.partial(self._output_failed, task_id))
        try:
            output.open()
        except OutputWriteError as exc:
            # Nothing can be recorded for it: the task fails before a sandbox is opened.
            outcome = AttemptOutcome(TaskStatus.FAILED, error=str(exc))
        else:
            with output:
                outcome = await self._attempt_until_done(task, run, files.task_dir, output)
        if output.failure is not None:
            stopped_for_it = self._cancel_reasons.get(task_id) == output.failure
            outcome = _output_lost(outcome, output.failure, stopped_for_it=stopped_for_it)
        fields = outcome.record_fields()
        fields.update(self.spend.task_totals(task_id))
        finished = datetime.now(UTC)
        t0 = self._task_t0.pop(task_id, None)
        self._tries.pop(task_id, None)
        record = self._update(
            task_id,
            None,
            finished_at=finished,
            duration_s=time.monotonic() - t0 if t0 is not None else None,
            phase=None,
            **fields,
        )
        # Written at once, with no await before it, so a late cancel cannot lose the record, and
        # before the event, so a listener that reacts to it finds the file.
        record = self._write_metadata(record)
        self._emit_task(EventType.TASK_FINISHED, task_id)
        self._after_finish(record)

    async def _attempt_until_done(
        self, task: Task, run: PreparedRun, task_dir: Path, output: TaskOutput
    ) -> AttemptOutcome:
        """Attempts of the task, retried while they fail transiently; the last one's outcome."""
        task_id = task.task_id
        timeout = task.timeout if task.timeout is not None else self.config.task_timeout
        channel = _TaskChannel(self, task_id, output)
        # Attempts go on counting across retries of the task in later processes.
        attempt = self.results[task_id].attempts
        tries = 0
        adopted = await self._reattach(task_id, run, attempt, timeout, task_dir)
        if adopted is not None:
            attempt -= 1  # the same attempt goes on in its sandbox
        while True:
            attempt += 1
            tries += 1
            self._tries[task_id] = tries
            self._update(task_id, None, attempts=attempt)
            # Journaled now, not when the sandbox opens: a process killed in between still
            # counts this attempt when the run is resumed.
            self.journal.update(self.results[task_id])
            if adopted is not None:
                output.log(f"[parallelcc] re-attached to sandbox {adopted.sandbox_id}\n")
            elif attempt > 1:
                output.log(f"[parallelcc] attempt {attempt}\n")
            spec = self._sandbox_spec(task_id, run, attempt, timeout, task_dir)
            outcome = await self._attempts.run(task, spec, channel, sandbox=adopted)
            adopted = None
            # Every attempt was paid for: the record shows what the task cost in all.
            self.spend.settle_attempt(task_id, outcome.metrics, outcome.sandbox_cost_usd)
            if not outcome.transient or tries > self.config.retries or self.stopping:
                return outcome
            if output.failure is not None:
                return outcome
            delay = self._backoff(attempt)
            self._update(task_id, EventType.TASK_RETRY, phase=None)
            output.log(f"[parallelcc] transient failure; retrying in {delay:.1f}s\n")
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                _uncancel()
                return AttemptOutcome(TaskStatus.CANCELLED, error=channel.cancel_reason())

    def _sandbox_spec(
        self, task_id: str, run: PreparedRun, attempt: int, timeout: float | None, task_dir: Path
    ) -> SandboxSpec:
        return SandboxSpec(
            run=run,
            task_id=task_id,
            attempt=attempt,
            task_dir=task_dir,
            time_limit_s=timeout,
            labels={**run.spec.labels, LABEL_TASK_ID: task_id, LABEL_ATTEMPT: str(attempt)},
        )

    async def _reattach(
        self, task_id: str, run: PreparedRun, attempt: int, limit_s: float | None, task_dir: Path
    ) -> Sandbox | None:
        """The sandbox a resumed task was running in when the run's process died, if the
        backend can take it over; ``None``: the task starts again in a new sandbox."""
        described = self.continuation.reattach.get(task_id) if self.continuation else None
        if described is None or attempt < 1:
            return None
        spec = self._sandbox_spec(task_id, run, attempt, limit_s, task_dir)
        try:
            return await self.config.backend.reattach(spec, described)
        except Exception as exc:  # restarting is always possible
            problem = self.redactor.redact(str(exc))
            logger.warning("could not re-attach to the sandbox of %s: %s", task_id, problem)
            return None
    def _output_failed(self, task_id: str, failure: str) -> None:
        """A file of the task cannot be written (a full disk): stop it; it will be ``failed``."""
        logger.warning("task %s: %s; stopping it", task_id, failure)
        job = self._running.get(task_id)
        if job is not None and not job.done() and task_id not in self._cancel_reasons:
            self._cancel_reasons[task_id] = failure
            job.cancel(failure)

    def _write_metadata(self, record: TaskResult) -> TaskResult:
        """Writes the task's ``metadata.json``; a task whose record cannot be written failed."""
        path = self.layout.task(record.task_id).metadata
        try:
            write_task_metadata(path.parent, record)
        except OSError as exc:
            failure = describe_write_failure(run_relative(path, self.run_dir), exc)
            logger.warning("task %s: %s", record.task_id, failure)
            # Failed (a stopped task stays cancelled), after whatever else it had to say.
            status = TaskStatus.CANCELLED if record.status is TaskStatus.CANCELLED else None
            error = f"{record.error}; {failure}" if record.error else failure
            record = self._update(
                record.task_id, None, status=status or TaskStatus.FAILED, error=error
            )
        return record

    @contextlib.asynccontextmanager
    async def _slot(self, task_id: str) -> AsyncIterator[None]:
        first = task_id not in self._task_t0
        place = self._places[task_id]
        try:
            # A retry does not queue behind tasks that have not started yet.
            await self._slots.acquire(place if first else None)
        except BaseException:
            self._slots.leave_line(place)
            raise
        try:
            if first:
                # The first command of this task: from here it is running.
                self._task_t0[task_id] = time.monotonic()
                self._update(
                    task_id,
                    EventType.TASK_STARTED,
                    status=TaskStatus.RUNNING,
                    started_at=datetime.now(UTC),
                )
            yield
        finally:
            self._slots.release()

    def _on_sandbox(self, task_id: str, sandbox: Sandbox) -> None:
        self._update(
            task_id,
            None,
            sandbox_id=sandbox.sandbox_id,
            sandbox_info=dict(sandbox.describe()),
            isolation=sandbox.isolation,
        )
        self.journal.update(self.results[task_id])

    def _on_output(
        self,
        task_id: str,
        stream: Stream,
        line: str,
        progress: Sequence[Progress],
        redactor: Redactor,
        output: TaskOutput,
    ) -> None:
        safe = redactor.redact(line)
        output.log(f"{safe}\n" if stream == "stdout" else f"[stderr] {safe}\n")
        # A line the agent understood is shown as what it means ("turn 3 · Edit app.py"),
        # not as raw JSON; plain output is shown as it is.
        shown = safe if not progress else _last_message(progress)
        self._update(
            task_id,
            EventType.TASK_OUTPUT,
            message=safe,
            data={"stream": stream},
            **({"last_output": redactor.redact(shown)[-_LAST_OUTPUT_CHARS:]} if shown else {}),
        )
        for item in progress:
            self._on_progress(task_id, item, redactor, output)

    def _on_progress(
        self, task_id: str, item: Progress, redactor: Redactor, output: TaskOutput
    ) -> None:
        if item.raw is not None:
            output.event(json.dumps(redactor.redact_obj(item.raw), ensure_ascii=False) + "\n")
        if item.cost_usd is not None:
            self.spend.report_live(task_id, item.cost_usd)
            self._check_budget(spare=task_id if item.final else None)
        if item.message is not None or item.data:
            self._update(
                task_id,
                EventType.TASK_PROGRESS,
                message=redactor.redact(item.message) if item.message else None,
                data=redactor.redact_obj(dict(item.data)),
                **({"cost_usd": item.cost_usd} if item.cost_usd is not None else {}),
            )

    # -- decisions after a task ---------------------------------------------------------------

    def _on_command_end(self, task_id: str, outcome: AttemptOutcome) -> None:
        # Decided as the command exits, before its slot lets the next prepared task start.
        retried = outcome.transient and self._tries.get(task_id, 0) <= self.config.retries
        failed = outcome.status in (TaskStatus.FAILED, TaskStatus.TIMED_OUT) and not retried
        if self.config.fail_fast and failed and not self.stopping:
            self._stop(f"fail-fast: task {task_id} {outcome.status.value}", spare=task_id)

    def _after_finish(self, record: TaskResult) -> None:
        self._apply_selection(record.task_id)
        failed = record.status in (TaskStatus.FAILED, TaskStatus.TIMED_OUT)
        if self.config.fail_fast and failed and not self.stopping:
            self._stop(f"fail-fast: task {record.task_id} {record.status.value}")
        self._check_budget()

    def _apply_selection(self, task_id: str | None) -> None:
        """Records the choice of each best-of-N group whose last candidate just finished."""
        for record in self._selection.decide(self.results, task_id):
            self.results[record.task_id] = record
            self.journal.update(record)
            try:
                write_task_metadata(self.layout.task_dir(record.task_id), record)
            except OSError as exc:  # the choice is in the journal; a full disk fails nothing
                logger.warning(
                    "task %s: %s",
                    record.task_id,
                    describe_write_failure(run_relative(exc.filename, self.run_dir), exc),
                )
            self._emit(
                Event(
                    EventType.TASK_PROGRESS,
                    self.run_id,
                    task_id=record.task_id,
                    task=record,
                    message=record.selection_reason,
                )
            )

    def _check_budget(self, spare: str | None = None) -> None:
        """Stops the run once the budget is spent; ``spare`` is a task whose work is done."""
        if self.stopping or not self.spend.exhausted:
            return
        self._stop(
            f"run budget of ${self.spend.budget_usd:.2f} reached "
            f"(${self.spend.total_usd:.2f} spent)",
            spare=spare,
        )

    @property
    def cost_usd(self) -> float:
        """Cost of every finished attempt plus the latest reported cost of running ones."""
        return self.spend.total_usd

    def _backoff(self, attempt: int) -> float:
        base = self.config.retry_backoff_s * (2 ** (attempt - 1))
        # Jitter keeps the retries of tasks that failed together from moving in step.
        return float(base * random.uniform(0.5, 1.0))

    # -- records and events -------------------------------------------------------------------

    def _finish_unstarted(self, task: Task, reason: str) -> None:
        record = self.results[task.task_id]
        if record.status.is_final:
            return
        record = self._update(task.task_id, None, status=TaskStatus.CANCELLED, error=reason)
        self._write_unstarted([record])
        self._emit_task(EventType.TASK_FINISHED, task.task_id)

    def _update(
        self,
        task_id: str,
        event: EventType | None,
        *,
        message: str | None = None,
        data: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> TaskResult:
        record = self.results[task_id].replace(**changes) if changes else self.results[task_id]
        self.results[task_id] = record
        # The journal before the event: a listener that reads the journal sees the state announced.
        if "status" in changes:
            self.journal.update(record)
        if event is not None:
            phase = changes.get("phase")
            self._emit(
                Event(
                    event,
                    self.run_id,
                    task_id=task_id,
                    task=record,
                    phase=phase,
                    message=message,
                    data=data or {},
                )
            )
        return record

    def _emit_task(self, event: EventType, task_id: str) -> None:
        self._emit(Event(event, self.run_id, task_id=task_id, task=self.results[task_id]))

    def _emit(self, event: Event) -> None:
        self._emit_callback(event)

    def _finalize(self, state: RunStatus) -> RunResult:
        self.finished_at = datetime.now(UTC)
        self._apply_selection(None)
        tasks = tuple(self.results[t.task_id] for t in self.tasks)
        before = self.continuation.elapsed_before_s if self.continuation is not None else 0.0
        summary = RunSummary.from_results(self.run_id, tasks, before + time.monotonic() - self._t0)
        result = RunResult(self.run_id, self.run_dir, tasks, summary, state=state)
        # A full disk costs files, never the result: the caller still gets it, in memory.
        try:
            try:
                write_run_outputs(result)
            except OSError as exc:
                logger.warning(
                    "run %s: the summary files are incomplete: %s",
                    self.run_id,
                    describe_write_failure(run_relative(exc.filename, self.run_dir), exc),
                )
        finally:
            try:
                self.journal.finish(state)
            except OSError as exc:
                logger.warning(
                    "run %s: its journal could not be closed (it reads as interrupted once "
                    "this process ends): %s",
                    self.run_id,
                    describe_write_failure(self.layout.run_json.name, exc),
                )
            finally:
                self._emit(Event(EventType.RUN_FINISHED, self.run_id, data={"state": state}))
        return result


class _TaskChannel:
    """What one task's attempts tell the engine: an :class:`~.attempt.AttemptListener`."""

    def __init__(self, engine: Engine, task_id: str, output: TaskOutput) -> None:
        self._engine = engine
        self._task_id = task_id
        self._output = output

    def phase(self, phase: Phase) -> None:
        self._engine._update(self._task_id, EventType.TASK_PHASE, phase=phase)

    def sandbox_opened(self, sandbox: Sandbox) -> None:
        self._engine._on_sandbox(self._task_id, sandbox)

    def slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._engine._slot(self._task_id)

    def command_ended(self, outcome: AttemptOutcome) -> None:
        self._engine._on_command_end(self._task_id, outcome)

    def output(
        self, stream: Stream, line: str, progress: Sequence[Progress], redactor: Redactor
    ) -> None:
        self._engine._on_output(self._task_id, stream, line, progress, redactor, self._output)

    def cancel_reason(self) -> str:
        return self._engine._cancel_reasons.get(self._task_id, "cancelled")


def _output_lost(outcome: AttemptOutcome, failure: str, *, stopped_for_it: bool) -> AttemptOutcome:
    """The outcome of a task whose files could not all be written: ``failed``, saying why first.

    A task the run stopped for another reason stays ``cancelled``, the failure added after.
    """
    rest = outcome.error or ""
    if rest.startswith(failure):  # the reason it was stopped for, echoed by the attempt
        rest = rest[len(failure) :].removeprefix("; ")
    if outcome.status is TaskStatus.CANCELLED and not stopped_for_it:
        error = f"{rest}; {failure}" if rest else failure
        return dataclasses.replace(outcome, error=error, transient=False)
    error = f"{failure}; {rest}" if rest else failure
    return dataclasses.replace(outcome, status=TaskStatus.FAILED, error=error, transient=False)


def _last_message(progress: Sequence[Progress]) -> str | None:
    return next((p.message for p in reversed(progress) if p.message), None)


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
