"""ExecutionHandle's event history: events() from other threads yields every event exactly once,
the history does not grow with progress lines, and the handle says when a blocking call holds
the main thread."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from support.e2e import local_run_options

import parallelcc_sdk as pcc
from parallelcc_sdk.events import Event, EventType
from parallelcc_sdk.handle import ExecutionHandle


def bare_handle() -> ExecutionHandle:
    # The history and the listeners need no engine: the engine only ever calls _dispatch.
    return ExecutionHandle(SimpleNamespace(run_id="run-1"))  # type: ignore[arg-type]


def collect(handle: ExecutionHandle) -> list[Event]:
    async def consume() -> list[Event]:
        return [event async for event in handle.events()]

    return asyncio.run(consume())


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    # Switching threads every microsecond makes the window between two statements of the
    # dispatcher one that the subscribing threads actually hit.
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def test_events_from_other_threads_yield_every_event_exactly_once(
    frequent_thread_switches: None,
) -> None:
    handle = bare_handle()
    n = 5_000
    sent = [Event(EventType.TASK_QUEUED, "run-1", task_id=f"task-{i}") for i in range(n)]
    sent.append(Event(EventType.RUN_FINISHED, "run-1"))
    results: list[list[Event]] = []
    errors: list[BaseException] = []

    def consumer() -> None:
        try:
            results.append(collect(handle))
        except BaseException as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)

    def dispatcher() -> None:
        for event in sent:
            handle._dispatch(event)

    # Consumers subscribe at many moments while the dispatcher runs on its own thread.
    threads = [threading.Thread(target=dispatcher)]
    threads += [threading.Thread(target=consumer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(results) == 8
    for events in results:
        ids = [e.task_id for e in events]
        assert len(ids) == len(set(ids)), "an event was yielded twice"
        assert events == sent, "an event was lost or reordered"


class DoorLock:
    """The handle's lock, with a door that holds one chosen thread once, just before it takes
    the lock, until the test opens it: a race window made as wide as the test needs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hold: threading.Thread | None = None
        self.waiting = threading.Event()
        self.open = threading.Event()

    def __enter__(self) -> None:
        if threading.current_thread() is self.hold:
            self.hold = None
            self.waiting.set()
            assert self.open.wait(30)
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def test_subscribing_while_an_event_is_being_dispatched_neither_doubles_nor_loses_it() -> None:
    handle = bare_handle()
    door = DoorLock()
    handle._lock = door  # type: ignore[assignment]
    sent = [Event(EventType.TASK_QUEUED, "run-1", task_id=f"task-{i}") for i in range(20)]
    sent.append(Event(EventType.RUN_FINISHED, "run-1"))
    received: list[list[Event]] = []

    def dispatcher() -> None:
        for i, event in enumerate(sent):
            if i == 10:  # held inside the dispatch of the 11th event
                door.hold = threading.current_thread()
            handle._dispatch(event)

    dispatching = threading.Thread(target=dispatcher)
    dispatching.start()
    assert door.waiting.wait(30)
    subscriber = threading.Thread(target=lambda: received.append(collect(handle)))
    subscriber.start()
    while not handle._listeners:  # subscribed: the history is copied, the listener is in
        assert subscriber.is_alive()
        threading.Event().wait(0.001)
    door.open.set()
    dispatching.join(30)
    subscriber.join(30)
    assert [e.task_id for e in received[0]] == [e.task_id for e in sent]


def test_history_keeps_only_the_latest_progress_of_each_task() -> None:
    handle = bare_handle()
    handle._dispatch(Event(EventType.RUN_STARTED, "run-1"))
    for task in ("a", "b"):
        handle._dispatch(Event(EventType.TASK_STARTED, "run-1", task_id=task))
    for i in range(50_000):
        task = "ab"[i % 2]
        handle._dispatch(Event(EventType.TASK_OUTPUT, "run-1", task_id=task, message=f"{i}"))
        handle._dispatch(Event(EventType.TASK_PROGRESS, "run-1", task_id=task, message=f"t{i}"))
    handle._dispatch(Event(EventType.TASK_FINISHED, "run-1", task_id="a"))
    handle._dispatch(Event(EventType.RUN_FINISHED, "run-1"))

    assert len(handle._history) == 7  # not 100,000 lines
    replay = [(e.type.value, e.task_id, e.message) for e in collect(handle)]
    assert replay == [
        ("run_started", None, None),
        ("task_started", "a", None),
        ("task_started", "b", None),
        ("task_progress", "a", "t49998"),
        ("task_progress", "b", "t49999"),
        ("task_finished", "a", None),
        ("run_finished", None, None),
    ]


def test_blocking_is_true_only_while_the_main_thread_waits_in_result(
    notes_repo: Path, tmp_path: Path
) -> None:
    seen: list[bool] = []

    def on_event(event: Event) -> None:
        if event.type is EventType.TASK_STARTED:
            seen.append(handle.blocking)

    handle = pcc.submit(
        ["a"],
        agent=pcc.Command("sleep 0.5"),
        listeners=[on_event],
        **local_run_options(notes_repo, tmp_path / "out"),
    )
    assert handle.result(timeout=60).success
    assert seen == [True]  # the listener ran while this (main) thread waited in result()
    assert handle.blocking is False
    assert repr(handle) == (
        f"<ExecutionHandle {handle.run_id} finished: 1 completed in {handle.run_dir}>"
    )


def test_a_result_call_from_another_thread_does_not_count_as_blocking(
    notes_repo: Path, tmp_path: Path
) -> None:
    handle = pcc.submit(
        ["a"], agent=pcc.Command("sleep 0.5"), **local_run_options(notes_repo, tmp_path / "out")
    )
    seen: list[Any] = []
    waiter = threading.Thread(target=lambda: seen.append(handle.result(timeout=60)))
    waiter.start()
    while waiter.is_alive() and not handle.done():
        assert handle.blocking is False
        waiter.join(0.05)
    waiter.join()
    assert seen and seen[0].success
