"""The Markdown summary report of a run (``summary-report.md``)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .models import TaskResult, TaskStatus

if TYPE_CHECKING:
    from .results import RunResult

__all__ = ["escape_cell", "format_cost", "format_duration", "one_line", "render_report"]

NONE = "—"
PROMPT_EXCERPT_CHARS = 60
_ICONS = {TaskStatus.COMPLETED: "✓", TaskStatus.FAILED: "✗", TaskStatus.TIMED_OUT: "⏱"}
_WHITESPACE = re.compile(r"\s+")
_BACKTICK_RUN = re.compile(r"`+")


def format_duration(seconds: float | None) -> str:
    """``45.2s``, ``3m 05s`` or ``2h 03m 04s``; ``—`` when there is no duration."""
    if seconds is None or math.isnan(seconds):
        return NONE
    seconds = max(0.0, seconds)
    if round(seconds, 1) < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s"


def format_cost(usd: float | None) -> str:
    """Dollars: cents from $1 up, four decimals below (one agent task often costs under a cent)."""
    if usd is None or math.isnan(usd):
        return NONE
    return f"${usd:,.2f}" if usd >= 1 else f"${usd:.4f}"


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` with all whitespace runs as single spaces, cut to ``limit`` characters with …."""
    flat = _WHITESPACE.sub(" ", text).strip()
    if limit is not None and len(flat) > limit:
        return flat[: limit - 1].rstrip() + "…"
    return flat


def escape_cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, ``|`` escaped.

    Backslashes are doubled first, so a cell that ends in one cannot escape the cell border.
    """
    flat = one_line(text)
    return flat.replace("\\", "\\\\").replace("|", "\\|")


def _table(header: list[str], rows: list[list[str]], align: list[str]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(escape_cell(c) for c in row) + " |" for row in rows]
    return lines


def _statistics(result: RunResult) -> list[str]:
    s = result.summary
    has_cost = any(t.cost_usd is not None for t in result.tasks)
    rows = [
        ["Tasks", str(s.total_tasks)],
        ["Completed", str(s.success_count)],
        ["Failed", str(s.failure_count)],
        ["Cancelled", str(s.cancelled_count)],
        ["Timed out", str(s.timed_out_count)],
        ["Total duration", format_duration(s.total_duration_s)],
        ["Sequential duration", format_duration(s.sequential_duration_s)],
        ["Time saved", format_duration(s.time_saved_s)],
        ["Files changed", str(s.total_files_changed)],
        ["Total cost", format_cost(s.total_cost_usd) if has_cost else NONE],
    ]
    return _table(["Metric", "Value"], rows, [":---", "---:"])


def _lines(task: TaskResult) -> str:
    if task.lines_added is None and task.lines_removed is None:
        return NONE
    return f"+{task.lines_added or 0} / -{task.lines_removed or 0}"


def _task_row(task: TaskResult) -> list[str]:
    status = TaskStatus(task.status)
    icon = _ICONS.get(status, "○")
    return [
        task.task_id,
        f"{icon} {status.value}",
        format_duration(task.duration_s),
        NONE if task.files_changed is None else str(task.files_changed),
        _lines(task),
        format_cost(task.cost_usd),
        one_line(task.prompt, PROMPT_EXCERPT_CHARS),
    ]


def _tasks(result: RunResult) -> list[str]:
    header = ["Task", "Status", "Duration", "Files", "Lines +/-", "Cost", "Prompt"]
    align = [":---", ":---", "---:", "---:", "---:", "---:", ":---"]
    return _table(header, [_task_row(t) for t in result.tasks], align)


def _fenced(text: str) -> list[str]:
    # The fence must be longer than any backtick run inside, or the error could close it early.
    longest = max((len(m.group()) for m in _BACKTICK_RUN.finditer(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, text.rstrip("\n"), fence]


def _errors(result: RunResult) -> list[str]:
    lines: list[str] = []
    for task in result.tasks:
        if not task.error:
            continue
        status = TaskStatus(task.status).value
        lines += ["", f"### {one_line(task.task_id)} ({status})", ""]
        if task.exit_code is not None:
            lines += [f"Exit code: {task.exit_code}", ""]
        lines += _fenced(task.error)
    return ["", "## Errors", *lines] if lines else []


def render_report(result: RunResult) -> str:
    """The run's Markdown summary: statistics, one table row per task, then each task's error."""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [
        "# Parallel Run Summary",
        "",
        f"**Run ID:** {escape_cell(result.run_id)}  ",
        f"**Generated:** {generated}",
        "",
        "## Statistics",
        "",
        *_statistics(result),
        "",
        "## Tasks",
        "",
        *_tasks(result),
        *_errors(result),
    ]
    return "\n".join(lines) + "\n"
