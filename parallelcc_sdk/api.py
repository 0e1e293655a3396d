"""The entry points: submit, run and run_async. Every input is checked before anything starts."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .agents.base import Agent
from .backends.base import Backend
from .engine import Engine, RunConfig
from .errors import OutputWriteError, ValidationError
from .events import Event
from .handle import ExecutionHandle, Listener
from .results import RunResult
from .runfolder.writer import create_run_dir
from .snapshot import resolve_repo
from .tasks import load_tasks
from .validation import non_negative_int, optional_positive_float, positive_int

DEFAULT_OUTPUT_DIR = "./parallel-results"


def submit(
    tasks: Any,
    *,
    repo: str | os.PathLike[str] = ".",
    backend: str | Backend = "local",
    agent: str | Agent = "claude",
    max_concurrent: int = 3,
    fail_fast: bool = False,
    output_dir: str | os.PathLike[str] = DEFAULT_OUTPUT_DIR,
    task_timeout: float | None = None,
    progress: str | bool = "auto",
    retries: int = 0,
    retry_backoff_s: float = 2.0,
    budget_usd: float | None = None,
    listeners: Iterable[Listener] = (),
) -> ExecutionHandle:
    """Starts a run and returns its live handle at once.

    The run goes on the SDK's own background event-loop thread, so it never blocks (nor needs)
    the caller's loop. Bad input raises a :class:`~parallelcc_sdk.errors.ValidationError`
    before any sandbox starts.
    """
    task_list = load_tasks(tasks)
    config = RunConfig(
        repo=resolve_repo(os.fspath(repo)),
        backend=resolve_backend(backend),
        agent=resolve_agent(agent),
        max_concurrent=positive_int("max_concurrent", max_concurrent),
        fail_fast=_flag("fail_fast", fail_fast),
        task_timeout=optional_positive_float("task_timeout", task_timeout),
        retries=non_negative_int("retries", retries),
        retry_backoff_s=_non_negative_float("retry_backoff_s", retry_backoff_s),
        budget_usd=optional_positive_float("budget_usd", budget_usd),
    )
    for task in task_list:
        optional_positive_float(f"timeout of task {task.task_id}", task.timeout)
    config.backend.validate()
    config.agent.validate(on_host=config.backend.runs_on_host)
    out = Path(output_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ValidationError(
            f"output_dir {str(output_dir)!r} is a file; pass a folder (it is created if missing)."
        )

    try:
        run_id, run_dir = create_run_dir(out.resolve())
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise OutputWriteError(
            f"output_dir {str(output_dir)!r} cannot hold the run's folder ({reason}); free some "
            "space there or pass a folder you can write to."
        ) from exc
    handle: ExecutionHandle

    def emit(event: Event) -> None:
        handle._dispatch(event)

    engine = Engine(task_list, config, run_id=run_id, run_dir=run_dir, emit=emit)
    handle = ExecutionHandle(engine)
    for listener in listeners:
        handle.add_listener(listener)
    if progress not in (False, "off"):
        from .views import attach_progress

        attach_progress(handle, progress)
    handle._start()
    return handle


def run(tasks: Any, **options: Any) -> RunResult:
    """Runs ``tasks`` and blocks until they finish: ``submit(...).result()``.

    Works in scripts, pytest and notebook cells. Ctrl-C or a kernel interrupt cancels the run and
    closes every sandbox before the KeyboardInterrupt propagates.
    """
    return submit(tasks, **options).result()


async def run_async(tasks: Any, **options: Any) -> RunResult:
    """Runs ``tasks`` and waits without blocking the event loop; cancelling this call cancels
    the run (and waits for its sandboxes to close)."""
    handle = submit(tasks, **options)
    try:
        return await handle.wait()
    except BaseException:
        if not handle.done():
            handle.cancel()
            await _wait_quietly(handle)
        raise


async def _wait_quietly(handle: ExecutionHandle) -> None:
    # The run's own outcome no longer matters: the caller is unwinding.
    with contextlib.suppress(BaseException):
        await handle.wait()


def resolve_backend(backend: str | Backend) -> Backend:
    if isinstance(backend, Backend):
        return backend
    if backend == "local":
        from .backends.local import LocalBackend

        return LocalBackend()
    if backend == "e2b":
        raise ValidationError(
            "backend='e2b' is not available in this version; use backend='local'."
        )
    raise ValidationError(
        f"backend {backend!r} is unknown; use 'local', or pass a Backend such as "
        "pcc.LocalBackend(isolation='none')."
    )


def resolve_agent(agent: str | Agent) -> Agent:
    if isinstance(agent, Agent):
        return agent
    if agent == "claude":
        from .agents.claude import ClaudeCode

        return ClaudeCode()
    if agent == "command":
        raise ValidationError(
            "agent='command' needs the command to run; pass agent=pcc.Command('your command')."
        )
    raise ValidationError(
        f"agent {agent!r} is unknown; use 'claude', or pass an Agent such as pcc.Command('...')."
    )


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{name}={value!r} must be True or False.")
    return value


def _non_negative_float(name: str, value: Any) -> float:
    if value == 0:
        return 0.0
    result = optional_positive_float(name, value)
    if result is None:
        raise ValidationError(f"{name} must be a number of seconds ≥ 0, not None.")
    return result
