"""The terminal progress display: one region on a terminal (stderr), redrawn in place with rich.

Two header lines (a bar coloured by status with done/total, elapsed time, ETA and the cost so far;
then the counts by status) and one row per task (id, elapsed, phase or status, last output). Every
line is cut to the terminal's width, whatever the width, and the rows to its height: when the
tasks do not fit, only the running and failed ones are listed, with a line saying what is not.
The run folder is printed above the region when it starts and below it when the run ends.

rich is imported here only, so nothing loads it until a terminal display is made.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from ..models import STATUS_ORDER, TaskResult, TaskStatus
from . import format as fmt
from ._live import LiveView
from ._mode import is_terminal
from ._printable import printable
from ._state import HandleLike, RunState
from ._throttle import Throttle

logger = logging.getLogger("parallelcc_sdk")

_HEADER_LINES = 2
_ID_WIDTH_MAX = 24
_ELAPSED_WIDTH = 8
_BAR_WIDTH = (10, 40)
# When not every task fits on the screen, these are listed (in this order) and the rest counted.
_LISTED_WHEN_FULL = ("running", "failed", "timed_out")
_BAR_ORDER = ("completed", "failed", "timed_out", "cancelled", "running", "pending")
_DIM = "bright_black"

# Named ANSI colours rather than the shared hex hues: on a 16-colour terminal those map to the
# nearest palette entry, which turns "completed" green into grey.
TERMINAL_COLORS: dict[str, str] = {
    "pending": "bright_black",
    "running": "cyan",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
    "timed_out": "yellow",
}


class TerminalView(LiveView):
    """Live progress of a run on a terminal; made by :func:`parallelcc_sdk.views.text.text_view`."""

    def __init__(
        self,
        handle: HandleLike,
        stream: TextIO,
        *,
        console: Console | None = None,
        interval: float = 0.1,
    ) -> None:
        super().__init__(handle)
        self.console = console or Console(file=stream, highlight=False)
        run_dir = getattr(handle, "run_dir", None)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.console.print(self._banner(), highlight=False)
        self._live = Live(
            get_renderable=self._frame,
            console=self.console,
            auto_refresh=False,
            transient=False,
            # print() and warnings during the run appear above the region instead of tearing it;
            # stdout only when it is this same terminal (never pull a redirected stdout in).
            redirect_stdout=is_terminal(sys.stdout) and self.console.is_terminal,
            redirect_stderr=True,
            vertical_overflow="crop",
        )
        self._live.start(refresh=True)
        self.throttle = Throttle(self._refresh, interval=interval, heartbeat=1.0)
        self._remove_listener = handle.add_listener(self.on_event)
        if handle.done():
            self.finalize()

    def finalize(self) -> None:
        if not self._stop_following():
            return
        try:
            self._live.stop()  # draws the final frame, leaves it on the screen
            if self.run_dir is not None:
                self.console.print(Text(f"Results: {self.run_dir}"), highlight=False)
        except (OSError, ValueError):  # closed terminal: progress is optional
            pass

    def _refresh(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # closed terminal
            self._live.refresh()

    def _banner(self) -> Text:
        n = self.state.total
        text = Text(f"parallelcc run {self.state.run_id}: {n} task{'s' if n != 1 else ''}")
        if self.run_dir is not None:
            text.append(f", results in {self.run_dir}")
        return text

    # -- the frame ----------------------------------------------------------------------------

    def _frame(self) -> Group:
        width, height = self.console.size
        with self._lock:
            lines = frame_lines(self.state, width, height)
        return Group(*lines)


def frame_lines(state: RunState, width: int, height: int) -> list[Text]:
    """The lines of the live region for a terminal of ``width`` x ``height`` cells.

    Lines stay one cell short of the width (some terminals wrap a line that fills the row),
    and the region one line short of the height (so it never scrolls what it must redraw).
    """
    width = max(width - 1, 1)
    now = datetime.now(UTC)
    lines = [_bar_line(state, width), _counts_line(state)]
    room = max(height - _HEADER_LINES - 1, 1)
    tasks = list(state.tasks.values())
    if len(tasks) <= room:
        shown, note = tasks, None
    else:
        order = {status: i for i, status in enumerate(_LISTED_WHEN_FULL)}
        listed = sorted(
            (t for t in tasks if str(t.status) in order), key=lambda t: order[str(t.status)]
        )
        shown = listed[: room - 1]
        note = _not_listed(tasks, shown)
    lines += _rows(state, shown, now)
    if note is not None:
        lines.append(Text(note, style=_DIM))
    for line in lines:
        line.no_wrap = True
        line.truncate(width, overflow="ellipsis")
    return lines


def _bar_line(state: RunState, width: int) -> Text:
    parts = [f"{state.done_count}/{state.total} done", fmt.duration(state.elapsed_s)]
    eta = _eta_s(state)
    if eta is not None:
        parts.append(f"ETA {fmt.duration(eta)}")
    cost = state.cost_usd
    parts.append(fmt.cost(cost) if cost is not None else "cost not reported")
    if state.finished and state.status != "finished":
        parts.append(f"run {state.status}")
    label = " · ".join(parts)
    low, high = _BAR_WIDTH
    bar_width = max(min(width - len(label) - 1, high), low)
    line = _bar(state, bar_width)
    line.append(" " + label)
    return line


def _bar(state: RunState, width: int) -> Text:
    """A bar with one coloured stretch per status: finished ones first, then running, pending."""
    counts = state.counts
    total = max(state.total, 1)
    bar = Text()
    done = 0
    drawn = 0
    for status in _BAR_ORDER:
        done += counts.get(status, 0)
        end = round(width * done / total)
        if end > drawn:
            style = TERMINAL_COLORS[status]
            bar.append("━" * (end - drawn), style=style)
            drawn = end
    return bar


def _counts_line(state: RunState) -> Text:
    counts = state.counts
    line = Text()
    for status in _BAR_ORDER:
        n = counts.get(status, 0)
        if not n:
            continue
        if line:
            line.append("  ")
        line.append(f"{fmt.STATUS_SYMBOLS[status]} {n} {status}", style=TERMINAL_COLORS[status])
    return line


def _eta_s(state: RunState) -> float | None:
    """Time left at the pace so far (which already reflects the concurrency); None if unknown."""
    done = state.done_count
    if state.finished or done == 0 or done >= state.total:
        return None
    return state.elapsed_s / done * (state.total - done)


def _not_listed(tasks: Sequence[TaskResult], shown: Sequence[TaskResult]) -> str:
    shown_ids = {t.task_id for t in shown}
    hidden = dict.fromkeys(STATUS_ORDER, 0)
    for task in tasks:
        if task.task_id not in shown_ids:
            hidden[str(task.status)] += 1
    counts = ", ".join(f"{n} {status}" for status, n in hidden.items() if n)
    return f"not listed: {counts}"


def _rows(state: RunState, tasks: Sequence[TaskResult], now: datetime) -> list[Text]:
    if not tasks:
        return []
    id_width = min(max(len(t.task_id) for t in tasks), _ID_WIDTH_MAX)
    labels = [_label(state, t) for t in tasks]
    label_width = max(len(label) for label in labels)
    rows = []
    for task, label in zip(tasks, labels, strict=True):
        status = str(task.status)
        colour = TERMINAL_COLORS.get(status, "")
        row = Text()
        row.append(fmt.STATUS_SYMBOLS.get(status, " ") + " ", style=colour)
        row.append(fmt.one_line(task.task_id, id_width).ljust(id_width) + " ", style="bold")
        elapsed = fmt.duration(state.task_elapsed_s(task, now))
        row.append(elapsed.rjust(_ELAPSED_WIDTH) + "  ", style=_DIM)
        row.append(label.ljust(label_width) + "  ", style=colour)
        row.append(_detail(state, task), style=_DIM)
        rows.append(row)
    return rows


def _label(state: RunState, task: TaskResult) -> str:
    """A running task's phase (preparing, running, collecting, closing); else its status."""
    if task.status == TaskStatus.RUNNING:
        return state.phase_of(task) or "running"
    return str(task.status)


def _detail(state: RunState, task: TaskResult) -> str:
    status = TaskStatus(task.status)
    if status in (TaskStatus.FAILED, TaskStatus.TIMED_OUT) and task.error:
        return printable(task.error)
    if status == TaskStatus.COMPLETED:
        parts = []
        if task.files_changed is not None:
            parts.append(f"{task.files_changed} file{'s' if task.files_changed != 1 else ''}")
        if task.cost_usd is not None:
            parts.append(fmt.cost(task.cost_usd))
        return " · ".join(parts)
    if status == TaskStatus.CANCELLED:
        return printable(task.error or "")
    return printable(state.last_output.get(task.task_id, ""))
