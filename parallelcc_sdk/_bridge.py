"""Where runs live: the *portal*, one daemon thread running one event loop, started lazily.

Every run goes on the portal, whoever submits it, the way jupyter_core's ``run_sync`` and
nbclient do it. A notebook kernel's loop is never blocked by a run, and never needs re-entering:
``await handle`` waits on the portal without blocking, and ``handle.result()`` or ``pcc.run``
block only their caller's thread. Nothing here touches global asyncio state.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _Portal:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                ready = threading.Event()
                loop = asyncio.new_event_loop()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=serve, name="parallelcc-loop", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedules ``coro`` on the portal loop; returns a future that any thread can wait on."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop())


portal = _Portal()


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# Runs still going when the interpreter exits are cancelled and allowed to close their sandboxes,
# instead of dying with the daemon thread and leaving processes behind.
_live_runs: set[Any] = set()
_live_lock = threading.Lock()
_EXIT_GRACE_S = 30.0


def register_run(handle: Any) -> None:
    with _live_lock:
        _live_runs.add(handle)


def unregister_run(handle: Any) -> None:
    with _live_lock:
        _live_runs.discard(handle)


def _cancel_live_runs() -> None:
    with _live_lock:
        handles = list(_live_runs)
    for handle in handles:
        handle.cancel()
    for handle in handles:
        handle._wait_closed(_EXIT_GRACE_S)


def _register_exit_hook() -> None:
    """Runs :func:`_cancel_live_runs` when the interpreter starts to exit, *before* it shuts
    down the thread pools: closing a sandbox needs worker threads (``asyncio.to_thread``), and
    an ``atexit`` handler runs too late, when they refuse work and every folder would stay."""
    # Exit hooks run in reverse order: the pools' hook must be registered first to run last.
    import concurrent.futures.thread  # noqa: F401

    register = getattr(threading, "_register_atexit", None)
    if register is None:  # not CPython: the ordinary hook is the best there is
        atexit.register(_cancel_live_runs)
    else:
        register(_cancel_live_runs)


_register_exit_hook()
