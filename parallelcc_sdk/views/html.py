"""Renders a :class:`RunState` as HTML (live widget body and static snapshot) and as plain text.

Only inline styles: notebook frontends strip ``<style>`` from untrusted outputs, so a reopened
notebook would otherwise lose its colours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from ..models import STATUS_ORDER, TaskResult
from . import _format as fmt
from ._state import RunState
from ._style import ROW_CAP, STATUS_COLORS, STATUS_SYMBOLS

_FONT = "font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 12px;"
_MUTED = "color: #78909c;"
_CELL = "padding: 1px 8px 1px 0; text-align: left; white-space: nowrap; vertical-align: top;"
_SQUARE = "display: inline-block; width: 8px; height: 8px; margin: 0 1px 1px 0;"
_MONO = "font-family: var(--jp-code-font-family, monospace); font-size: 11px;"


def status_line(state: RunState) -> str:
    """One line of text: ``4/6 done · completed 3 · failed 1 · running 2 · 12.3 s · $0.05``."""
    parts = [f"{state.done_count}/{state.total} done"]
    parts += [f"{status} {n}" for status, n in state.counts.items() if n]
    parts.append(fmt.duration(state.elapsed_s))
    if state.cost_usd is not None:
        parts.append(fmt.cost(state.cost_usd))
    if state.finished and state.status != "finished":
        parts.append(state.status)
    return " · ".join(parts)


def plain_summary(state: RunState) -> str:
    """The ``text/plain`` of a finished or unwidgeted handle."""
    return f"parallelcc run {state.run_id}: {status_line(state)}"


def _badge(status: str) -> str:
    color = STATUS_COLORS.get(status, "#9e9e9e")
    symbol = STATUS_SYMBOLS.get(status, "")
    return (
        f'<span style="color: {color}; font-weight: 600; white-space: nowrap;">'
        f"{escape(symbol)} {escape(status)}</span>"
    )


def _bar(state: RunState) -> str:
    """A stacked bar: one coloured segment per status, in status order."""
    total = max(state.total, 1)
    segments = "".join(
        f'<div title="{escape(status)}: {n}" style="width: {100 * n / total:.3f}%; '
        f'background: {STATUS_COLORS[status]};"></div>'
        for status, n in state.counts.items()
        if n and status != "pending"
    )
    return (
        '<div style="display: flex; height: 10px; border-radius: 3px; overflow: hidden; '
        f'background: {STATUS_COLORS["pending"]}40; margin: 4px 0 6px 0; max-width: 720px;">'
        f"{segments}</div>"
    )


def _header(state: RunState) -> str:
    counts = " ".join(
        f'<span style="margin-right: 10px;">{_badge(status)} {n}</span>'
        for status, n in state.counts.items()
        if n
    )
    extras = [fmt.duration(state.elapsed_s)]
    if state.cost_usd is not None:
        extras.append(fmt.cost(state.cost_usd))
    if state.finished:
        extras.append("run " + state.status)
    elif state.cancel_requested:
        extras.append("cancelling…")
    extra = " · ".join(escape(e) for e in extras if e)
    return (
        f'<div class="pcc-summary"><b class="pcc-done">{state.done_count}/{state.total} done</b>'
        f'<span style="margin: 0 10px; {_MUTED}">{extra}</span>{counts}</div>'
    )


def _row(state: RunState, task: TaskResult, now: datetime) -> str:
    status = str(task.status)
    cells = [
        _badge(status),
        f"<code>{escape(task.task_id)}</code>",
        f'<span title="{escape(fmt.excerpt(task.prompt, 500))}">'
        f"{escape(fmt.excerpt(task.prompt, 48))}</span>",
        f'<span style="{_MUTED}">{escape(state.phase_of(task))}</span>',
        escape(fmt.duration(state.task_elapsed_s(task, now))),
        "" if task.files_changed is None else str(task.files_changed),
        escape(fmt.cost(task.cost_usd)),
        f'<span style="{_MONO}{_MUTED}">'
        f"{escape(fmt.excerpt(task.error or state.last_output.get(task.task_id), 80))}</span>",
    ]
    return "<tr>" + "".join(f'<td style="{_CELL}">{c}</td>' for c in cells) + "</tr>"


_HEAD = ("status", "task", "prompt", "phase", "elapsed", "files", "cost", "last output")


def _table(rows: list[str], head: tuple[str, ...] = _HEAD) -> str:
    th = "".join(f'<th style="{_CELL} {_MUTED} font-weight: 500;">{h}</th>' for h in head)
    return (
        '<table class="pcc-tasks" style="border-collapse: collapse; margin: 0;">'
        f"<thead><tr>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _strip(state: RunState) -> str:
    """One small square per task, so a large run is visible at a glance."""
    cells = "".join(
        f'<span title="{escape(t.task_id)}: {escape(str(t.status))}" style="{_SQUARE} '
        f'background: {STATUS_COLORS[str(t.status)]};"></span>'
        for t in state.tasks.values()
    )
    return f'<div class="pcc-strip" style="max-width: 720px; line-height: 8px;">{cells}</div>'


def _compact(state: RunState, now: datetime) -> str:
    """Above the row cap: the strip, then only the tasks worth reading (running, then problems)."""
    order = {s: i for i, s in enumerate(("running", "failed", "timed_out", "cancelled"))}
    notable = sorted(
        (t for t in state.tasks.values() if str(t.status) in order),
        key=lambda t: order[str(t.status)],
    )
    shown = notable[:ROW_CAP]
    rows = [_row(state, t, now) for t in shown]
    hidden = len(state.tasks) - len(shown)
    note = (
        f'<div style="{_MUTED}">{hidden} more task{"s" if hidden != 1 else ""} '
        "(pending or completed) not listed</div>"
        if hidden
        else ""
    )
    table = _table(rows) if rows else ""
    return _strip(state) + table + note


def render_html(state: RunState, *, now: datetime | None = None) -> str:
    """The whole progress body: header, bar, and rows (or the compact table above the cap)."""
    now = now or datetime.now(UTC)
    if state.total <= ROW_CAP:
        body = _table([_row(state, t, now) for t in state.tasks.values()])
    else:
        body = _compact(state, now)
    return f'<div class="pcc-run" style="{_FONT}">{_header(state)}{_bar(state)}{body}</div>'


def counts_table(counts: dict[str, int]) -> str:
    """A one-row HTML table of counts by status, in status order (used by result summaries)."""
    head = "".join(f'<th style="{_CELL}">{_badge(s)}</th>' for s in STATUS_ORDER)
    row = "".join(f'<td style="{_CELL}">{counts.get(s, 0)}</td>' for s in STATUS_ORDER)
    return f'<table style="border-collapse: collapse;"><tr>{head}</tr><tr>{row}</tr></table>'


__all__ = ["counts_table", "plain_summary", "render_html", "status_line"]
