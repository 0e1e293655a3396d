"""ExecutionHandle: a live view of a run, to await, watch, cancel or block on from any thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _bridge, _signals
from .errors import ParallelCCError, RunNotFinishedError, SyncCallInRunningLoopError
from .events import Event, EventType
from .models import RunStatus, TaskResult, count_statuses

if TYPE_CHECKING:
    import pandas as pd

    from .engine import Engine
    from .results import RunResult
    from .views.task import TaskView

logger = logging.getLogger("parallelcc_sdk")

Listener = Callable[[Event], Any]
# After an interrupt, how long a blocking call waits for sandboxes to close before giving up
# (closing is bounded well below this; it guards against a backend whose close hangs).
_CLOSE_GRACE_S = 120.0


class ExecutionHandle:
    """A run in progress. Returned at once by :func:`parallelcc_sdk.submit`.

    ``await handle`` (or ``await handle.wait()``) gives the :class:`RunResult`; so does
    ``handle.result()`` from blocking code. ``handle.df`` is a live snapshot, ``handle.cancel()``
    stops the run (or one task), and listeners get every :class:`Event`.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        # What events() replays, in the order it happened, keyed so that a task's progress
        # replaces its previous progress: the state-changing events are bounded by the tasks
        # and their attempts, and output and progress lines do not grow it.
        self._history: dict[int | str, Event] = {}
        self._sequence = 0
        self._blocking = 0
        self._outcome: concurrent.futures.Future[RunResult] = concurrent.futures.Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        # submit() starts the run before it returns the handle: no caller sees it unstarted.
        self._state = RunStatus.RUNNING
        self._monotonic_start: float | None = None
        self._monotonic_end: float | None = None

    # -- starting (used by api.submit) --------------------------------------------------------

    def _start(self) -> None:
        # Every run lives on the SDK's own loop thread, whoever calls: so `await handle`,
        # `handle.result()` and `pcc.run` all work from a notebook cell, a script or async code,
        # and the caller's loop (a notebook kernel's) is never blocked nor patched.
        self._state = RunStatus.RUNNING
        self._monotonic_start = time.monotonic()
        _bridge.register_run(self)
        self._loop = _bridge.portal.loop()
        future = _bridge.portal.submit(self._engine.run())
        future.add_done_callback(self._on_done)

    def _on_done(self, future: Any) -> None:
        self._monotonic_end = time.monotonic()
        _bridge.unregister_run(self)
        if future.cancelled():
            self._state = RunStatus.INTERRUPTED
            self._outcome.set_exception(ParallelCCError(f"run {self.run_id} was interrupted"))
            return
        exc = future.exception()
        if exc is not None:
            self._state = RunStatus.INTERRUPTED
            self._outcome.set_exception(exc)
            return
        result: RunResult = future.result()
        self._state = result.state
        self._outcome.set_result(result)

    # -- events -------------------------------------------------------------------------------

    def _dispatch(self, event: Event) -> None:
        """Called by the engine, on the run's loop thread, for every event."""
        # Recording the event and reading the listeners under one lock is what lets events()
        # take the history and subscribe at one instant: each event is replayed or forwarded,
        # never both.
        with self._lock:
            self._remember(event)
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a broken listener must never break the run
                logger.exception("a parallelcc listener raised on %s; the run goes on", event.type)

    def _remember(self, event: Event) -> None:
        if event.type is EventType.TASK_OUTPUT:
            return
        key: int | str
        if event.type is EventType.TASK_PROGRESS and event.task_id is not None:
            key = event.task_id
            # Taken out and put back: the latest progress sits where it happened in the order.
            self._history.pop(key, None)
        else:
            key = self._sequence
            self._sequence += 1
        self._history[key] = event

    def add_listener(self, callback: Listener) -> Callable[[], None]:
        """Calls ``callback(event)`` for every event; returns a function that removes it.

        Callbacks run on the run's event-loop thread and must be quick; exceptions are logged.
        """
        with self._lock:
            self._listeners.append(callback)
        return lambda: self.remove_listener(callback)

    def remove_listener(self, callback: Listener) -> None:
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    async def events(self) -> AsyncIterator[Event]:
        """Every event of the run until it ends: what happened before the call is replayed
        first, except output lines and all but the latest progress message of each task."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue()

        def forward(event: Event) -> None:
            if loop is self._loop:
                queue.put_nowait(event)
            else:
                loop.call_soon_threadsafe(queue.put_nowait, event)

        # Registering and copying the history under one lock means no event is lost or doubled.
        with self._lock:
            backlog = list(self._history.values())
            self._listeners.append(forward)
        try:
            for event in backlog:
                yield event
                if event.type is EventType.RUN_FINISHED:
                    return
            if self._outcome.done() and not any(e.type is EventType.RUN_FINISHED for e in backlog):
                return
            while True:
                event = await queue.get()
                yield event
                if event.type is EventType.RUN_FINISHED:
                    return
        finally:
            self.remove_listener(forward)

    # -- state --------------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self._engine.run_id

    @property
    def run_dir(self) -> Path:
        return self._engine.run_dir

    @property
    def status(self) -> RunStatus:
        """``running``, then ``finished``, ``cancelled`` (stopped early) or ``interrupted``."""
        return self._state

    def done(self) -> bool:
        return self._outcome.done()

    @property
    def tasks(self) -> list[TaskResult]:
        """The current record of every task, in input order."""
        results = self._engine.results
        return [results[t.task_id] for t in self._engine.tasks]

    @property
    def total(self) -> int:
        return len(self._engine.tasks)

    @property
    def counts(self) -> dict[str, int]:
        """Number of tasks in each status (every status is present)."""
        return count_statuses(self.tasks)

    @property
    def blocking(self) -> bool:
        """True while the main thread waits in :meth:`result` (``pcc.run`` too).

        In a notebook that thread is the kernel's: it cannot take a widget's click meanwhile,
        so the progress widget disables its Cancel button and says what to do instead.
        """
        return self._blocking > 0

    @property
    def started_at(self) -> datetime | None:
        return self._engine.started_at

    @property
    def elapsed_s(self) -> float:
        if self._monotonic_start is None:
            return 0.0
        end = self._monotonic_end if self._monotonic_end is not None else time.monotonic()
        return end - self._monotonic_start

    @property
    def cost_usd(self) -> float:
        return self._engine.cost_usd

    @property
    def df(self) -> pd.DataFrame:
        """A snapshot DataFrame of the run now (same columns as ``result.df``)."""
        from .results import build_dataframe

        return build_dataframe(self.tasks)

    # -- control ------------------------------------------------------------------------------

    def show(self, task_id: str) -> TaskView:
        """One task as it is now: its turns and tool calls so far, and its diff once collected
        (see ``RunResult.show``)."""
        from .views.task import TaskView

        for task in self.tasks:
            if task.task_id == task_id:
                return TaskView.from_task(task, self.run_dir / task_id)
        raise KeyError(f"run {self.run_id} has no task {task_id!r}")

    def cancel(self, task_id: str | None = None) -> None:
        """Cancels one task, or the whole run. Safe from any thread; returns at once."""
        if task_id is not None and task_id not in self._engine.results:
            raise KeyError(f"no task {task_id!r} in run {self.run_id}")
        if self.done() or self._loop is None:
            return
        if _bridge.running_loop() is self._loop:
            self._engine.cancel(task_id)
        else:
            # A closed loop raises RuntimeError: then nothing is running any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._engine.cancel, task_id)

    # -- waiting ------------------------------------------------------------------------------

    async def wait(self) -> RunResult:
        """Waits for the end of the run. Cancelling the waiter does not cancel the run."""
        return await asyncio.shield(asyncio.wrap_future(self._outcome))

    def __await__(self) -> Generator[Any, None, RunResult]:
        return self.wait().__await__()

    def result(self, timeout: float | None = None) -> RunResult:
        """Blocks until the run ends and returns its result; works in scripts and notebooks.

        A KeyboardInterrupt (Ctrl-C, a notebook's "Interrupt") interrupts the run: no task
        starts any more, running ones are cancelled, every sandbox is closed and the report
        written (the run ``interrupted``, its unfinished tasks ``cancelled``), then the
        KeyboardInterrupt is re-raised. In the main thread of a script whose SIGTERM has its
        default action, SIGTERM does the same and then raises ``SystemExit(143)``. A further
        Ctrl-C or SIGTERM while the sandboxes close only says what is still being closed.
        """
        if self._outcome.done():
            return self._outcome.result()
        loop = self._loop
        if loop is not None and _bridge.running_loop() is loop:
            return _wait_in_own_loop(self, timeout)
        if loop is None or loop.is_closed():
            raise ParallelCCError(
                f"run {self.run_id} cannot finish: the event loop it was started on has closed; "
                "await the handle inside that loop, or use pcc.run() from blocking code."
            )
        with self._holding_main_thread(), _signals.SigtermAsInterrupt() as sigterm:
            try:
                if not _signals.wait_for(self._outcome, timeout):
                    raise RunNotFinishedError(
                        f"run {self.run_id} did not finish within {timeout}s; call result() "
                        "again, or handle.cancel() to stop it."
                    )
            except (KeyboardInterrupt, SystemExit):
                # SystemExit too: a program's own SIGTERM handler may raise it to leave.
                by = "by SIGTERM" if sigterm.received else "(KeyboardInterrupt)"
                self._interrupt(f"run interrupted {by}")
                self._close_after_interrupt("SIGTERM" if sigterm.received else "KeyboardInterrupt")
                raise
            return self._outcome.result()

    @contextlib.contextmanager
    def _holding_main_thread(self) -> Iterator[None]:
        main = threading.current_thread() is threading.main_thread()
        if main:
            with self._lock:
                self._blocking += 1
        try:
            yield
        finally:
            if main:
                with self._lock:
                    self._blocking -= 1

    def _interrupt(self, reason: str = "run interrupted (KeyboardInterrupt)") -> None:
        """``cancel()`` after a KeyboardInterrupt or a signal: the run is recorded as
        ``interrupted`` and its unfinished tasks as cancelled with ``reason``."""
        if self.done() or self._loop is None:
            return
        if _bridge.running_loop() is self._loop:
            self._engine.interrupt(reason)
        else:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._engine.interrupt, reason)

    def _close_after_interrupt(self, cause: str) -> None:
        """Waits while the interrupted run closes its sandboxes, saying so where it can."""
        if self.done() or _bridge.running_loop() is self._loop:
            return
        # In a kernel the cell's output says it already; a script's user sees why it waits.
        talk = _signals.handlers_allowed()
        if talk:
            _signals.say(
                f"{cause}: stopping every task and closing its sandbox; the report lists them "
                "as cancelled."
            )
        if not self._wait_closed(_CLOSE_GRACE_S) and talk:
            _signals.say(
                f"gave up waiting after {_CLOSE_GRACE_S:g}s for the sandboxes of run "
                f"{self.run_id} to close; run pcc.cleanup({str(self.run_dir)!r}) to close what "
                "is left."
            )

    def _wait_closed(self, timeout: float) -> bool:
        """Waits (bounded) for the run to end after a cancel, e.g. at interpreter exit.

        A further Ctrl-C or SIGTERM meanwhile says what is still being closed and the wait goes
        on; where no handler can be installed (a kernel) a KeyboardInterrupt ends the wait, and
        the run's loop goes on closing in the background. True if the run ended.
        """
        if _bridge.running_loop() is self._loop:
            return self.done()
        with _signals.ClosingSignals(self._still_closing), contextlib.suppress(KeyboardInterrupt):
            return _signals.wait_for(self._outcome, timeout)
        return self.done()

    def _still_closing(self) -> str:
        return _signals.still_closing(
            self.tasks, self.done(), f"pcc.cleanup({str(self.run_dir)!r})"
        )

    # -- display ------------------------------------------------------------------------------

    def _ipython_display_(self) -> None:
        from .views import display_handle

        display_handle(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from .views import mimebundle

        return mimebundle(self, include=include, exclude=exclude)

    def __repr__(self) -> str:
        from .views.format import run_outcome

        state = self.status if self.done() else "running"
        outcome = run_outcome(state, self.counts)
        return f"<ExecutionHandle {self.run_id} {outcome} in {self.run_dir}>"


def _wait_in_own_loop(handle: ExecutionHandle, timeout: float | None) -> RunResult:
    """``handle.result()`` called on the SDK's loop thread itself (e.g. from a listener).

    Blocking there would stop the very loop that must finish the run: fail at once instead.
    """
    raise SyncCallInRunningLoopError(
        f"handle.result() for run {handle.run_id} was called on the thread that runs it (from a "
        "listener?), where blocking would hang the run; use `await handle` from async code, or "
        "call result() from your own code instead."
    )
