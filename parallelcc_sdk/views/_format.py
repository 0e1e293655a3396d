"""Small, pure formatting helpers shared by every renderer."""

from __future__ import annotations

import math


def duration(seconds: float | None) -> str:
    """``4.2 s``, ``3 m 05 s``, ``1 h 02 m``; empty for unknown."""
    if seconds is None or math.isnan(seconds):
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"


def cost(usd: float | None) -> str:
    """``$0.0123`` below a dollar (agent costs are often cents), ``$12.34`` above; "" if unknown."""
    if usd is None or math.isnan(usd):
        return ""
    return f"${usd:.4f}" if usd < 1 else f"${usd:,.2f}"


def excerpt(text: str | None, limit: int) -> str:
    """The first line of ``text``, cut to ``limit`` characters with an ellipsis."""
    if not text:
        return ""
    line = " ".join(text.strip().split())
    return line if len(line) <= limit else line[: max(limit - 1, 0)] + "…"


def last_line(text: str | None) -> str | None:
    """The last non-blank line of a chunk of output, or None."""
    if not text:
        return None
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return None
