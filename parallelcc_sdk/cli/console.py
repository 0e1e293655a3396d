"""The rich console the commands print with: colours on a terminal, plain text anywhere else."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console

from ..views._mode import is_terminal

# Wide enough for any row; tables are as wide as their content, never padded to it.
_UNLIMITED = 10_000


def console_for(stream: TextIO) -> Console:
    """A console on ``stream``. Off a terminal nothing is wrapped or cut (a path or a table row in
    a log or a file must stay whole) and rich writes no escape codes."""
    if is_terminal(stream):
        return Console(file=stream, highlight=False)
    return Console(file=stream, highlight=False, soft_wrap=True, width=_UNLIMITED)
