"""Events: how often the widget and the terminal view redraw under 10,000 events per second.

A synthetic handle (no engine, no kernel) delivers events on an asyncio loop, as the engine does
on the run's loop: 1,000 tasks, 100 running at a time, mostly output lines, with tasks finishing
and starting all along. The widget's comm messages are recorded by a stand-in comm; the terminal
view writes to a stream that counts its writes. Each view gets a pass of its own, after one pass
with no view at all, so the CPU each view costs per event can be told apart.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import parallelcc_sdk as pcc

from ._common import Report, progress, suite_main

RATE = 10_000
TICK_S = 0.01
TASKS = 1_000
RUNNING = 100


class SyntheticHandle:
    """The part of an ExecutionHandle that the views read, driven by :meth:`emit`."""

    def __init__(self, tasks: int) -> None:
        self.run_id = "bench"
        self.run_dir = Path("parallel-results") / "bench"
        self.blocking = False
        self.status = "running"
        self.elapsed_s = 0.0
        self.records = [pcc.TaskResult(task_id=f"task-{i}", prompt="p") for i in range(tasks)]
        self.listeners: list[Callable[[pcc.Event], Any]] = []

    @property
    def tasks(self) -> list[pcc.TaskResult]:
        return list(self.records)

    @property
    def total(self) -> int:
        return len(self.records)

    def done(self) -> bool:
        return self.status != "running"

    def cancel(self, task_id: str | None = None) -> None:
        pass

    def add_listener(self, callback: Callable[[pcc.Event], Any]) -> Callable[[], None]:
        self.listeners.append(callback)
        return lambda: self.listeners.remove(callback)

    def emit(
        self, type_: pcc.EventType, index: int, message: str | None = None, **changes: Any
    ) -> None:
        task = self.records[index] = self.records[index].replace(**changes)
        event = pcc.Event(
            type=type_, run_id=self.run_id, task_id=task.task_id, task=task, message=message
        )
        for listener in list(self.listeners):
            listener(event)


class CountingStream(io.StringIO):
    """A terminal that counts the writes it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.writes += 1
        return len(text)


class RecordingComm:
    """Stands in for a kernel comm: counts the messages a widget sends."""

    sent = 0

    def __init__(self, **_: Any) -> None:
        self.comm_id = f"comm-{id(self)}"
        self.kernel = "bench"

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        RecordingComm.sent += 1

    def on_msg(self, callback: Any) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


async def _drive(handle: SyntheticHandle, seconds: float) -> tuple[int, float]:
    """Delivers events at RATE for ``seconds``; the count delivered and the CPU seconds used."""
    per_tick = int(RATE * TICK_S)
    now = datetime.now(UTC)
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    running = list(range(RUNNING))
    for i in running:
        handle.emit(pcc.EventType.TASK_STARTED, i, status=pcc.TaskStatus.RUNNING, started_at=now)
    next_task, sent, tick = RUNNING, RUNNING, 0
    while time.perf_counter() - started_wall < seconds:
        for k in range(per_tick):
            slot = (sent + k) % RUNNING
            if k == 0 and next_task < len(handle.records):
                # One task per tick finishes and the next one starts in its slot.
                handle.emit(
                    pcc.EventType.TASK_FINISHED,
                    running[slot],
                    status=pcc.TaskStatus.COMPLETED,
                    finished_at=now,
                    duration_s=1.0,
                )
                running[slot] = next_task
                handle.emit(
                    pcc.EventType.TASK_STARTED,
                    next_task,
                    status=pcc.TaskStatus.RUNNING,
                    started_at=now,
                )
                next_task += 1
            else:
                line = f"output line {sent + k} of the task"
                handle.emit(
                    pcc.EventType.TASK_OUTPUT, running[slot], message=line, last_output=line
                )
        sent += per_tick
        tick += 1
        await asyncio.sleep(max(0.0, started_wall + tick * TICK_S - time.perf_counter()))
    return sent, time.process_time() - started_cpu


def run(quick: bool) -> Report:
    import comm
    from rich.console import Console

    from parallelcc_sdk.views.terminal import TerminalView
    from parallelcc_sdk.views.widget import WidgetView

    report = Report("events", quick)
    seconds = 3.0 if quick else 10.0
    table = report.table(
        f"{RATE:,} events/s offered for {seconds:g} s, {TASKS} tasks, {RUNNING} running",
        ["view", "events/s delivered", "redraws/s", "CPU µs/event (view only)"],
    )
    comm.create_comm = lambda **kw: RecordingComm(**kw)

    def widget(handle: SyntheticHandle) -> Callable[[], int]:
        view = WidgetView(handle)
        opened = RecordingComm.sent
        return lambda: (view.throttle.close(), RecordingComm.sent - opened)[1]

    def terminal(handle: SyntheticHandle) -> Callable[[], int]:
        stream = CountingStream()
        console = Console(file=stream, force_terminal=True, width=100, height=40)
        view = TerminalView(handle, stream, console=console)
        return lambda: (view.throttle.close(), stream.writes)[1]

    baseline_us = 0.0
    passes: list[tuple[str, Callable[[SyntheticHandle], Callable[[], int]] | None]] = [
        ("none", None),
        ("widget", widget),
        ("terminal", terminal),
    ]
    for name, attach in passes:
        progress(f"{name}: {seconds:g} s of events")
        handle = SyntheticHandle(TASKS)
        redraws = attach(handle) if attach else (lambda: 0)

        async def measured(h: SyntheticHandle = handle) -> tuple[int, float]:
            return await _drive(h, seconds)

        sent, cpu = asyncio.run(measured())
        count = redraws()
        cpu_us = cpu / sent * 1e6
        if attach is None:
            baseline_us = cpu_us
            table.rows.append([name, sent / seconds, float("nan"), 0.0])
            continue
        table.rows.append([name, sent / seconds, count / seconds, cpu_us - baseline_us])
        report.check(f"{name} redraws per second", count / seconds, 11, at_most=True, unit="/s")
        report.check(
            f"{name}: events delivered per second",
            sent / seconds,
            RATE * 0.95,
            at_most=False,
            unit="/s",
        )
    table.notes.append(
        "CPU per event without a view (making and delivering the event):"
        f" {baseline_us:.1f} µs; the views' rows are what they add to it"
    )
    return report


if __name__ == "__main__":
    suite_main(run)
