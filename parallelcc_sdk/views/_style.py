"""Colours and symbols for task statuses, shared by the widget, the HTML snapshot and the plots."""

from __future__ import annotations

from typing import Final

# Material-like hues that stay readable on both light and dark notebook themes.
STATUS_COLORS: Final[dict[str, str]] = {
    "pending": "#b0bec5",
    "running": "#1e88e5",
    "completed": "#43a047",
    "failed": "#e53935",
    "cancelled": "#757575",
    "timed_out": "#fb8c00",
}

STATUS_SYMBOLS: Final[dict[str, str]] = {
    "pending": "·",
    "running": "▶",
    "completed": "✓",
    "failed": "✗",
    "cancelled": "⊘",
    "timed_out": "⏱",
}

# Above this many tasks the per-task rows collapse into one compact table (see widget.py).
ROW_CAP: Final[int] = 25
