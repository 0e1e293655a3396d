"""Keeping a run's sandbox creations under E2B's rate limit: a token bucket.

E2B limits how many sandboxes a team may start per second (1/s on the Hobby plan, 5/s on Pro);
above it, creates answer 429. Every create and every fork of a run takes tokens from one bucket,
so the run stays under the limit however many tasks start at once.
"""

from __future__ import annotations

import asyncio
import math
import time

__all__ = ["CreationRate"]


class CreationRate:
    """At most ``per_second`` creations per second on average, in bursts of at most ``burst``.

    ``burst`` defaults to one second's worth (at least one). Waiters are served in order.
    """

    def __init__(self, per_second: float, burst: float | None = None) -> None:
        if not (math.isfinite(per_second) and per_second > 0):
            raise ValueError(f"per_second must be a positive number, not {per_second!r}")
        self.per_second = per_second
        self.capacity = max(1.0, burst if burst is not None else per_second)
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.per_second)
        self._updated = now

    async def acquire(self) -> None:
        """Waits for one token and takes it."""
        async with self._lock:
            self._refill()
            while self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self.per_second)
                self._refill()
            self._tokens -= 1

    def take_available(self, most: int) -> int:
        """Takes up to ``most`` tokens that are there now, without waiting; returns how many."""
        if most <= 0 or self._lock.locked():
            return 0  # someone is waiting: the tokens are theirs
        self._refill()
        taken = min(most, int(self._tokens))
        self._tokens -= taken
        return taken
