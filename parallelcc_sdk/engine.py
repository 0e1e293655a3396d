"""The scheduler: order, limits, cancellation, retries, timeouts, budgets, events and the journal.

No subprocess or HTTP code lives here: sandboxes come from a :class:`Backend`, commands from an
:class:`Agent`. One event loop owns a run; every method runs on that loop's thread.

Cancellation is asyncio cancellation of the task's own ``asyncio.Task``, so a task is stopped at
whichever await it is in: there is no gap between two steps through which it could slip.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import random
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from .agents.base import Agent, AgentOutcome, Progress, Stream
from .backends.base import Backend, Sandbox, SandboxSpec
from .events import Event, EventType, Phase
from .land.base import record_snapshot
from .models import Task, TaskResult, TaskStatus
from .outputs import RunJournal, write_run_outputs, write_task_metadata
from .redaction import Redactor, secret_values
from .results import RunResult, RunSummary
from .snapshot import Snapshot, take_snapshot

logger = logging.getLogger("parallelcc_sdk")

LOG_FILE = "execution.log"
EVENTS_FILE = "events.jsonl"
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
            "budget_usd": self.budget_usd,
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
    ) -> None:
        self.tasks = list(tasks)
        self.config = config
        self.run_id = run_id
        self.run_dir = run_dir
        self._emit_callback = emit
        self.results: dict[str, TaskResult] = {
            t.task_id: TaskResult(
                task_id=t.task_id,
                prompt=t.prompt,
                output_path=str(run_dir / t.task_id),
                metadata=dict(t.metadata),
            )
            for t in tasks
        }
        self.redactor = Redactor(config.agent.secrets())
        self.journal = RunJournal(run_dir, run_id, config.describe(), list(self.results.values()))
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self._queue: deque[Task] = deque(tasks)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._cancel_reasons: dict[str, str] = {}
        self._stop_reason: str | None = None
        self._interrupted = False
        self._live_costs: dict[str, float] = {}
        self._spent_before: dict[str, float] = {}  # earlier attempts of tasks being retried
        self._t0 = 0.0

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
        self.journal.write()
        self._emit(Event(EventType.RUN_STARTED, self.run_id, data={"total": len(self.tasks)}))
        for task in self.tasks:
            self._emit_task(EventType.TASK_QUEUED, task.task_id)
        # Named "parallelcc-*" so that the local backend never shows it to a task (see isolation).
        work_dir = Path(tempfile.mkdtemp(prefix=f"parallelcc-run-{self.run_id}-"))
        state = "finished"
        try:
            snapshot = await take_snapshot(
                self.config.repo, work_dir / "snapshot.git", exclude=[self.run_dir.parent]
            )
            await record_snapshot(snapshot, self.run_dir)
            workers = [
                asyncio.create_task(self._worker(snapshot), name=f"parallelcc-worker-{i}")
                for i in range(min(self.config.max_concurrent, len(self.tasks)))
            ]
            await asyncio.gather(*workers)
        except BaseException:
            # Interrupted (cancelled, KeyboardInterrupt, a bug): stop everything, wait until every
            # sandbox is closed, and still write what is known before re-raising.
            state = "interrupted"
            self._stop("run interrupted")
            await self._drain()
            raise
        finally:
            if state == "finished" and self._stop_reason is not None:
                state = "interrupted" if self._interrupted else "cancelled"
            for task in self.tasks:
                self._finish_unstarted(task, self._stop_reason or "run ended before it started")
            self._queue.clear()
            result = self._finalize(state)
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, work_dir, True))
        return result

    # -- scheduling ---------------------------------------------------------------------------

    async def _worker(self, snapshot: Snapshot) -> None:
        while self._queue and not self.stopping:
            task = self._queue.popleft()
            job = asyncio.create_task(self._run_task(task, snapshot), name=task.task_id)
            self._running[task.task_id] = job
            job.add_done_callback(functools.partial(self._forget_job, task.task_id))
            # The job can be cancelled on its own; waiting on it must not cancel the worker.
            await asyncio.wait([job])
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
        while self._queue:
            self._finish_unstarted(self._queue.popleft(), reason)
        for task_id, job in list(self._running.items()):
            if task_id != spare and not job.done() and task_id not in self._cancel_reasons:
                self._cancel_reasons[task_id] = reason
                job.cancel(reason)

    async def _drain(self) -> None:
        """Waits for every running task to finish cleaning up after a stop."""
        jobs = [j for j in self._running.values() if not j.done()]
        if jobs:
            await asyncio.shield(asyncio.gather(*jobs, return_exceptions=True))

    # -- one task -----------------------------------------------------------------------------

    async def _run_task(self, task: Task, snapshot: Snapshot) -> None:
        task_id = task.task_id
        task_dir = self.run_dir / task_id
        task_dir.mkdir(exist_ok=True)
        started = datetime.now(UTC)
        t0 = time.monotonic()
        self._update(task_id, EventType.TASK_STARTED, status=TaskStatus.RUNNING, started_at=started)
        timeout = task.timeout if task.timeout is not None else self.config.task_timeout
        attempt = 0
        final: dict[str, Any] = {}
        spent = _Spend()
        with (
            # Line-buffered local files: each write is a quick append, streamed to disk at once.
            open(task_dir / LOG_FILE, "a", encoding="utf-8", buffering=1) as log,  # noqa: ASYNC230
            open(task_dir / EVENTS_FILE, "a", encoding="utf-8", buffering=1) as events,  # noqa: ASYNC230
        ):
            while True:
                attempt += 1
                self._update(task_id, None, attempts=attempt)
                final = await self._attempt(task, snapshot, attempt, timeout, task_dir, log, events)
                # Every attempt was paid for: the record shows what the task cost in all.
                spent.add(final)
                if not final.pop("_transient", False) or attempt > self.config.retries:
                    break
                if self.stopping:
                    break
                self._spent_before[task_id] = spent.cost_usd
                self._live_costs.pop(task_id, None)
                delay = self._backoff(attempt)
                self._update(task_id, EventType.TASK_RETRY, phase=None)
                log.write(f"[parallelcc] transient failure; retrying in {delay:.1f}s\n")
                try:
                    await asyncio.sleep(delay)
                except asyncio.CancelledError:
                    _uncancel()
                    final = self._cancelled_fields(task_id)
                    break
        final.setdefault("error", None)
        final.update(spent.totals())
        finished = datetime.now(UTC)
        record = self._update(
            task_id,
            None,
            finished_at=finished,
            duration_s=time.monotonic() - t0,
            phase=None,
            **final,
        )
        self._live_costs.pop(task_id, None)
        self._spent_before.pop(task_id, None)
        # Written at once, with no await before it, so a late cancel cannot lose the record, and
        # before the event, so a listener that reacts to it finds the file.
        write_task_metadata(task_dir, record)
        self._emit_task(EventType.TASK_FINISHED, task_id)
        self._after_finish(record)

    async def _attempt(
        self,
        task: Task,
        snapshot: Snapshot,
        attempt: int,
        time_limit_s: float | None,
        task_dir: Path,
        log: IO[str],
        events: IO[str],
    ) -> dict[str, Any]:
        """One try in a fresh sandbox. Returns the fields of the task's record it decided."""
        task_id = task.task_id
        if attempt > 1:
            log.write(f"[parallelcc] attempt {attempt}\n")
        spec = SandboxSpec(self.run_id, task_id, attempt, snapshot, task_dir)
        sandbox: Sandbox | None = None
        outcome: dict[str, Any]
        try:
            self._update(task_id, EventType.TASK_PHASE, phase=Phase.PREPARING)
            sandbox = await self.config.backend.open(spec)
            self._update(task_id, None, sandbox_id=sandbox.sandbox_id)
            self.journal.update(self.results[task_id])
            await sandbox.prepare()
            self._update(task_id, EventType.TASK_PHASE, phase=Phase.RUNNING)
            outcome = await self._execute(task, sandbox, time_limit_s, log, events)
        except TimeoutError:
            outcome = {
                "status": TaskStatus.TIMED_OUT,
                "error": f"timed out after {time_limit_s:g}s",
            }
        except asyncio.CancelledError:
            # This task's own cancellation, consumed here: the record says why, and cleanup below
            # must be able to await.
            _uncancel()
            outcome = self._cancelled_fields(task_id)
        except Exception as exc:  # a backend failure is this task's failure, not the run's
            logger.debug("task %s failed in its sandbox", task_id, exc_info=True)
            outcome = {
                "status": TaskStatus.FAILED,
                "error": self.redactor.redact(f"{type(exc).__name__}: {exc}"),
            }
        finally:
            if sandbox is not None:
                outcome_fields = await self._collect_and_close(task_id, sandbox, task_dir)
        if sandbox is not None:
            outcome.update(outcome_fields)
        return outcome

    def _cancelled_fields(self, task_id: str) -> dict[str, Any]:
        return {
            "status": TaskStatus.CANCELLED,
            "error": self._cancel_reasons.get(task_id, "cancelled"),
        }

    async def _execute(
        self,
        task: Task,
        sandbox: Sandbox,
        time_limit_s: float | None,
        log: IO[str],
        events: IO[str],
    ) -> dict[str, Any]:
        agent = self.config.agent
        invocation = agent.invocation(task, sandbox.context)
        # Secret-named variables of this invocation (a task's env=, an agent's env=) are masked
        # like the agent's own secrets: a command that prints one must not leak it to disk.
        redactor = self.redactor.with_secrets((*invocation.secrets, *secret_values(invocation.env)))
        parser = agent.parser(task)
        task_id = task.task_id

        def on_line(stream: Stream, line: str) -> None:
            safe = redactor.redact(line)
            log.write(f"{safe}\n" if stream == "stdout" else f"[stderr] {safe}\n")
            try:
                progress = parser.feed(stream, line)
            except Exception:  # a parser bug must not kill the task's output
                logger.warning("agent parser failed on a line of %s", task_id, exc_info=True)
                progress = ()
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
                self._on_progress(task_id, item, redactor, events)

        async with asyncio.timeout(time_limit_s):
            exit_code = await sandbox.exec(invocation, on_line)
        verdict: AgentOutcome = parser.finish(exit_code)
        fields: dict[str, Any] = {
            "status": verdict.status,
            "exit_code": exit_code,
            "error": redactor.redact(verdict.error) if verdict.error else None,
            "_transient": verdict.transient,
        }
        # AgentMetrics fields are TaskResult fields of the same names.
        fields.update(dataclasses.asdict(verdict.metrics))
        if fields["final_text"]:
            fields["final_text"] = redactor.redact(fields["final_text"])
        return fields

    def _on_progress(
        self, task_id: str, item: Progress, redactor: Redactor, events: IO[str]
    ) -> None:
        if item.raw is not None:
            events.write(json.dumps(redactor.redact_obj(item.raw), ensure_ascii=False) + "\n")
        if item.cost_usd is not None:
            self._live_costs[task_id] = item.cost_usd
            self._check_budget(spare=task_id if item.final else None)
        if item.message is not None or item.data:
            self._update(
                task_id,
                EventType.TASK_PROGRESS,
                message=redactor.redact(item.message) if item.message else None,
                data=redactor.redact_obj(dict(item.data)),
                **({"cost_usd": item.cost_usd} if item.cost_usd is not None else {}),
            )

    async def _collect_and_close(
        self, task_id: str, sandbox: Sandbox, task_dir: Path
    ) -> dict[str, Any]:
        """Collects the task's changes (also after a failure) and always closes the sandbox."""
        fields: dict[str, Any] = {}
        try:
            self._update(task_id, EventType.TASK_PHASE, phase=Phase.COLLECTING)
            changes = await sandbox.collect(task_dir)
            fields = changes.record_fields()
        except asyncio.CancelledError:
            logger.debug("change collection of %s was cancelled", task_id)
        except Exception as exc:
            logger.warning("could not collect the changes of %s: %s", task_id, exc)
            fields = {"error": self.redactor.redact(f"could not collect changes: {exc}")}
        finally:
            self._update(task_id, EventType.TASK_PHASE, phase=Phase.CLOSING)
            # Closing must finish even if this task is cancelled again meanwhile.
            await asyncio.shield(sandbox.close())
        return fields

    # -- decisions after a task ---------------------------------------------------------------

    def _after_finish(self, record: TaskResult) -> None:
        failed = record.status in (TaskStatus.FAILED, TaskStatus.TIMED_OUT)
        if self.config.fail_fast and failed and not self.stopping:
            self._stop(f"fail-fast: task {record.task_id} {record.status.value}")
        self._check_budget()

    def _check_budget(self, spare: str | None = None) -> None:
        """Stops the run once the budget is spent; ``spare`` is a task whose work is done."""
        budget = self.config.budget_usd
        if budget is None or self.stopping:
            return
        if self.cost_usd >= budget:
            self._stop(
                f"run budget of ${budget:.2f} reached (${self.cost_usd:.2f} spent)", spare=spare
            )

    @property
    def cost_usd(self) -> float:
        """Cost of finished tasks plus the latest reported cost of running ones."""
        finished = sum(
            r.cost_usd or 0.0
            for r in self.results.values()
            if r.status.is_final and r.task_id not in self._live_costs
        )
        return finished + sum(self._live_costs.values()) + sum(self._spent_before.values())

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
        task_dir = self.run_dir / task.task_id
        task_dir.mkdir(exist_ok=True)
        write_task_metadata(task_dir, record)
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
        # The journal before the event: a listener that reads run.json sees the state announced.
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

    def _finalize(self, state: str) -> RunResult:
        self.finished_at = datetime.now(UTC)
        tasks = tuple(self.results[t.task_id] for t in self.tasks)
        summary = RunSummary.from_results(self.run_id, tasks, time.monotonic() - self._t0)
        result = RunResult(run_id=self.run_id, run_dir=self.run_dir, tasks=tasks, summary=summary)
        try:
            write_run_outputs(result)
        finally:
            self.journal.finish(state)
            self._emit(Event(EventType.RUN_FINISHED, self.run_id, data={"state": state}))
        return result


class _Spend:
    """Cost and tokens summed over a task's attempts (a retried task paid for each one)."""

    _FIELDS = (
        "cost_usd",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
    )

    def __init__(self) -> None:
        self._sums: dict[str, float | int | None] = dict.fromkeys(self._FIELDS)

    def add(self, fields: Mapping[str, Any]) -> None:
        for name in self._FIELDS:
            value = fields.get(name)
            if value is not None:
                self._sums[name] = (self._sums[name] or 0) + value

    @property
    def cost_usd(self) -> float:
        return float(self._sums["cost_usd"] or 0.0)

    def totals(self) -> dict[str, float | int | None]:
        return {k: v for k, v in self._sums.items() if v is not None}


def _last_message(progress: Sequence[Progress]) -> str | None:
    return next((p.message for p in reversed(progress) if p.message), None)


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
