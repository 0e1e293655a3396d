"""Text progress for terminals, logs and kernels without widgets, written to a stream (stderr).

It opens with the run id and the run folder, and ends with how the run ended and the folder again,
so a log says where the results are. On a terminal one status line is redrawn in place (at most
10 times a second) and finished tasks are listed above it. Elsewhere (a pipe, a CI log, a
notebook's stderr) lines are appended instead, so the status line is printed only when the number
of finished tasks changed, at most every few seconds, and failed tasks get a line each.
"""

from __future__ import annotations

import logging
from typing import TextIO

from ..events import Event, EventType
from ..models import TaskStatus
from . import format as fmt
from ._live import LiveView
from ._state import HandleLike
from ._throttle import Throttle
from .plain import status_line

logger = logging.getLogger("parallelcc_sdk")

# Listing every finished task is useful up to this many tasks; beyond it only problems are listed.
_LIST_ALL_UP_TO = 50
_BAR_WIDTH = 20


class TextView(LiveView):
    def __init__(
        self,
        handle: HandleLike,
        stream: TextIO,
        *,
        interactive: bool | None = None,
        interval: float | None = None,
    ) -> None:
        super().__init__(handle)
        self.stream = stream
        if interactive is None:
            isatty = getattr(stream, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive
        self._pending_lines: list[str] = []
        self._last_done = -1
        if interval is None:
            interval = 0.1 if interactive else 5.0
        self.throttle = Throttle(
            self._render, interval=interval, heartbeat=1.0 if interactive else None
        )
        self._remove_listener = handle.add_listener(self.on_event)
        self._write(f"parallelcc run {self.state.run_id}: {self._tasks()} → {self.state.run_dir}\n")
        if handle.done():
            self.finalize()

    def _tasks(self) -> str:
        return f"{self.state.total} task{'s' if self.state.total != 1 else ''}"

    def on_event(self, event: Event) -> None:
        try:
            with self._lock:
                self.state.apply(event)
                if event.type is EventType.TASK_FINISHED and event.task is not None:
                    self._note_finished(event)
            if event.type is EventType.RUN_FINISHED:
                self.finalize()
            elif event.type is EventType.TASK_FINISHED or self.interactive:
                self.throttle.request()
        except Exception:  # a view must never break the run
            logger.exception("parallelcc text progress failed on %s", event.type)

    def _note_finished(self, event: Event) -> None:
        task = event.task
        assert task is not None
        status = str(task.status)
        problem = status in (TaskStatus.FAILED, TaskStatus.TIMED_OUT)
        if not problem and self.state.total > _LIST_ALL_UP_TO:
            return
        line = (
            f"  {fmt.status_symbol(status)} {task.task_id} {fmt.status_label(status)}"
            f" {fmt.duration(task.duration_s)}"
        )
        if task.error:
            line += f" — {fmt.one_line(task.error, 100)}"
        self._pending_lines.append(line.rstrip())

    def _bar(self) -> str:
        filled = round(_BAR_WIDTH * self.state.done_count / max(self.state.total, 1))
        return "[" + "#" * filled + "-" * (_BAR_WIDTH - filled) + "]"

    def _render(self, final: bool = False) -> None:
        with self._lock:
            lines, self._pending_lines = self._pending_lines, []
            status = f"parallelcc {self._bar()} {status_line(self.state)}"
            changed = self.state.done_count != self._last_done
            self._last_done = self.state.done_count
        out: list[str] = []
        if self.interactive:
            out.append("\r\x1b[2K")  # clear the status line before printing above it
            out += [line + "\n" for line in lines]
            out.append(status + ("\n" if final else ""))
        else:
            out += [line + "\n" for line in lines]
            if changed or final:
                out.append(status + "\n")
        if final:
            out.append(f"parallelcc run folder: {self.state.run_dir}\n")
        self._write("".join(out))

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # closed stream (interpreter exit): progress is optional
            pass

    def finalize(self) -> None:
        if self._stop_following():
            self._render(final=True)
