"""Keeping a sandbox alive while it is in use, and no longer.

E2B ends a sandbox when its lifetime runs out (300 s unless told otherwise). A sandbox is created
with a lifetime that covers its task, and while the task goes on the lifetime is renewed every
half of it. If the process running the run dies, nothing renews it, so the sandbox ends by itself
within one lifetime: a crash can never leave a sandbox running (and billing) for long.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .sdk import is_gone

__all__ = ["Lease"]

logger = logging.getLogger("parallelcc_sdk")


class Lease:
    """Calls ``renew(seconds)`` every ``seconds / 2`` until stopped or the sandbox is gone."""

    def __init__(self, renew: Callable[[int], Awaitable[object]], seconds: int) -> None:
        self._renew = renew
        self.seconds = seconds
        self.renewals = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Lease:
        self._task = asyncio.create_task(self._keep(), name="parallelcc-e2b-lease")
        return self

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.seconds / 2)
            try:
                await self._renew(self.seconds)
            except Exception as exc:
                if is_gone(exc):
                    return
                # A blip: the next renewal, half a lifetime before the end, tries again.
                logger.warning("could not renew an E2B sandbox's lifetime: %s", exc)
                continue
            self.renewals += 1

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            # wait(), not await: the task's own cancellation is expected, a cancellation of
            # the caller must still propagate.
            await asyncio.wait([task])
