"""A task's diff with colours: HTML for notebooks (pygments when installed), text for terminals.

Long diffs are cut at ``MAX_LINES`` with a line saying how much is left and where the whole patch
is, so showing a task never floods a notebook, whatever the task changed.
"""

from __future__ import annotations

from html import escape

__all__ = ["MAX_LINES", "cut", "diff_html", "diff_rich"]

MAX_LINES = 2000
_PRE = (
    "font-family: var(--jp-code-font-family, monospace); font-size: 12px; line-height: 1.35; "
    "margin: 0; padding: 6px 8px; overflow-x: auto; white-space: pre; background: #fafafa; "
    "border: 1px solid #eceff1; border-radius: 3px;"
)
# Used when pygments is missing: the colours of its default style for diffs.
_LINE_COLORS = (
    ("+++", "color: #000080; font-weight: bold;"),
    ("---", "color: #a00000; font-weight: bold;"),
    ("diff ", "font-weight: bold;"),
    ("@@", "color: #800080; font-weight: bold;"),
    ("+", "color: #00a000;"),
    ("-", "color: #a00000;"),
)


def cut(diff: str, max_lines: int = MAX_LINES) -> tuple[str, int]:
    """The first ``max_lines`` lines of ``diff`` and how many lines were left out."""
    lines = diff.splitlines(keepends=True)
    if len(lines) <= max_lines:
        return diff, 0
    return "".join(lines[:max_lines]), len(lines) - max_lines


def diff_html(diff: str) -> str:
    """``diff`` as a ``<pre>`` with inline colours (frontends drop ``<style>`` blocks)."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import DiffLexer
    except ImportError:
        return f'<pre style="{_PRE}">{_plain_lines(diff)}</pre>'
    body = highlight(diff, DiffLexer(), HtmlFormatter(noclasses=True, nowrap=True))
    return f'<pre style="{_PRE}">{body}</pre>'


def _plain_lines(diff: str) -> str:
    out = []
    for line in diff.splitlines():
        style = next((s for prefix, s in _LINE_COLORS if line.startswith(prefix)), "")
        text = escape(line)
        out.append(f'<span style="{style}">{text}</span>' if style else text)
    return "\n".join(out)


def diff_rich(diff: str) -> object:
    """A rich renderable of ``diff`` (only call when rich is installed)."""
    from rich.syntax import Syntax

    return Syntax(diff, "diff", theme="ansi_dark", word_wrap=False, background_color="default")
