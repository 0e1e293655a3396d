"""The run's check command: a user command (``pytest -q``) run in each workspace after the agent.

It runs in the same sandbox, after the agent's command and before the changes are collected, so
it sees exactly the files the task leaves. Its exit code and the end of its output become part of
the task's record (``check_exit_code``, ``check_output``); best-of-N's ``"tests"`` selector keeps
the candidates whose check passed. Its output lines go to the task's log marked ``[check]``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .backends.base import Sandbox
from .contract import Invocation, Stream
from .models import Task
from .redaction import Redactor

__all__ = ["CHECK_OUTPUT_CHARS", "CHECK_SHELL", "CheckResult", "check_invocation", "run_check"]

CHECK_SHELL = "/bin/sh"
CHECK_OUTPUT_CHARS = 2_000
"""How much of the end of the check's output the record keeps."""
_TAIL_LINES = 40


@dataclass(frozen=True)
class CheckResult:
    exit_code: int | None
    """``None`` when the check ran out of time."""
    output: str


def check_invocation(command: str, task: Task) -> Invocation:
    """The check as an invocation: the task's own environment, no input."""
    return Invocation(argv=(CHECK_SHELL, "-c", command), env=dict(task.env))


async def run_check(
    sandbox: Sandbox,
    invocation: Invocation,
    redactor: Redactor,
    *,
    time_limit_s: float | None,
    log: Callable[[Stream, str], None] | None = None,
) -> CheckResult:
    """Runs the check to its end (or its time limit) and keeps the end of its output, redacted.

    ``log`` gets every line as it comes, not yet redacted (the engine's task log redacts).
    """
    tail: deque[str] = deque(maxlen=_TAIL_LINES)

    def on_line(stream: Stream, line: str) -> None:
        tail.append(redactor.redact(line))
        if log is not None:
            log(stream, line)

    timer = asyncio.timeout(time_limit_s)
    exit_code: int | None
    try:
        async with timer:
            exit_code = await sandbox.exec(invocation, on_line)
    except TimeoutError:
        if not timer.expired():
            raise
        exit_code = None
        tail.append(f"[parallelcc] the check timed out after {time_limit_s:g}s")
    return CheckResult(exit_code, "\n".join(tail)[-CHECK_OUTPUT_CHARS:])
