"""One task in detail: its record, the agent's turns and tool calls, and its diff.

``result.show("task-3")`` returns a :class:`TaskView`: a notebook shows its HTML, a terminal its
text (``print(view)``, or ``view.print()`` for colours through rich when it is installed), and
``parallelcc show RUN_DIR --task task-3`` prints the same text. A task without structured events
(a plain command) shows the end of its log instead of turns.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..land._files import EVENTS_FILE, LOG_FILE, PATCH_FILE, task_dir
from ..models import TaskResult, TaskStatus
from ..report import log_tail
from . import format as fmt
from .diff import cut, diff_html, diff_rich
from .html import _badge
from .transcript import Attempt, Note, ToolCall, Transcript, Turn, read_transcript

if TYPE_CHECKING:
    from ..results import RunResult

__all__ = ["TaskView", "print_task"]

_FONT = "font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 12px;"
_MUTED = "color: #78909c;"
_MONO = "font-family: var(--jp-code-font-family, monospace); font-size: 12px;"
_BLOCK = f"{_MONO} white-space: pre-wrap; margin: 2px 0 4px 0;"
# How much of a tool's input or result is shown: enough to follow the work, bounded whatever
# the tool read or printed (the whole of it is in events.jsonl).
_HTML_CHARS = 20_000
_TEXT_LINES = 8
_TEXT_CHARS = 800
_LOG_LINES = 40


@dataclass(frozen=True)
class TaskView:
    """Everything there is to see about one task (see the module docstring)."""

    task: TaskResult
    folder: Path
    transcript: Transcript | None
    diff: str | None
    log: str | None

    @classmethod
    def of(cls, result: RunResult, task_id: str) -> TaskView:
        """The view of ``task_id`` of a finished run (a ``KeyError`` if it has no such task)."""
        return cls.from_task(result[task_id], task_dir(result, task_id))

    @classmethod
    def from_task(cls, task: TaskResult, folder: Path) -> TaskView:
        """The view of ``task`` whose files are in ``folder``; the task may still be running
        (its events and log are read as far as they are written)."""
        try:
            diff: str | None = (folder / PATCH_FILE).read_bytes().decode("utf-8", "replace")
        except OSError:
            diff = None
        transcript = read_transcript(folder / EVENTS_FILE)
        log = None if transcript is not None else log_tail(folder / LOG_FILE, _LOG_LINES)
        return cls(task, folder, transcript, diff or None, log)

    # -- text -------------------------------------------------------------------------------------

    def lines(self) -> Iterator[tuple[str, str]]:
        """The text view as ``(line, style)`` pairs; the style is a rich style name or ""."""
        task = self.task
        status = TaskStatus(task.status).value
        yield (f"{task.task_id}  {fmt.status_symbol(status)} {fmt.status_label(status)}"
               f"  ·  {' · '.join(_facts(task))}", "bold")
        yield (f"Folder: {self.folder}", "dim")
        yield ("Prompt:", "bold")
        yield from ((f"  {line}", "") for line in task.prompt.splitlines() or [""])
        if task.error:
            yield (f"Error: {fmt.one_line(task.error)}", "red")
        yield ("", "")
        if self.transcript is not None:
            yield from _transcript_lines(self.transcript)
        elif self.log:
            yield (f"Last lines of {LOG_FILE}:", "bold")
            yield from ((f"  {line}", "") for line in self.log.splitlines())
        else:
            yield ("The agent reported no events and printed nothing.", "dim")
        yield ("", "")
        yield (f"Diff ({PATCH_FILE}):" if self.diff else "No changes.", "bold")

    def _diff_text(self) -> tuple[str, int]:
        return cut(self.diff or "")

    def to_text(self) -> str:
        """The view as plain text."""
        text = "\n".join(line for line, _style in self.lines())
        diff, left_out = self._diff_text()
        if diff:
            text += "\n" + diff.rstrip("\n")
        if left_out:
            text += f"\n… {left_out} more lines in {self.folder / PATCH_FILE}"
        return text + "\n"

    def print(self, file: TextIO | None = None) -> None:
        """Prints the view: in colour through rich when it is installed and ``file`` is a
        terminal, as plain text otherwise."""
        stream = file if file is not None else sys.stdout
        if not _is_terminal(stream):
            stream.write(self.to_text())
            return
        try:
            from rich.console import Console
            from rich.text import Text
        except ImportError:
            stream.write(self.to_text())
            return
        console = Console(file=stream, highlight=False)
        for line, style in self.lines():
            console.print(Text(line, style=style or ""), soft_wrap=True)
        diff, left_out = self._diff_text()
        if diff:
            console.print(diff_rich(diff.rstrip("\n")))
        if left_out:
            console.print(Text(f"… {left_out} more lines in {self.folder / PATCH_FILE}",
                               style="dim"))

    def __str__(self) -> str:
        return self.to_text()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    # -- HTML -------------------------------------------------------------------------------------

    def _repr_html_(self) -> str:
        task = self.task
        parts = [
            f'<div style="margin-bottom: 4px;"><code style="font-weight: 600;">'
            f"{escape(task.task_id)}</code> {_badge(str(task.status))} "
            f'<span style="{_MUTED}">{escape(" · ".join(_facts(task)))}</span></div>',
            f'<div style="{_BLOCK}">{escape(task.prompt)}</div>',
        ]
        if task.error:
            parts.append(f'<div style="{_BLOCK} color: #c62828;">{escape(task.error)}</div>')
        parts.append(_heading("Transcript"))
        if self.transcript is not None:
            parts.append(_transcript_html(self.transcript))
        elif self.log:
            parts.append(f'<div style="{_MUTED}">No structured events; the last lines of '
                         f"<code>{LOG_FILE}</code>:</div><pre style=\"{_BLOCK}\">"
                         f"{escape(self.log)}</pre>")
        else:
            parts.append(f'<div style="{_MUTED}">The agent reported no events and printed '
                         "nothing.</div>")
        parts.append(_heading("Diff"))
        if self.diff:
            diff, left_out = self._diff_text()
            parts.append(diff_html(diff))
            if left_out:
                parts.append(f'<div style="{_MUTED}">… {left_out} more lines in '
                             f"<code>{escape(str(self.folder / PATCH_FILE))}</code></div>")
        else:
            parts.append(f'<div style="{_MUTED}">No changes.</div>')
        return f'<div class="pcc-task" style="{_FONT}">{"".join(parts)}</div>'


def print_task(run_dir: str | Path, task_id: str, file: TextIO | None = None) -> None:
    """``parallelcc show RUN_DIR --task TASK``: prints one task of a run folder."""
    from ..results import load_run

    load_run(run_dir).show(task_id).print(file)


# -- shared pieces ------------------------------------------------------------------------------


def _facts(task: TaskResult) -> list[str]:
    facts = [fmt.duration(task.duration_s), fmt.cost(task.cost_usd)]
    if task.num_turns is not None:
        facts.append(f"{task.num_turns} turn{'s' if task.num_turns != 1 else ''}")
    if task.files_changed is not None:
        lines = f" (+{task.lines_added or 0} -{task.lines_removed or 0})"
        plural = "s" if task.files_changed != 1 else ""
        facts.append(f"{task.files_changed} file{plural} changed{lines}")
    return facts


def _turn_facts(turn: Turn) -> str:
    facts = [f"turn {turn.number}"]
    if turn.subagent:
        facts.append("subagent")
    if turn.cost_usd is not None:
        facts.append(f"≈{fmt.cost(turn.cost_usd)}")
    tokens = turn.input_tokens + turn.cache_read_tokens + turn.cache_creation_tokens
    if tokens:
        facts.append(f"{tokens:,} tokens in")
    return " · ".join(facts)


def _attempt_heading(attempt: Attempt, number: int, total: int) -> str:
    facts = [f"attempt {number} of {total}"] if total > 1 else []
    if attempt.model:
        facts.append(attempt.model)
    turns = attempt.num_turns if attempt.num_turns is not None else len(attempt.turns)
    facts.append(f"{turns} turn{'s' if turns != 1 else ''}")
    if attempt.cost_usd is not None:
        facts.append(fmt.cost(attempt.cost_usd))
    return ", ".join(facts)


def _ending(attempt: Attempt) -> tuple[str, bool]:
    if not attempt.ended:
        return "no result: the agent was stopped or is still running", True
    if attempt.succeeded:
        return f"finished: {attempt.final_text or ''}".rstrip(": "), False
    return f"failed: {attempt.error}", True


def _tool_input(call: ToolCall) -> str:
    args = call.input
    if call.name == "Bash" and isinstance(args.get("command"), str):
        return str(args["command"])
    if call.name == "Edit" and isinstance(args.get("old_string"), str):
        return f"- {args.get('old_string')}\n+ {args.get('new_string')}"
    if call.name == "Write" and isinstance(args.get("content"), str):
        return str(args["content"])
    return json.dumps(args, indent=2, ensure_ascii=False)


def _clip_text(text: str) -> str:
    lines = text.splitlines()
    kept = "\n".join(lines[:_TEXT_LINES])
    if len(kept) > _TEXT_CHARS:
        kept = kept[:_TEXT_CHARS].rstrip() + "…"
    elif len(lines) > _TEXT_LINES:
        kept += f"\n… {len(lines) - _TEXT_LINES} more lines"
    return kept


def _transcript_lines(transcript: Transcript) -> Iterator[tuple[str, str]]:
    total = len(transcript.attempts)
    for number, attempt in enumerate(transcript.attempts, 1):
        yield (f"Transcript ({_attempt_heading(attempt, number, total)})", "bold")
        for entry in attempt.entries:
            if isinstance(entry, Note):
                yield (f"  ! {fmt.one_line(entry.text)}", "yellow" if not entry.is_error else "red")
                continue
            yield (f"  {_turn_facts(entry)}", "cyan")
            for text in entry.texts:
                yield from ((f"    {line}", "") for line in text.splitlines())
            for call in entry.tool_calls:
                yield (f"    ▸ {call.label}", "bold")
                if call.result is not None:
                    style = "red" if call.is_error else "dim"
                    for i, line in enumerate(_clip_text(call.result).splitlines() or [""]):
                        yield (f"      {'→' if i == 0 else ' '} {line}", style)
        text, failed = _ending(attempt)
        yield (f"  {'✗' if failed else '✓'} {fmt.one_line(text, 300)}",
               "red" if failed else "green")
        yield ("", "")


def _heading(text: str) -> str:
    return f'<div style="font-weight: 600; margin: 10px 0 4px 0;">{escape(text)}</div>'


def _clip_html(text: str) -> str:
    if len(text) <= _HTML_CHARS:
        return escape(text)
    return escape(text[:_HTML_CHARS]) + f"\n… {len(text) - _HTML_CHARS:,} more characters"


def _call_html(call: ToolCall) -> str:
    color = "#c62828" if call.is_error else "#37474f"
    result = (
        f'<div style="{_MUTED}">result{" (error)" if call.is_error else ""}</div>'
        f'<pre style="{_BLOCK} color: {color};">{_clip_html(call.result)}</pre>'
        if call.result is not None else f'<div style="{_MUTED}">no result</div>'
    )
    return (
        f'<details style="margin: 2px 0 2px 12px;"><summary style="cursor: pointer;">'
        f'<span style="{_MONO}">{escape(call.label)}</span></summary>'
        f'<div style="margin-left: 14px;"><div style="{_MUTED}">input</div>'
        f'<pre style="{_BLOCK}">{_clip_html(_tool_input(call))}</pre>{result}</div></details>'
    )


def _turn_html(turn: Turn) -> str:
    texts = "".join(
        f'<div style="white-space: pre-wrap; margin: 2px 0 2px 12px;">{escape(t)}</div>'
        for t in turn.texts
    )
    thinking = "".join(
        f'<details style="margin: 2px 0 2px 12px;"><summary style="{_MUTED} cursor: pointer;">'
        f'thinking</summary><div style="{_BLOCK} {_MUTED}">{_clip_html(t)}</div></details>'
        for t in turn.thinking
    )
    calls = "".join(_call_html(c) for c in turn.tool_calls)
    return (
        f'<div style="margin: 6px 0;"><div style="{_MUTED}">{escape(_turn_facts(turn))}</div>'
        f"{thinking}{texts}{calls}</div>"
    )


def _transcript_html(transcript: Transcript) -> str:
    parts: list[str] = []
    total = len(transcript.attempts)
    for number, attempt in enumerate(transcript.attempts, 1):
        parts.append(f'<div style="{_MUTED}">{escape(_attempt_heading(attempt, number, total))}'
                     "</div>")
        for entry in attempt.entries:
            if isinstance(entry, Note):
                color = "#c62828" if entry.is_error else "#ef6c00"
                parts.append(f'<div style="color: {color}; margin: 2px 0;">'
                             f"{escape(entry.text)}</div>")
            else:
                parts.append(_turn_html(entry))
        text, failed = _ending(attempt)
        color = "#c62828" if failed else "#2e7d32"
        parts.append(f'<div style="color: {color}; white-space: pre-wrap; margin: 4px 0;">'
                     f"{'✗' if failed else '✓'} {escape(text)}</div>")
    return "".join(parts)


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False
