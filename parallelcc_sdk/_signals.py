"""Signals while blocking code waits for a run: SIGTERM stops the run as Ctrl-C does, and a
further signal while the sandboxes close says what is still being closed instead of abandoning it.

Python runs signal handlers only in the main thread, between two bytecodes, so every wait here
wakes up often (:func:`wait_for`): a signal the kernel delivered to another of the run's threads
would otherwise leave a lock wait in the main thread asleep, and Ctrl-C unanswered.

Handlers are installed only in the main thread of a plain Python process (never in a Jupyter
kernel, whose own SIGINT handling interrupts cells), only in place of Python's default ones (a
program's own handlers win), and are always put back afterwards.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType, TracebackType
from typing import Any

from .models import TaskResult

__all__ = [
    "SIGTERM_EXIT_CODE",
    "ClosingSignals",
    "SigtermAsInterrupt",
    "handlers_allowed",
    "say",
    "still_closing",
    "wait_for",
]

SIGTERM_EXIT_CODE = 128 + signal.SIGTERM
"""The status a SIGTERM'd program exits with, as shells report it (143)."""

# How often a wait wakes up to let signal handlers run: how long Ctrl-C may go unanswered.
_WAKE_S = 0.1
_LISTED = 8


def wait_for(future: concurrent.futures.Future[Any], timeout: float | None) -> bool:
    """Waits until ``future`` is done or ``timeout`` seconds pass; True if it is done."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not future.done():
        left = _WAKE_S if deadline is None else min(_WAKE_S, deadline - time.monotonic())
        if left <= 0:
            return False
        concurrent.futures.wait([future], timeout=left)
    return True


def handlers_allowed() -> bool:
    """True where this module may install signal handlers: the main thread, not a kernel."""
    return threading.current_thread() is threading.main_thread() and not _in_kernel()


def _in_kernel() -> bool:
    if "ipykernel" not in sys.modules:  # the cheap answer for every script
        return False
    from .views._mode import in_kernel

    return in_kernel()


class SigtermAsInterrupt:
    """While blocking code waits for a run, SIGTERM raises KeyboardInterrupt, so the run is
    interrupted and its sandboxes closed exactly as after Ctrl-C; the KeyboardInterrupt then
    leaves this context as ``SystemExit(143)``: ``finally`` blocks and ``atexit`` handlers run,
    and the process exits with the status a shell shows for SIGTERM.

    Installed only where :func:`handlers_allowed` and while SIGTERM has its default action.
    """

    def __init__(self) -> None:
        self.received = False
        self._installed = False

    def __enter__(self) -> SigtermAsInterrupt:
        if handlers_allowed() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, self._on_sigterm)
            self._installed = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self._installed = False
        if self.received and isinstance(exc, KeyboardInterrupt):
            raise SystemExit(SIGTERM_EXIT_CODE) from None

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.received = True
        raise KeyboardInterrupt


class ClosingSignals:
    """While an interrupted run closes its sandboxes, SIGINT and SIGTERM only say what is still
    being closed (``describe()``): leaving now would leave sandboxes behind.

    SIGINT is taken over only from Python's default handler, SIGTERM from the default action or
    from :class:`SigtermAsInterrupt`. Elsewhere (another thread, a kernel) nothing is installed,
    and a KeyboardInterrupt there ends the wait as before.
    """

    def __init__(self, describe: Callable[[], str]) -> None:
        self._describe = describe
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> ClosingSignals:
        if not handlers_allowed():
            return self
        for signum in (signal.SIGINT, signal.SIGTERM):
            current = signal.getsignal(signum)
            if _replaceable(signum, current):
                self._previous[signum] = current
                signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        say(f"{signal.Signals(signum).name} received again: {self._describe()}")


def _replaceable(signum: int, handler: Any) -> bool:
    """Python's own SIGINT handler; SIGTERM's default action, or ours."""
    if signum == signal.SIGINT:
        return handler is signal.default_int_handler
    return handler == signal.SIG_DFL or isinstance(
        getattr(handler, "__self__", None), SigtermAsInterrupt
    )


def still_closing(tasks: Sequence[TaskResult], done: bool, abandon_hint: str) -> str:
    """What an interrupted run is still waiting for, and how to abandon it all the same."""
    if done:
        return "still finishing the run; one moment."
    open_tasks = [t for t in tasks if not t.status.is_final]
    if not open_tasks:
        return "still writing the report; one moment."
    shown = ", ".join(f"{t.task_id} ({t.phase or t.status.value})" for t in open_tasks[:_LISTED])
    more = f" and {len(open_tasks) - _LISTED} more" if len(open_tasks) > _LISTED else ""
    return (
        f"still closing {len(open_tasks)} task{'s' if len(open_tasks) != 1 else ''}: "
        f"{shown}{more}; waiting so that no sandbox is left behind (to abandon them, kill -9 "
        f"this process, then run {abandon_hint})."
    )


def say(message: str) -> None:
    """One line on stderr; a closed stderr is no reason to stop closing sandboxes."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"parallelcc: {message}\n")
        sys.stderr.flush()
