"""The summary printed after a run and by ``parallelcc show``: counts, durations, time saved,
files changed, cost, the report's path, and each failed task with its error and the last lines
of its output."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Group, RenderableType
from rich.text import Text

from ..models import TaskResult, TaskStatus
from ..results import RunResult
from ..runfolder.layout import EXECUTION_LOG
from ..views import format as fmt
from ..views._printable import printable
from ..views.terminal import TERMINAL_COLORS

LOG_LINES = 5
_TAIL_BYTES = 16 * 1024
_ERROR_CHARS = 500
_PROBLEMS = (TaskStatus.FAILED, TaskStatus.TIMED_OUT)


def render_summary(result: RunResult, state: str) -> RenderableType:
    """``state`` is how the run ended: finished, cancelled, interrupted (or running, if unknown)."""
    summary = result.summary
    reported = any(t.cost_usd is not None for t in result.tasks)
    parts: list[RenderableType] = [_headline(result, state)]
    report = result.report_path
    facts = [
        ("Total duration", fmt.duration(summary.total_duration_s)),
        ("Sequential duration", fmt.duration(summary.sequential_duration_s)),
        ("Time saved", fmt.duration(summary.time_saved_s)),
        ("Files changed", str(summary.total_files_changed)),
        ("Cost", fmt.cost(summary.total_cost_usd) if reported else "not reported"),
        ("Report", str(report) if report.is_file() else "not written (the run did not end)"),
        ("Results", str(result.run_dir)),
    ]
    width = max(len(name) for name, _ in facts) + 2
    for name, value in facts:
        line = Text(name.ljust(width), style="bold")
        line.append(value)
        parts.append(line)
    problems = [t for t in result.tasks if t.status in _PROBLEMS]
    if problems:
        parts.append(
            Text(f"\n{'Failed tasks' if len(problems) > 1 else 'Failed task'}", style="bold")
        )
        for task in problems:
            parts += _problem(task, result.run_dir)
    return Group(*parts)


def _headline(result: RunResult, state: str) -> Text:
    n = len(result.tasks)
    line = Text(f"Run {result.run_id} {state}: {n} task{'s' if n != 1 else ''}", style="bold")
    for status, count in result.counts.items():
        if count:
            line.append("  ")
            line.append(
                f"{fmt.STATUS_SYMBOLS[status]} {count} {status}", style=TERMINAL_COLORS[status]
            )
    return line


def _problem(task: TaskResult, run_dir: Path) -> list[RenderableType]:
    status = task.status.value
    head = Text(f"{fmt.STATUS_SYMBOLS[status]} {task.task_id}", style=TERMINAL_COLORS[status])
    head.append(f" {status}", style=TERMINAL_COLORS[status])
    if task.duration_s is not None:
        head.append(f" after {fmt.duration(task.duration_s)}")
    error = printable(task.error or "no error recorded")
    head.append(f": {error[:_ERROR_CHARS]}")
    lines: list[RenderableType] = [head]
    log = Path(task.output_path) if task.output_path else run_dir / task.task_id
    tail = last_lines(log / EXECUTION_LOG, LOG_LINES)
    if tail:
        lines.append(Text(f"    last lines of {log / EXECUTION_LOG}:", style="bright_black"))
        for line in tail:
            row = Text(
                f"    │ {printable(line)}", style="bright_black", no_wrap=True, overflow="ellipsis"
            )
            lines.append(row)
    return lines


def last_lines(path: Path, n: int) -> list[str]:
    """The last ``n`` non-blank lines of a log, reading only its end (a log can be huge)."""
    try:
        with open(path, "rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(size - _TAIL_BYTES, 0))
            tail = log.read()
    except OSError:
        return []
    lines = [line for line in tail.decode(errors="replace").splitlines() if line.strip()]
    return lines[-n:]
