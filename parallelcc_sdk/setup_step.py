"""Set-up once per run: a command (``pip install -e .``, ``npm ci``) run before any task.

The engine runs it once, after the backend's ``start_run``, through
:meth:`~parallelcc_sdk.backends.base.Backend.run_setup`, in the state every task then starts
from; its output goes to ``setup/execution.log`` and its record (command, exit code, times) to
``setup/setup.json`` and to ``run.json``'s ``setup`` entry. Then ``git status`` runs the same way:
set-up must leave tracked files as they are and write only ignored files (a ``.venv``,
``node_modules``), because the tasks' patches are measured against the snapshot and must still
apply to the user's repository. A failure of either fails the run before any task starts, with
the end of the log in the error.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from .backends.base import Backend, PreparedRun
from .contract import Invocation, LineHandler, Stream
from .errors import SetupError
from .redaction import Redactor
from .runfolder.codec import format_datetime
from .runfolder.layout import RunLayout
from .runfolder.writer import write_json_atomic

__all__ = ["SETUP_SHELL", "run_setup_step"]

SETUP_SHELL = "/bin/sh"
_TAIL_LINES = 20
_STATUS_SHOWN = 10
# The SDK's own view of the set-up's workspace: no hook, no user configuration decides it.
_STATUS_ARGV = (
    "git",
    "-c",
    "safe.directory=*",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.quotePath=false",
    "status",
    "--porcelain",
    "--untracked-files=normal",
)


async def run_setup_step(
    backend: Backend, run: PreparedRun, command: str, redactor: Redactor
) -> dict[str, Any]:
    """Runs ``command`` once for ``run``; returns its record, or raises :class:`SetupError`."""
    layout = RunLayout(run.spec.run_dir)
    layout.setup_dir.mkdir(exist_ok=True)
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    record: dict[str, Any] = {"command": redactor.redact(command), "started_at": None}
    # Line-buffered, like a task's log: on disk as the command runs.
    with layout.setup_log.open("a", encoding="utf-8", buffering=1) as log:

        def on_line(stream: Stream, line: str) -> None:
            safe = redactor.redact(line)
            tail.append(safe)
            log.write(f"{safe}\n" if stream == "stdout" else f"[stderr] {safe}\n")

        invocation = Invocation(argv=(SETUP_SHELL, "-c", command))
        try:
            exit_code = await _run(backend, run, invocation, on_line)
            problem = None if exit_code == 0 else f"exited with code {exit_code}"
            if problem is None:
                changed: list[str] = []
                status = await _run(
                    backend,
                    run,
                    Invocation(argv=_STATUS_ARGV),
                    lambda stream, line: changed.append(line) if stream == "stdout" else None,
                )
                problem = _status_problem(status, changed)
                if problem is not None:
                    log.write(f"[parallelcc] {problem}\n")
        finally:
            record.update(
                started_at=format_datetime(started),
                finished_at=format_datetime(datetime.now(UTC)),
                duration_s=time.monotonic() - t0,
            )
    record.update(exit_code=exit_code, error=problem)
    write_json_atomic(layout.setup_json, record)
    if problem is not None:
        shown = "\n".join(tail) or "(no output)"
        raise SetupError(
            record,
            f"the run's set-up command {redactor.redact(command)!r} {problem}; no task was "
            f"started. Its log is {layout.setup_log}; its last lines:\n{shown}",
        )
    return record


async def _run(
    backend: Backend, run: PreparedRun, invocation: Invocation, on_line: LineHandler
) -> int:
    try:
        return await backend.run_setup(run, invocation, on_line)
    except Exception as exc:
        raise SetupError(
            {}, f"the run's set-up could not run ({type(exc).__name__}: {exc}); no task was started"
        ) from exc


def _status_problem(status: int, lines: list[str]) -> str | None:
    if status != 0:
        return f"succeeded, but `git status` in its workspace failed (exit code {status})"
    paths = [line[3:] for line in lines if line.strip()]
    if not paths:
        return None
    shown = ", ".join(paths[:_STATUS_SHOWN]) + (" ..." if len(paths) > _STATUS_SHOWN else "")
    return (
        f"changed files that every task's patch would show ({shown}); set-up must leave "
        "tracked files as they are and write only ignored files: add what it makes to "
        ".gitignore"
    )
