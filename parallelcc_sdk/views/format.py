"""Words, numbers and symbols that every renderer of a run shares.

The Markdown report, the HTML reprs, the live widget, the text progress and the terminal all
format through these functions, so one run reads the same everywhere. Pure functions of plain
values: importing this module imports neither pandas, ipywidgets nor rich.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Final

from ..models import TaskResult, TaskStatus

__all__ = [
    "DISPLAY_ORDER",
    "NOT_REPORTED",
    "STATUS_SYMBOLS",
    "UNKNOWN",
    "cost",
    "count_phrase",
    "done_count",
    "duration",
    "end_state",
    "headline",
    "isolation_of",
    "isolation_phrase",
    "last_line",
    "one_line",
    "run_outcome",
    "status_label",
    "status_symbol",
    "task_label",
    "total_cost",
]

# A value nobody measured (a task that never ran has no duration, a command reports no cost).
UNKNOWN: Final = "—"
# A run total that no task reported; unlike "$0.0000" it does not pretend the run was free.
NOT_REPORTED: Final = "not reported"

STATUS_SYMBOLS: Final[Mapping[str, str]] = {
    "pending": "·",
    "running": "▶",
    "completed": "✓",
    "failed": "✗",
    "cancelled": "⊘",
    "timed_out": "⏱",
}

# Outcomes first, then what is still going on: the order of counts in every phrase, of the
# badges in the widget header and of the segments of its stacked bar.
DISPLAY_ORDER: Final[tuple[str, ...]] = (
    "completed",
    "failed",
    "timed_out",
    "cancelled",
    "running",
    "pending",
)

_FINAL: Final = frozenset(s.value for s in TaskStatus if s.is_final)
_WHITESPACE = re.compile(r"\s+")


SELECTED_MARK: Final = "★"


def task_label(task: TaskResult) -> str:
    """A task's id, marked ★ when it is the selected candidate of a best-of-N task."""
    return f"{SELECTED_MARK} {task.task_id}" if task.selected else task.task_id


def status_label(status: str) -> str:
    """A status as a word for people: ``timed_out`` → ``timed out``."""
    return str(status).replace("_", " ")


def status_symbol(status: str) -> str:
    return STATUS_SYMBOLS.get(str(status), "?")


def duration(seconds: float | None) -> str:
    """``45.2s``, ``3m 05s`` or ``2h 03m 04s``; ``—`` when there is no duration."""
    if seconds is None or math.isnan(seconds):
        return UNKNOWN
    seconds = max(0.0, seconds)
    if round(seconds, 1) < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s"


def cost(usd: float | None) -> str:
    """Dollars: cents from $1 up, four decimals below (one agent task often costs under a cent);
    ``—`` for a task that reported no cost."""
    if usd is None or math.isnan(usd):
        return UNKNOWN
    return f"${usd:,.2f}" if usd >= 1 else f"${usd:.4f}"


def total_cost(usd: float | None) -> str:
    """A run's total cost, ``not reported`` when no task reported one."""
    if usd is None or math.isnan(usd):
        return NOT_REPORTED
    return cost(usd)


def done_count(counts: Mapping[str, int]) -> int:
    """How many tasks reached a final status."""
    return sum(n for status, n in counts.items() if status in _FINAL)


def count_phrase(counts: Mapping[str, int], sep: str = ", ") -> str:
    """``3 completed, 1 failed, 2 running``: every non-zero count in display order."""
    parts = [f"{counts[s]} {status_label(s)}" for s in DISPLAY_ORDER if counts.get(s)]
    return sep.join(parts) or "no tasks"


def headline(state: str, counts: Mapping[str, int]) -> str:
    """The first words about a run: ``4 of 6 done`` while it runs, then how it ended
    (``finished``, ``cancelled`` or ``interrupted``)."""
    if state in ("running", "pending"):
        return f"{done_count(counts)} of {sum(counts.values())} done"
    return str(state)


def run_outcome(state: str, counts: Mapping[str, int]) -> str:
    """A run in one line: ``4 of 6 done: 3 completed, 1 failed, 2 running`` while it runs,
    ``cancelled: 2 completed, 4 cancelled`` once it ended."""
    return f"{headline(state, counts)}: {count_phrase(counts)}"


def end_state(counts: Mapping[str, int]) -> str:
    """How a run that is over ended, told from its counts alone (for a run loaded from disk):
    ``interrupted`` if some task never reached a final status, ``cancelled`` if some task was
    cancelled, else ``finished``."""
    if counts.get("pending") or counts.get("running"):
        return "interrupted"
    if counts.get("cancelled"):
        return "cancelled"
    return "finished"


def isolation_of(task: TaskResult) -> str | None:
    """What isolated ``task``'s sandbox, for records that carry it."""
    value = getattr(task, "isolation", None)
    return str(value) if value else None


def isolation_phrase(values: Mapping[str, int]) -> str | None:
    """What isolated the tasks: ``bubblewrap``, or ``bubblewrap 3, none 1`` when they differ;
    None when no task says."""
    known = {name: n for name, n in values.items() if name and n}
    if not known:
        return None
    if len(known) == 1:
        return next(iter(known))
    return ", ".join(f"{name} {n}" for name, n in sorted(known.items()))


def one_line(text: str | None, limit: int | None = None) -> str:
    """``text`` with every whitespace run as one space, cut to ``limit`` characters with ``…``."""
    if not text:
        return ""
    flat = _WHITESPACE.sub(" ", text).strip()
    if limit is not None and len(flat) > limit:
        return flat[: max(limit - 1, 0)].rstrip() + "…"
    return flat


def last_line(text: str | None) -> str | None:
    """The last non-blank line of a chunk of output, stripped; None if there is none."""
    if not text:
        return None
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return None
