"""Ctrl-C (SIGINT) and SIGTERM during a run: stop every task, close every sandbox, then exit.

The first signal interrupts the run: no task starts any more, running ones are cancelled, their
sandboxes closed, and the report written with them ``cancelled``. The process keeps waiting for
that, so it never exits leaving a sandbox behind. A further signal does not cut the wait short:
it says which tasks are still being closed.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, Protocol

from .._signals import say, still_closing
from ..models import TaskResult
from . import exit_codes

_HANDLED = (signal.SIGINT, signal.SIGTERM)


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
            say(
                f"{signal.Signals(signum).name} received: stopping every task and closing its "
                "sandbox; the report lists them as cancelled."
            )
            if self._handle is not None:
                self._handle._interrupt(self._reason(signum))
            return
        say(self._still_waiting())

    def _reason(self, signum: int) -> str:
        return f"run interrupted by {signal.Signals(signum).name}"

    def _still_waiting(self) -> str:
        run_dir = self._run_dir_hint()
        hint = f"`parallelcc cleanup {run_dir}`" if run_dir else "`parallelcc cleanup`"
        if self._handle is None:
            return still_closing([], True, hint)
        return still_closing(self._handle.tasks, self._handle.done(), hint)
