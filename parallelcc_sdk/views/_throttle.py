"""Coalesces many update requests into at most one flush per interval, never losing the last one.

A burst of events costs one render at its start and one trailing render at its end; in between, at
most one render per ``interval``. ``heartbeat`` re-renders a quiet view (the clock keeps moving).
Timers use the event loop of the calling thread when there is one (the run's loop, so the flush
happens on the same thread as the events), and a daemon timer thread otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable


class Throttle:
    def __init__(
        self,
        flush: Callable[[], None],
        *,
        interval: float = 0.1,
        heartbeat: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._flush = flush
        self.interval = interval
        self.heartbeat = heartbeat
        self._clock = clock
        # Re-entrant: a flush may itself trigger a request (e.g. a render that reads the handle).
        self._lock = threading.RLock()
        self._last = float("-inf")
        self._due: float | None = None
        self._cancel_timer: Callable[[], None] | None = None
        self._closed = False

    def request(self) -> None:
        """Something changed: flush now if the interval has passed, else make sure one is due."""
        with self._lock:
            if self._closed:
                return
            now = self._clock()
            due = self._last + self.interval
            if now >= due:
                self._run_flush()
            else:
                self._schedule(due)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._unschedule()

    def _run_flush(self) -> None:
        self._unschedule()
        self._last = self._clock()
        try:
            self._flush()
        finally:
            if self.heartbeat is not None and not self._closed:
                self._schedule(self._last + self.heartbeat)

    def _on_timer(self) -> None:
        with self._lock:
            self._cancel_timer = None
            self._due = None
            if not self._closed:
                self._run_flush()

    def _unschedule(self) -> None:
        if self._cancel_timer is not None:
            self._cancel_timer()
        self._cancel_timer = None
        self._due = None

    def _schedule(self, due: float) -> None:
        if self._due is not None and self._due <= due:
            return
        self._unschedule()
        delay = max(due - self._clock(), 0.0)
        self._due = due
        self._cancel_timer = _start_timer(delay, self._on_timer)


def _start_timer(delay: float, callback: Callable[[], None]) -> Callable[[], None]:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        with contextlib.suppress(RuntimeError):  # a loop that is shutting down
            return loop.call_later(delay, callback).cancel
    timer = threading.Timer(delay, callback)
    timer.daemon = True
    timer.start()
    return timer.cancel
