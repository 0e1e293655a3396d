"""Blocking on a run from inside the very event loop that drives it (the one case that needs
nest-asyncio2).

In a notebook, ``handle = pcc.submit(...)`` runs on the kernel's loop; a later ``handle.result()``
is then called *on that loop's thread*, so plain blocking would hang it forever. nest-asyncio2 lets
the loop run re-entrantly for the duration of the call. It is applied here, lazily, to that one
loop only when such a call happens: never at import, never to uvloop (which cannot be patched),
and it can be refused with ``PARALLELCC_NEST_ASYNCIO=0``. Where it cannot be used, the call fails
at once with :class:`SyncCallInRunningLoopError` instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .errors import SyncCallInRunningLoopError

T = TypeVar("T")
ENV_VAR = "PARALLELCC_NEST_ASYNCIO"
logger = logging.getLogger("parallelcc_sdk")

_patched: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
_lock = threading.Lock()


def refusal(loop: asyncio.AbstractEventLoop) -> str | None:
    """Why nested running cannot be used on ``loop``, or None when it can."""
    if os.environ.get(ENV_VAR, "").strip().lower() in ("0", "false", "no", "off"):
        return f"nested event loops are turned off ({ENV_VAR}=0)"
    if not isinstance(loop, asyncio.BaseEventLoop):
        return f"this event loop ({type(loop).__module__}.{type(loop).__name__}) cannot be nested"
    try:
        import nest_asyncio2  # noqa: F401
    except ImportError:
        return "nest-asyncio2 is not installed (pip install 'parallelcc-sdk[notebook]')"
    return None


def _patch(loop: asyncio.AbstractEventLoop) -> None:
    with _lock:
        if loop in _patched:
            return
        import nest_asyncio2

        # The archived nest_asyncio leaves the same marker; nest_asyncio2 warns about it itself.
        nest_asyncio2.apply(loop)
        _patched.add(loop)
        logger.info("parallelcc: enabled nested event loops (nest-asyncio2) on %r", loop)


def run_nested(
    loop: asyncio.AbstractEventLoop,
    make: Callable[[], Awaitable[T]],
    *,
    what: str,
    on_interrupt: Callable[[], Any] | None = None,
    interrupt_grace_s: float = 30.0,
) -> T:
    """Runs ``make()`` to completion on ``loop``, which is running in this very thread.

    ``what`` names the blocked call for the error message. A KeyboardInterrupt calls
    ``on_interrupt`` (e.g. cancel the run), lets the loop wind down for up to
    ``interrupt_grace_s`` (so sandboxes close), then propagates.
    """
    reason = refusal(loop)
    if reason is not None:
        raise SyncCallInRunningLoopError(
            f"{what} would block the event loop that runs it, and {reason}; "
            "use `await` instead (e.g. `result = await handle`), or start the run with "
            "pcc.run(...) for a blocking call."
        )
    _patch(loop)
    try:
        return loop.run_until_complete(_as_coroutine(make()))
    except KeyboardInterrupt:
        if on_interrupt is not None:
            on_interrupt()
            with contextlib.suppress(TimeoutError, KeyboardInterrupt):
                loop.run_until_complete(
                    asyncio.wait_for(_settle(make()), timeout=interrupt_grace_s)
                )
        raise


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _settle(awaitable: Awaitable[Any]) -> None:
    # The run's own outcome no longer matters: the caller was interrupted.
    with contextlib.suppress(Exception):
        await awaitable
