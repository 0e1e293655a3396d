"""The Markdown summary report of a run (``summary-report.md``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .models import TaskResult, TaskStatus
from .runfolder.layout import EXECUTION_LOG, RunLayout
from .views import format as fmt

if TYPE_CHECKING:
    from .results import RunResult

__all__ = ["escape_cell", "log_tail", "render_report"]

PROMPT_EXCERPT_CHARS = 60
LAST_OUTPUT_EXCERPT_CHARS = 60
# How much of a failed task's log the Errors section quotes: enough to see why, bounded
# whatever the size of the log (it is read from its end).
LOG_TAIL_LINES = 20
_LOG_TAIL_BYTES = 16_384
_LOG_LINE_CHARS = 500
_BACKTICK_RUN = re.compile(r"`+")


def escape_cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, ``|`` escaped.

    Backslashes are doubled first, so a cell that ends in one cannot escape the cell border.
    """
    flat = fmt.one_line(text)
    return flat.replace("\\", "\\\\").replace("|", "\\|")


def _table(header: list[str], rows: list[list[str]], align: list[str]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(escape_cell(c) for c in row) + " |" for row in rows]
    return lines


def _isolation(result: RunResult) -> str | None:
    values: dict[str, int] = {}
    for task in result.tasks:
        name = fmt.isolation_of(task)
        if name is not None:
            values[name] = values.get(name, 0) + 1
    return fmt.isolation_phrase(values)


def _statistics(result: RunResult) -> list[str]:
    s = result.summary
    rows = [
        ["Tasks", str(s.total_tasks)],
        ["Completed", str(s.success_count)],
        ["Failed", str(s.failure_count)],
        ["Cancelled", str(s.cancelled_count)],
        ["Timed out", str(s.timed_out_count)],
        ["Total duration", fmt.duration(s.total_duration_s)],
        ["Sequential duration", fmt.duration(s.sequential_duration_s)],
        ["Time saved", fmt.duration(s.time_saved_s)],
        ["Files changed", str(s.total_files_changed)],
        ["Total cost", fmt.total_cost(s.total_cost_usd)],
    ]
    isolation = _isolation(result)
    if isolation is not None:
        rows.append(["Isolation", isolation])
    setup = result.setup
    if setup is not None:
        took = fmt.duration(setup.get("duration_s"))
        code = setup.get("exit_code")
        rows.append(["Set-up", f"{setup.get('command')}: exit code {code}, {took}"])
    return _table(["Metric", "Value"], rows, [":---", "---:"])


def _lines(task: TaskResult) -> str:
    if task.lines_added is None and task.lines_removed is None:
        return fmt.UNKNOWN
    return f"+{task.lines_added or 0} / -{task.lines_removed or 0}"


def _task_row(task: TaskResult) -> list[str]:
    status = TaskStatus(task.status).value
    return [
        fmt.task_label(task),
        f"{fmt.status_symbol(status)} {fmt.status_label(status)}",
        fmt.duration(task.duration_s),
        fmt.UNKNOWN if task.files_changed is None else str(task.files_changed),
        _lines(task),
        fmt.cost(task.cost_usd),
        fmt.one_line(task.prompt, PROMPT_EXCERPT_CHARS),
        fmt.one_line(task.last_output, LAST_OUTPUT_EXCERPT_CHARS),
    ]


def _tasks(result: RunResult) -> list[str]:
    header = ["Task", "Status", "Duration", "Files", "Lines +/-", "Cost", "Prompt", "Last output"]
    align = [":---", ":---", "---:", "---:", "---:", "---:", ":---", ":---"]
    return _table(header, [_task_row(t) for t in result.tasks], align)


def _best_of(result: RunResult) -> list[str]:
    """One row per candidate of every best-of-N task: what its check said, which was chosen."""
    candidates = [t for t in result.tasks if t.candidate_of is not None]
    if not candidates:
        return []
    rows = [
        [
            t.candidate_of or "",
            fmt.task_label(t),
            fmt.status_label(TaskStatus(t.status).value),
            fmt.UNKNOWN if t.check_exit_code is None else f"exit {t.check_exit_code}",
            _lines(t),
            fmt.cost(t.cost_usd),
            t.selection_reason or fmt.UNKNOWN,
        ]
        for t in candidates
    ]
    header = ["Task", "Candidate", "Status", "Check", "Lines +/-", "Cost", "Selection"]
    align = [":---", ":---", ":---", ":---", "---:", "---:", ":---"]
    return ["", "## Best of N", "", *_table(header, rows, align)]


def _fenced(text: str) -> list[str]:
    # The fence must be longer than any backtick run inside, or the text could close it early.
    longest = max((len(m.group()) for m in _BACKTICK_RUN.finditer(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, text.rstrip("\n"), fence]


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str | None:
    """The last ``lines`` non-blank lines of the log at ``path`` (read from its end, each cut to
    a readable length); None if there is no such log or nothing in it."""
    try:
        with path.open("rb") as log:
            size = log.seek(0, 2)
            log.seek(max(0, size - _LOG_TAIL_BYTES))
            data = log.read()
    except OSError:
        return None
    text = data.decode("utf-8", errors="replace")
    if size > _LOG_TAIL_BYTES:
        # The first line read is probably cut; unless it is all there is (one huge line).
        _cut, newline, rest = text.partition("\n")
        text = rest if newline else text
    kept = [fmt.one_line(line, _LOG_LINE_CHARS) for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:]) or None


def _errors(result: RunResult) -> list[str]:
    lines: list[str] = []
    for task in result.tasks:
        status = TaskStatus(task.status)
        failed = status in (TaskStatus.FAILED, TaskStatus.TIMED_OUT)
        if not task.error and not failed:
            continue
        lines += ["", f"### {fmt.one_line(task.task_id)} ({fmt.status_label(status)})", ""]
        if task.exit_code is not None:
            lines += [f"Exit code: {task.exit_code}", ""]
        if task.error:
            lines += _fenced(task.error)
        log = RunLayout(Path(result.run_dir)).task(task.task_id).execution_log
        tail = log_tail(log) if failed else None
        if tail is not None:
            where = f"{task.task_id}/{EXECUTION_LOG}"
            lines += ["", f"Last lines of `{where}`:", "", *_fenced(tail)]
    return ["", "## Errors", *lines] if lines else []


def _conflicts(result: RunResult) -> list[str]:
    """Which tasks' changes collide (see ``result.conflicts()``); only worth a section, and its
    cost, when at least two completed tasks changed something."""
    changed = sum(
        1 for t in result.tasks if t.status == TaskStatus.COMPLETED and (t.files_changed or 0) > 0
    )
    if changed < 2:
        return []
    from .land.conflicts import markdown_section

    return markdown_section(result)


def render_report(result: RunResult) -> str:
    """The run's Markdown summary: statistics, one table row per task, then for each task that
    failed its error and the end of its log."""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [
        "# Parallel Run Summary",
        "",
        f"**Run ID:** {escape_cell(result.run_id)}  ",
        f"**Outcome:** {escape_cell(_outcome(result))}  ",
        f"**Generated:** {generated}",
        "",
        "## Statistics",
        "",
        *_statistics(result),
        "",
        "## Tasks",
        "",
        *_tasks(result),
        *_conflicts(result),
        *_best_of(result),
        *_errors(result),
    ]
    return "\n".join(lines) + "\n"



def _outcome(result: RunResult) -> str:
    counts = result.counts
    return fmt.run_outcome(fmt.end_state(counts), counts)
