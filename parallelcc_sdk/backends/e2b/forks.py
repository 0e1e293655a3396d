"""Forks of a run's base sandbox: asked for one task at a time, made several per call.

A task asks for one fork when it starts. Requests that are waiting at the same moment (the first
``max_concurrent`` tasks of a run, or tasks held back by the creation rate) go out as one fork
call of up to 20, and no request ever waits for another: a call is made as soon as the creation
rate has a token, with every request waiting by then. E2B snapshots the base once per call.
Each fork in a call succeeds or fails on its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .ratelimit import CreationRate

__all__ = ["MAX_FORKS_PER_CALL", "ForkBatcher", "ForkChildFailed", "ForkRefused"]

logger = logging.getLogger("parallelcc_sdk")

MAX_FORKS_PER_CALL = 20
"""E2B's limit on ``count`` in one fork call."""

T = TypeVar("T")


class ForkRefused(Exception):
    """The whole fork call failed (no fork was made); ``__cause__`` is the SDK's exception."""


class ForkChildFailed(Exception):
    """This request's fork failed while others of the same call may have started."""


@dataclass
class _Request(Generic[T]):
    future: asyncio.Future[T]
    lifetime_s: int


class ForkBatcher(Generic[T]):
    """Turns single fork requests into fork calls.

    ``call(count, lifetime_s)`` makes one fork call and returns one entry per fork (the new
    sandbox, or the exception that fork failed with). ``discard(sandbox)`` ends a fork whose
    requester stopped waiting before it arrived.
    """

    def __init__(
        self,
        call: Callable[[int, int], Awaitable[list[T | Exception]]],
        discard: Callable[[T], Awaitable[None]],
        rate: CreationRate,
    ) -> None:
        self._call = call
        self._discard = discard
        self._rate = rate
        self._pending: list[_Request[T]] = []
        self._dispatcher: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self.calls_made = 0

    async def fork(self, lifetime_s: int) -> T:
        """One fork, alive for ``lifetime_s`` seconds; raises ``ForkRefused``/``ForkChildFailed``.

        Cancelling the wait gives the fork up (it is ended if it still arrives).
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append(_Request(future, lifetime_s))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch(), name="parallelcc-e2b-forks")
        return await future

    async def _dispatch(self) -> None:
        # One turn of the loop first: requests made at the same moment join the same call.
        await asyncio.sleep(0)
        while self._pending:
            await self._rate.acquire()
            self._pending = [r for r in self._pending if not r.future.done()]
            if not self._pending:
                return
            extra = min(MAX_FORKS_PER_CALL, len(self._pending)) - 1
            count = 1 + self._rate.take_available(extra)
            batch, self._pending = self._pending[:count], self._pending[count:]
            task = asyncio.create_task(self._make(batch))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)

    async def _make(self, batch: list[_Request[T]]) -> None:
        self.calls_made += 1
        try:
            results = await self._call(len(batch), max(r.lifetime_s for r in batch))
        except asyncio.CancelledError:
            for request in batch:
                request.future.cancel()
            raise
        except Exception as exc:
            for request in batch:
                if not request.future.done():
                    refused = ForkRefused(str(exc))
                    refused.__cause__ = exc
                    request.future.set_exception(refused)
            return
        for request, result in zip(batch, results, strict=False):
            if isinstance(result, Exception):
                if not request.future.done():
                    failed = ForkChildFailed(str(result))
                    failed.__cause__ = result
                    request.future.set_exception(failed)
            elif request.future.done():
                # Its task was cancelled while the call was on its way: nobody will close it.
                try:
                    await self._discard(result)
                except Exception as exc:  # its lease ends it; cleanup() finds it by label
                    logger.warning("could not end an unwanted fork: %s", exc)
            else:
                request.future.set_result(result)
        for request in batch[len(results) :]:
            if not request.future.done():
                request.future.set_exception(ForkChildFailed("E2B answered with fewer forks"))

    async def close(self, wait_s: float = 30.0) -> None:
        """Stops dispatching, and waits (up to ``wait_s``) for calls on their way: forks that
        arrive for nobody are ended, not left running."""
        if self._dispatcher is not None and not self._dispatcher.done():
            self._dispatcher.cancel()
            await asyncio.wait([self._dispatcher])
        for request in self._pending:
            request.future.cancel()
        self._pending.clear()
        calls = [t for t in self._calls if not t.done()]
        if calls:
            _, late = await asyncio.wait(calls, timeout=wait_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
