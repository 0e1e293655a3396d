"""Text progress for terminals, logs and kernels without widgets, written to a stream (stderr).

On a terminal it is the live display of :mod:`.terminal`. Anywhere else (a pipe, a CI log, a file,
a notebook's stderr) it appends plain lines: the run folder first, then one line per change of a
task's state (started, retrying, finished), then a closing line with the totals. No line holds a
control character, so logs read the same in any viewer.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TextIO

from ..events import Event, EventType
from ..models import TaskResult, TaskStatus
from . import format as fmt
from ._live import LiveView
from ._mode import is_terminal
from ._printable import printable
from ._state import HandleLike
from ._throttle import Throttle
from .plain import status_line

logger = logging.getLogger("parallelcc_sdk")

_ERROR_CHARS = 200


def text_view(handle: HandleLike, stream: TextIO) -> LiveView:
    """The live display on a terminal that can redraw; plain lines anywhere else."""
    if is_terminal(stream) and os.environ.get("TERM", "") != "dumb":
        from .terminal import TerminalView

        return TerminalView(handle, stream)
    return TextView(handle, stream)


class TextView(LiveView):
    """Append-only progress lines. ``interval`` batches the writes of a burst of changes."""

    def __init__(self, handle: HandleLike, stream: TextIO, *, interval: float = 0.5) -> None:
        super().__init__(handle)
        self.stream = stream
        run_dir = getattr(handle, "run_dir", None)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._pending_lines: list[str] = [self._banner()]
        # Counted as tasks finish, so a line costs the same at task 3 and at task 3,000.
        self._finished = {
            t.task_id for t in self.state.tasks.values() if TaskStatus(t.status).is_final
        }
        self.throttle = Throttle(self._flush, interval=interval)
        self._remove_listener = handle.add_listener(self.on_event)
        if handle.done():
            self.finalize()
        else:
            self.throttle.request()

    def on_event(self, event: Event) -> None:
        try:
            line = None
            with self._lock:
                self.state.apply(event)
                if event.task is not None:
                    line = self._line(event.type, event.task)
                if line is not None:
                    self._pending_lines.append(line)
            if event.type is EventType.RUN_FINISHED:
                self.finalize()
            elif line is not None:
                self.throttle.request()
        except Exception:  # a view must never break the run
            logger.exception("parallelcc text progress failed on %s", event.type)

    def finalize(self) -> None:
        if self._stop_following():
            with self._lock:
                self._pending_lines.append(f"parallelcc {status_line(self.state)}")
                if self.run_dir is not None:
                    self._pending_lines.append(f"Results: {self.run_dir}")
            self._flush()

    def _banner(self) -> str:
        n = self.state.total
        line = f"parallelcc run {self.state.run_id}: {n} task{'s' if n != 1 else ''}"
        if self.run_dir is not None:
            line += f", results in {self.run_dir}"
        return line

    def _line(self, kind: EventType, task: TaskResult) -> str | None:
        """The line for a change of ``task``'s state, or None if its state did not change."""
        status = TaskStatus(task.status)
        if status.is_final:
            self._finished.add(task.task_id)
        progress = f"[{len(self._finished)}/{self.state.total}]"
        symbol = fmt.STATUS_SYMBOLS.get(status.value, "")
        if kind is EventType.TASK_STARTED:
            return f"{progress} {symbol} {task.task_id} started"
        if kind is EventType.TASK_RETRY:
            return f"{progress} ↻ {task.task_id} retrying (attempt {task.attempts + 1})"
        if kind is not EventType.TASK_FINISHED:
            return None
        line = f"{progress} {symbol} {task.task_id} {status.value}"
        if task.duration_s is not None:
            line += f" {fmt.duration(task.duration_s)}"
        if status == TaskStatus.COMPLETED and task.files_changed is not None:
            line += f", {task.files_changed} file{'s' if task.files_changed != 1 else ''} changed"
        if task.error:
            line += f" — {fmt.one_line(printable(task.error), _ERROR_CHARS)}"
        return printable(line)

    def _flush(self) -> None:
        with self._lock:
            lines, self._pending_lines = self._pending_lines, []
        if not lines:
            return
        try:
            self.stream.write("".join(line + "\n" for line in lines))
            self.stream.flush()
        except (OSError, ValueError):  # closed stream (interpreter exit): progress is optional
            pass
