"""The one HTML rendering of a run: the live widget's body, the snapshot a notebook keeps when
the run ends, and the HTML repr of a handle and of a :class:`~parallelcc_sdk.results.RunResult`.

Only inline styles: notebook frontends strip ``<style>`` from untrusted outputs, so a reopened
notebook would otherwise lose its colours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING

from ..models import TaskResult
from . import format as fmt
from ._state import RunState
from ._style import ROW_CAP, STATUS_COLORS, STRIP_CAP

if TYPE_CHECKING:
    from ..results import RunResult

__all__ = ["render_html", "result_html", "title_html"]

_FONT = "font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 12px;"
_MUTED = "color: #78909c;"
_CELL = "padding: 1px 8px 1px 0; text-align: left; white-space: nowrap; vertical-align: top;"
_SQUARE = "display: inline-block; width: 8px; height: 8px; margin: 0 1px 1px 0;"
_MONO = "font-family: var(--jp-code-font-family, monospace); font-size: 11px;"
# Frontends style <code> with `white-space: pre-wrap`, which beats a nowrap inherited from the
# cell: an id like `t07-fails` would break at its hyphen. Say it on the element itself.
_ID = "white-space: nowrap;"
# One click selects the whole path, ready to copy.
_PATH = "user-select: all; word-break: break-all;"


def _badge(status: str, n: int | None = None) -> str:
    color = STATUS_COLORS.get(status, "#9e9e9e")
    text = fmt.status_label(status) if n is None else f"{n} {fmt.status_label(status)}"
    return (
        f'<span style="color: {color}; font-weight: 600; white-space: nowrap;">'
        f"{escape(fmt.status_symbol(status))} {escape(text)}</span>"
    )


def title_html(state: RunState) -> str:
    """``parallelcc  run <id> · 6 tasks · isolation bubblewrap``."""
    facts = [f"run {state.run_id}", f"{state.total} task{'s' if state.total != 1 else ''}"]
    if state.isolation is not None:
        facts.append(f"isolation {state.isolation}")
    return (
        '<div class="pcc-title"><span style="font-weight: 600;">parallelcc</span> '
        f'<span style="{_MUTED}">{escape(" · ".join(facts))}</span></div>'
    )


def _facts(state: RunState) -> list[str]:
    """Times, cost and files: the run so far, or its totals once it ended."""
    summary = state.summary
    if not state.finished or summary is None:
        facts = [fmt.duration(state.elapsed_s)]
        if state.cost_usd is not None:
            facts.append(fmt.cost(state.cost_usd))
        if state.cancel_requested:
            facts.append("cancelling…")
        return facts
    files = summary.total_files_changed
    return [
        f"wall clock {fmt.duration(summary.total_duration_s)}",
        f"sequential {fmt.duration(summary.sequential_duration_s)}",
        f"saved {fmt.duration(summary.time_saved_s)}",
        f"{files} file{'s' if files != 1 else ''} changed",
        f"cost {fmt.total_cost(summary.total_cost_usd)}",
    ]


def _header(state: RunState) -> str:
    counts = state.counts
    badges = " ".join(
        f'<span style="margin-right: 10px;">{_badge(status, counts[status])}</span>'
        for status in fmt.DISPLAY_ORDER
        if counts[status]
    )
    facts = " · ".join(escape(f) for f in _facts(state))
    return (
        f'<div class="pcc-summary"><b class="pcc-outcome">{escape(state.headline)}</b>'
        f'<span style="margin: 0 10px; {_MUTED}">{facts}</span>{badges}</div>'
    )


def _bar(state: RunState) -> str:
    """A stacked bar, one coloured segment per status; what is left (pending) is the track."""
    total = max(state.total, 1)
    counts = state.counts
    segments = "".join(
        f'<div title="{escape(fmt.status_label(status))}: {counts[status]}" '
        f'style="width: {100 * counts[status] / total:.3f}%; '
        f'background: {STATUS_COLORS[status]};"></div>'
        for status in fmt.DISPLAY_ORDER
        if counts[status] and status != "pending"
    )
    return (
        '<div class="pcc-bar" style="display: flex; height: 10px; border-radius: 3px; '
        f'overflow: hidden; background: {STATUS_COLORS["pending"]}40; margin: 4px 0 6px 0; '
        f'max-width: 720px;">{segments}</div>'
    )


def _folder(state: RunState) -> str:
    if state.run_dir is None:
        return ""
    return (
        f'<div class="pcc-folder" style="{_MUTED} margin-bottom: 4px;">run folder '
        f'<code style="{_PATH}">{escape(state.run_dir)}</code></div>'
    )


def _cancel_hint(state: RunState) -> str:
    if state.finished or not state.cancel_blocked:
        return ""
    return (
        f'<div class="pcc-hint" style="{_MUTED} margin-bottom: 4px;">This cell waits in '
        "<code>pcc.run(…)</code> or <code>handle.result()</code>, so the kernel cannot take a "
        "click: interrupt the kernel (■) to cancel the run. To keep the button, start runs with "
        "<code>handle = pcc.submit(…)</code> and <code>await handle</code>.</div>"
    )


def _row(state: RunState, task: TaskResult, now: datetime) -> str:
    status = str(task.status)
    note = task.error or state.last_output.get(task.task_id)
    cells = [
        _badge(status),
        f'<code style="{_ID}">{escape(fmt.task_label(task))}</code>',
        f'<span title="{escape(fmt.one_line(task.prompt, 500))}">'
        f"{escape(fmt.one_line(task.prompt, 48))}</span>",
        f'<span style="{_MUTED}">{escape(state.phase_of(task))}</span>',
        escape(fmt.duration(state.task_elapsed_s(task, now))),
        fmt.UNKNOWN if task.files_changed is None else str(task.files_changed),
        escape(fmt.cost(task.cost_usd)),
        f'<span style="{_MONO}{_MUTED}">{escape(fmt.one_line(note, 80))}</span>',
    ]
    if state.show_isolation_column:
        cells.insert(5, escape(fmt.isolation_of(task) or ""))
    return "<tr>" + "".join(f'<td style="{_CELL}">{c}</td>' for c in cells) + "</tr>"


def _table(state: RunState, rows: list[str]) -> str:
    head = ["status", "task", "prompt", "phase", "elapsed", "files", "cost", "last output"]
    if state.show_isolation_column:
        head.insert(5, "isolation")
    th = "".join(f'<th style="{_CELL} {_MUTED} font-weight: 500;">{h}</th>' for h in head)
    return (
        '<table class="pcc-tasks" style="border-collapse: collapse; margin: 0;">'
        f"<thead><tr>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _strip(state: RunState) -> str:
    """One small square per task, so a large run is visible at a glance."""
    if state.total > STRIP_CAP:
        return ""  # the bar says the same; thousands of squares would flood every update
    cells = "".join(
        f'<span title="{escape(t.task_id)}: {escape(fmt.status_label(t.status))}" '
        f'style="{_SQUARE} background: {STATUS_COLORS[str(t.status)]};"></span>'
        for t in state.tasks.values()
    )
    return f'<div class="pcc-strip" style="max-width: 720px; line-height: 8px;">{cells}</div>'


def _compact(state: RunState, now: datetime) -> str:
    """Above the row cap: the strip, then only the tasks worth reading (running, then problems)."""
    shown: list[TaskResult] = []
    for task in state.with_status("running", "failed", "timed_out", "cancelled"):
        if len(shown) == ROW_CAP:
            break
        shown.append(task)
    hidden = state.total - len(shown)
    note = (
        f'<div style="{_MUTED}">{hidden} more task{"s" if hidden != 1 else ""} not listed '
        "(see <code>.df</code>)</div>"
        if hidden
        else ""
    )
    table = _table(state, [_row(state, t, now) for t in shown]) if shown else ""
    return _strip(state) + table + note


def render_html(state: RunState, *, now: datetime | None = None, title: bool = True) -> str:
    """The whole view: title (unless the widget shows its own), header, bar, run folder, and
    the rows (or the compact table above the row cap)."""
    now = now or datetime.now(UTC)
    if state.total <= ROW_CAP:
        body = _table(state, [_row(state, t, now) for t in state.tasks.values()])
    else:
        body = _compact(state, now)
    parts = [
        title_html(state) if title else "",
        _header(state),
        _bar(state),
        _cancel_hint(state),
        _folder(state),
        body,
    ]
    return f'<div class="pcc-run" style="{_FONT}">{"".join(parts)}</div>'


def result_html(result: RunResult) -> str:
    """The HTML repr of a finished run."""
    return render_html(RunState.from_result(result))
