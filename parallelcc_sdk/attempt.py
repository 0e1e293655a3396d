"""One attempt of a task: open a sandbox, prepare it, run the agent's command, collect, close.

The runner turns everything that can happen to an attempt (success, the agent's failure, a
backend's transient or final failure, the time limit, cancellation) into one
:class:`AttemptOutcome`. What the engine does with lines, phases and the sandbox's id it learns
through an :class:`AttemptListener`; nothing here schedules, retries or writes records.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from .agents.base import Agent, Progress
from .backends.base import Backend, Sandbox, SandboxSpec
from .checking import CheckResult, check_invocation, run_check
from .contract import AgentMetrics, ChangeStats, Stream
from .errors import ChangeCollectionError, TransientBackendError
from .events import Phase
from .models import Task, TaskStatus
from .redaction import Redactor, secret_values
from .secret_scan import files_holding_secrets

__all__ = ["AttemptListener", "AttemptOutcome", "AttemptRunner"]

logger = logging.getLogger("parallelcc_sdk")


@dataclass(frozen=True)
class AttemptOutcome:
    """How one attempt ended."""

    status: TaskStatus
    error: str | None = None
    exit_code: int | None = None
    metrics: AgentMetrics = field(default_factory=AgentMetrics)
    changes: ChangeStats | None = None
    """``None`` when the changes were not collected (no sandbox ran, or collecting failed)."""
    secrets_in_changes: tuple[str, ...] = ()
    """Collected output files that hold a value the SDK knows is secret."""
    transient: bool = False
    """True when trying again in a fresh sandbox may succeed."""
    sandbox_cost_usd: float | None = None
    """What the attempt's sandbox cost (``None``: nothing billed, or no sandbox)."""
    check: CheckResult | None = None
    """The run's check command's result, when it ran (after a completed agent)."""

    def record_fields(self) -> dict[str, Any]:
        """The fields of the task's record this attempt decides."""
        fields: dict[str, Any] = {
            "status": self.status,
            "error": self.error,
            "exit_code": self.exit_code,
            **self.metrics.record_fields(),
        }
        if self.check is not None:
            fields["check_exit_code"] = self.check.exit_code
            fields["check_output"] = self.check.output
        if self.changes is not None:
            fields.update(self.changes.record_fields())
            fields["secrets_in_changes"] = self.secrets_in_changes
        return fields


class AttemptListener(Protocol):
    """What the engine hears from an attempt while it runs."""

    def phase(self, phase: Phase) -> None:
        """The attempt entered ``phase``."""

    def sandbox_opened(self, sandbox: Sandbox) -> None:
        """A sandbox exists (record its id and location before anything else can fail)."""

    def slot(self) -> AbstractAsyncContextManager[None]:
        """Held while the command runs: waits for one of the run's ``max_concurrent`` slots.

        A sandbox is opened and prepared before, and its changes collected and it closed after,
        outside the slot: set-up and tear-down never delay another task's command.
        """

    def output(
        self, stream: Stream, line: str, progress: Sequence[Progress], redactor: Redactor
    ) -> None:
        """A line of output (not yet redacted) and what the agent's parser made of it."""

    def command_ended(self, outcome: AttemptOutcome) -> None:
        """The command exited (or timed out), its slot not yet released; changes not collected."""

    def cancel_reason(self) -> str:
        """Why this attempt's task was cancelled, once it has been."""


