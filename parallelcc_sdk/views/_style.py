"""Colours of task statuses (the widget, the HTML reprs and the plots) and the size limits of the
HTML view. Symbols and words live in :mod:`parallelcc_sdk.views.format`."""

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

# Above this many tasks the per-task rows collapse into a strip of squares and a table of the
# running tasks and the problems (see html.render_html).
ROW_CAP: Final[int] = 25
# Above this many tasks the strip is left out: the bar shows the same proportions, and one square
# per task would make every update of the widget grow with the run.
STRIP_CAP: Final[int] = 1000
