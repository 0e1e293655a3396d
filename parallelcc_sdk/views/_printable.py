"""Text from tasks made safe to show on a terminal or in a log: no escape sequence or control
character of the agent's output may move the cursor, recolour the screen or break a line."""

from __future__ import annotations

import re

# CSI (colours, cursor moves), OSC (titles, links; ended by BEL or ST), and two-byte escapes.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
# C0 and C1 controls and DEL; a tab or a line break becomes a space, the rest disappears.
_SPACES = re.compile(r"[\t\n\r\x0b\x0c]")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` without escape sequences or control characters, on one line."""
    return _CONTROLS.sub("", _SPACES.sub(" ", _ESCAPES.sub("", text)))