class AttemptRunner:
    """Runs attempts of tasks with one backend and one agent."""

    def __init__(
        self, backend: Backend, agent: Agent, redactor: Redactor, check_command: str | None = None
    ) -> None:
        self.backend = backend
        self.agent = agent
        self.redactor = redactor
        self.check_command = check_command
        """Run in the workspace after an agent that completed, before collecting (see checking)."""

    async def run(
        self,
        task: Task,
        spec: SandboxSpec,
        listener: AttemptListener,
        sandbox: Sandbox | None = None,
    ) -> AttemptOutcome:
        """One try in a fresh sandbox (or in ``sandbox``, one re-attached to with its command
        running: see ``Backend.reattach``), closed before this returns, whatever happened."""
        listener.phase(Phase.PREPARING)
        if sandbox is None:
            try:
                sandbox = await self.backend.open(spec)
            except asyncio.CancelledError:
                _uncancel()
                return self._cancelled(listener)
            except Exception as exc:
                return self._failed(exc, "could not open a sandbox")
        outcome: AttemptOutcome | None = None
        try:
            async with sandbox:
                listener.sandbox_opened(sandbox)
                outcome, prepared = await self._prepare_and_execute(task, spec, sandbox, listener)
                if prepared:
                    outcome = await self._collect(task, sandbox, spec, outcome, listener)
                listener.phase(Phase.CLOSING)
        except asyncio.CancelledError:
            # Cancelled while closing: the sandbox is closed all the same (see Sandbox.__aexit__).
            _uncancel()
            if outcome is None:
                outcome = self._cancelled(listener)
        except Exception as exc:
            logger.warning("sandbox %s of %s failed: %s", sandbox.sandbox_id, task.task_id, exc)
            if outcome is None:
                outcome = self._failed(exc, "the sandbox failed")
        # Closed by now: what it cost is final.
        return dataclasses.replace(outcome, sandbox_cost_usd=_sandbox_cost(sandbox))

    async def _prepare_and_execute(
        self, task: Task, spec: SandboxSpec, sandbox: Sandbox, listener: AttemptListener
    ) -> tuple[AttemptOutcome, bool]:
        """The outcome, and whether the workspace was prepared (so changes can be collected)."""
        prepared = False
        try:
            await sandbox.prepare()
            prepared = True
            async with listener.slot():
                listener.phase(Phase.RUNNING)
                outcome = await self._execute(task, spec, sandbox, listener)
                # The check is part of the task's command: it keeps the slot until it ends.
                if self.check_command is not None and outcome.status is TaskStatus.COMPLETED:
                    outcome = await self._check(task, spec, sandbox, listener, outcome)
                # Before the slot goes to another task: a failure may stop the run (fail-fast).
                listener.command_ended(outcome)
                return outcome, prepared
        except asyncio.CancelledError:
            # This task's own cancellation, consumed here: the record says why, and collecting
            # and closing must still be able to await.
            _uncancel()
            return self._cancelled(listener), prepared
        except Exception as exc:  # a backend failure is this task's failure, not the run's
            return self._failed(exc, "the sandbox failed"), prepared

    async def _execute(
        self, task: Task, spec: SandboxSpec, sandbox: Sandbox, listener: AttemptListener
    ) -> AttemptOutcome:
        invocation = self.agent.invocation(task, sandbox.context)
        # Secret-named variables of this invocation (a task's env=, an agent's env=) are masked
        # like the agent's own secrets: a command that prints one must not leak it to disk.
        redactor = self.redactor.with_secrets((*invocation.secrets, *secret_values(invocation.env)))
        parser = self.agent.parser(task)

        def on_line(stream: Stream, line: str) -> None:
            try:
                progress = parser.feed(stream, line)
            except Exception:  # a parser bug must not kill the task's output
                logger.warning("agent parser failed on a line of %s", task.task_id, exc_info=True)
                progress = ()
            listener.output(stream, line, progress, redactor)

        timer = asyncio.timeout(spec.time_limit_s)
        try:
            async with timer:
                exit_code = await sandbox.exec(invocation, on_line)
        except TimeoutError:
            if not timer.expired():
                raise
            return AttemptOutcome(
                TaskStatus.TIMED_OUT, error=f"timed out after {spec.time_limit_s:g}s"
            )
        verdict = parser.finish(exit_code)
        metrics = verdict.metrics
        if metrics.final_text:
            metrics = dataclasses.replace(metrics, final_text=redactor.redact(metrics.final_text))
        return AttemptOutcome(
            status=verdict.status,
            error=redactor.redact(verdict.error) if verdict.error else None,
            exit_code=exit_code,
            metrics=metrics,
            transient=verdict.transient,
        )

    async def _check(
        self,
        task: Task,
        spec: SandboxSpec,
        sandbox: Sandbox,
        listener: AttemptListener,
        outcome: AttemptOutcome,
    ) -> AttemptOutcome:
        assert self.check_command is not None
        listener.phase(Phase.CHECKING)
        invocation = check_invocation(self.check_command, task)
        redactor = self.redactor.with_secrets(secret_values(invocation.env))

        def log(stream: Stream, line: str) -> None:
            listener.output(stream, f"[check] {line}", (), redactor)

        check = await run_check(
            sandbox, invocation, redactor, time_limit_s=spec.time_limit_s, log=log
        )
        return dataclasses.replace(outcome, check=check)

    async def _collect(
        self,
        task: Task,
        sandbox: Sandbox,
        spec: SandboxSpec,
        outcome: AttemptOutcome,
        listener: AttemptListener,
    ) -> AttemptOutcome:
        """The outcome with the changes, collected also after a failure, a timeout or a cancel."""
        listener.phase(Phase.COLLECTING)
        try:
            changes = await sandbox.collect(spec.task_dir)
            # Flagged, never altered: a patch with a value masked would no longer apply.
            secrets = (*self.redactor.values, *secret_values(task.env))
            flagged = await asyncio.to_thread(files_holding_secrets, spec.task_dir, secrets)
        except asyncio.CancelledError:
            _uncancel()
            problem = f"cancelled while collecting its changes ({listener.cancel_reason()})"
            return _without_changes(outcome, problem, TaskStatus.CANCELLED)
        except Exception as exc:
            logger.warning("could not collect the changes of %s: %s", spec.task_id, exc)
            text = str(exc) if isinstance(exc, ChangeCollectionError) else _describe(exc)
            if not text.startswith("change collection failed"):
                text = f"change collection failed: {text}"
            degraded = _without_changes(outcome, self.redactor.redact(text), TaskStatus.FAILED)
            # Work that was done but could not be fetched is worth another try; a failure is not.
            completed = outcome.status is TaskStatus.COMPLETED
            retry = completed and isinstance(exc, TransientBackendError)
            return dataclasses.replace(degraded, transient=degraded.transient or retry)
        return dataclasses.replace(outcome, changes=changes, secrets_in_changes=flagged)

    def _cancelled(self, listener: AttemptListener) -> AttemptOutcome:
        return AttemptOutcome(TaskStatus.CANCELLED, error=listener.cancel_reason())

    def _failed(self, exc: Exception, context: str) -> AttemptOutcome:
        logger.debug("%s: %s", context, exc, exc_info=True)
        return AttemptOutcome(
            TaskStatus.FAILED,
            error=self.redactor.redact(_describe(exc)),
            transient=isinstance(exc, TransientBackendError),
        )


def _sandbox_cost(sandbox: Sandbox) -> float | None:
    try:
        return sandbox.cost_usd()
    except Exception:  # a cost is a record's detail: never a reason to lose the record
        logger.warning("sandbox %s could not tell its cost", sandbox.sandbox_id, exc_info=True)
        return None


def _without_changes(outcome: AttemptOutcome, problem: str, status: TaskStatus) -> AttemptOutcome:
    """A completed attempt whose changes are lost is not completed; others keep their status."""
    if outcome.status is TaskStatus.COMPLETED:
        return dataclasses.replace(outcome, status=status, error=problem)
    error = f"{outcome.error}; {problem}" if outcome.error else problem
    return dataclasses.replace(outcome, error=error)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
