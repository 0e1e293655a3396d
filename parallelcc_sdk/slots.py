"""The run's ``max_concurrent`` slots for running commands, handed out in the tasks' order.

Tasks take a place in line when they leave the queue, then prepare their sandboxes, which may end
in any order; a slot still goes to the earliest task in line, so commands start in the order the
tasks were given. A task that leaves without a slot (its preparation failed, it was cancelled)
gives up its place. Everything runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio

__all__ = ["Slots"]


class Slots:
    """``count`` slots; :meth:`acquire` waits for a free one and for its turn."""

    def __init__(self, count: int) -> None:
        self._free = count
        self._next_place = 0
        self._turn = 0
        self._gone: set[int] = set()
        self._waiters: list[asyncio.Future[None]] = []

    def take_place(self) -> int:
        """A place in line, after every place taken before."""
        place = self._next_place
        self._next_place += 1
        return place

    async def acquire(self, place: int | None) -> None:
        """Waits for a free slot and, for a ``place``, for its turn; ``None`` waits for no turn
        (a task that already had a slot, trying again)."""
        while not (self._free > 0 and (place is None or place == self._turn)):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done():
                    self._waiters.remove(waiter)
        self._free -= 1
        if place is not None:
            self.leave_line(place)

    def release(self) -> None:
        self._free += 1
        self._wake()

    def leave_line(self, place: int) -> None:
        """``place`` waits no more (it has its slot, or never will); safe to call twice."""
        if place < self._turn or place in self._gone:
            return
        self._gone.add(place)
        while self._turn in self._gone:
            self._gone.remove(self._turn)
            self._turn += 1
        self._wake()

    def _wake(self) -> None:
        # Every waiter checks again: at most the tasks prepared ahead wait here.
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
