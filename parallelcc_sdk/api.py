"""The entry points: submit, run and run_async. Every input is checked before anything starts."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .agents.base import Agent
from .backends.base import Backend
from .bestof import Selector, checked_selector, expand_candidates
from .collection import DEFAULT_EXCLUDED_CHANGES
from .continuation import Continuation
from .engine import Engine, RunConfig
from .errors import BackendUnavailableError, OutputWriteError, ValidationError
from .events import Event
from .handle import ExecutionHandle, Listener
from .models import Task
from .results import RunResult
from .runfolder.layout import SETUP_DIR
from .runfolder.writer import create_run_dir
from .snapshot import resolve_repo
from .tasks import load_tasks
from .validation import (
    gitignore_patterns,
    non_negative_int,
    optional_positive_float,
    positive_int,
)

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
    exclude_changes: Sequence[str] = DEFAULT_EXCLUDED_CHANGES,
    attempts: int = 1,
    select: Selector | None = None,
    select_command: str | None = None,
    setup: str | None = None,
) -> ExecutionHandle:
    """Starts a run and returns its live handle at once.

    The run goes on the SDK's own background event-loop thread, so it never blocks (nor needs)
    the caller's loop. Bad input raises a :class:`~parallelcc_sdk.errors.ValidationError`
    before any sandbox starts.

    ``exclude_changes`` are gitignore patterns of what a task may create but is never source
    (by default a virtualenv, ``node_modules/``, caches, ``*.pyc``): it is left out of the
    task's changes unless the repository tracks it, and named in ``TaskResult.excluded_paths``.
    ``attempts=N`` runs every task as N independent candidates and ``select`` picks one of each
    (best-of-N, see :mod:`~parallelcc_sdk.bestof`); ``select_command`` is a shell command run
    in every task's workspace after its agent (``"pytest -q"``), whose exit code the ``"tests"``
    selector reads. ``select`` defaults to ``"tests"`` with a ``select_command``, else
    ``"smallest_diff"``.

    ``setup`` is a shell command (``"pip install -e ."``) run once before any task, in the state
    every task starts from; it must write only ignored files (see ``setup_step``).
    """
    check_command = _optional_command("select_command", select_command)
    if select is None:
        select = "tests" if check_command is not None else "smallest_diff"
    selector = checked_selector(select, check_command)
    task_list = expand_candidates(load_tasks(tasks), positive_int("attempts", attempts))
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
        exclude_changes=gitignore_patterns("exclude_changes", exclude_changes),
        check_command=check_command,
        select=selector,
        setup=_optional_command("setup", setup),
    )
    for task in task_list:
        optional_positive_float(f"timeout of task {task.task_id}", task.timeout)
    config.backend.validate()
    _check_setup(config, task_list)
    config.agent.validate(on_host=config.backend.runs_on_host)
    check_isolation(config.backend, config.agent)
    out = Path(output_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ValidationError(
            f"output_dir {str(output_dir)!r} is a file; pass a folder (it is created if missing)."
        )
    try:
        run_id, run_dir = create_run_dir(out.resolve())
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            # A full disk is not bad input: the same folder works once space is freed.
            reason = (exc.strerror or str(exc)).lower()
            raise OutputWriteError(
                f"output_dir {str(output_dir)!r} cannot hold the run's folder ({reason}); free "
                "some space there or pass a folder you can write to."
            ) from exc
        raise ValidationError(
            f"output_dir {str(output_dir)!r} cannot be written ({exc.strerror or exc}); pass a "
            "folder you can write to."
        ) from exc
    return start_engine(
        task_list, config, run_id, run_dir, progress=progress, listeners=listeners
    )


def start_engine(
    tasks: list[Task],
    config: RunConfig,
    run_id: str,
    run_dir: Path,
    *,
    progress: str | bool,
    listeners: Iterable[Listener],
    continuation: Continuation | None = None,
) -> ExecutionHandle:
    """Starts an engine for checked input on the SDK's loop; its handle, with views attached."""
    handle: ExecutionHandle

    def emit(event: Event) -> None:
        handle._dispatch(event)

    engine = Engine(
        tasks, config, run_id=run_id, run_dir=run_dir, emit=emit, continuation=continuation
    )
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
        from .backends.e2b import E2BBackend

        return E2BBackend()
    raise ValidationError(
        f"backend {backend!r} is unknown; use 'local' or 'e2b', or pass a Backend such as "
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


def check_isolation(backend: Backend, agent: Agent) -> None:
    """An agent that edits unattended runs unsandboxed only when the user chose that."""
    if (
        agent.edits_unattended
        and backend.isolation_in_force == "none"
        and not backend.isolation_declined
    ):
        raise BackendUnavailableError(
            f"the agent {agent.name!r} edits files and runs commands unattended, and no sandbox "
            "works here (bubblewrap is missing or broken), so its tasks would have full access "
            "to this machine; install a working bubblewrap (`apt-get install bubblewrap`), or "
            "pass backend=pcc.LocalBackend(isolation='none') to run them unsandboxed on purpose."
        )


def _check_setup(config: RunConfig, tasks: list[Task]) -> None:
    if config.setup is None:
        return
    if not config.backend.supports_setup:
        raise ValidationError(
            f"the {config.backend.name} backend cannot run a set-up command; drop setup= or "
            "use backend='local'."
        )
    config.backend.check_setup()
    if any(task.task_id == SETUP_DIR for task in tasks):
        raise ValidationError(
            f"a task has the id {SETUP_DIR!r}, the folder of the run's set-up; rename the task."
        )


def _optional_command(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            f"{name}={value!r:.60} must be a shell command such as 'pytest -q', or None."
        )
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{name}={value!r} must be True or False.")
    return value


def _non_negative_float(name: str, value: Any) -> float:
    if value == 0 and not isinstance(value, bool):
        return 0.0
    try:
        result = optional_positive_float(name, value)
    except ValidationError:
        result = None
    if result is None:
        raise ValidationError(
            f"{name} must be a number of seconds of 0 or more, got {value!r:.60}; "
            f"pass for example {name}=2, or {name}=0 to retry at once."
        )
    return result
