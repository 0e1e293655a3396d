"""Ctrl-C (SIGINT) and SIGTERM during a run: stop every task, close every sandbox, then exit.

The first signal interrupts the run: no task starts any more, running ones are cancelled, their
sandboxes closed, and the report written with them ``cancelled``. The process keeps waiting for
that, so it never exits leaving a sandbox behind. A further signal does not cut the wait short:
it says which tasks are still being closed.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, Protocol

from ..models import TaskResult
from . import exit_codes

_HANDLED = (signal.SIGINT, signal.SIGTERM)
_LISTED = 8


class Interruptible(Protocol):
    """The part of an ExecutionHandle this module uses."""

    @property
    def tasks(self) -> list[TaskResult]: ...
    def done(self) -> bool: ...
    def _interrupt(self, reason: str = ...) -> None: ...


class RunSignals:
    """A context in which SIGINT and SIGTERM interrupt the attached run instead of the process.

    Signals that arrive before a run is attached are remembered and applied when it is.
    """

    def __init__(self, run_dir_hint: Callable[[], str | None] = lambda: None) -> None:
        self.signum: int | None = None
        self._handle: Interruptible | None = None
        self._previous: dict[int, Any] = {}
        self._run_dir_hint = run_dir_hint

    def __enter__(self) -> RunSignals:
        for signum in _HANDLED:
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    def attach(self, handle: Interruptible) -> None:
        self._handle = handle
        if self.signum is not None:
            handle._interrupt(self._reason(self.signum))

    @property
    def exit_code(self) -> int | None:
        """130 or 143 after SIGINT or SIGTERM (the first one received); None without a signal."""
        return None if self.signum is None else exit_codes.for_signal(self.signum)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Runs on the main thread between two bytecodes of the wait loop; it only starts the stop
        # (thread-safe) and prints, and never raises, so the wait goes on until all is closed.
        if self.signum is None:
            self.signum = signum
            _say(
                f"{signal.Signals(signum).name} received: stopping every task and closing its "
                "sandbox; the report lists them as cancelled."
            )
            if self._handle is not None:
                self._handle._interrupt(self._reason(signum))
            return
        _say(self._still_waiting())

    def _reason(self, signum: int) -> str:
        return f"run interrupted by {signal.Signals(signum).name}"

    def _still_waiting(self) -> str:
        if self._handle is None or self._handle.done():
            return "still finishing the run; one moment."
        open_tasks = [t for t in self._handle.tasks if not t.status.is_final]
        if not open_tasks:
            return "still writing the report; one moment."
        shown = ", ".join(
            f"{t.task_id} ({t.phase or t.status.value})" for t in open_tasks[:_LISTED]
        )
        more = f" and {len(open_tasks) - _LISTED} more" if len(open_tasks) > _LISTED else ""
        run_dir = self._run_dir_hint()
        abandon = f" {run_dir}" if run_dir else ""
        return (
            f"still closing {len(open_tasks)} task{'s' if len(open_tasks) != 1 else ''}: "
            f"{shown}{more}; waiting so that no sandbox is left behind (to abandon them, kill -9 "
            f"this process, then run `parallelcc cleanup{abandon}`)."
        )


def _say(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr closed: the stop goes on regardless
        print(f"parallelcc: {message}", file=sys.stderr, flush=True)
