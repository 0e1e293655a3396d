"""The formatters and status styles the terminal display and the command line use.

They come from the shared formatter modules; importing them here, in one place, keeps those
modules free to move without touching every renderer.
"""

from __future__ import annotations

from ._format import cost, duration, excerpt, last_line
from ._style import STATUS_SYMBOLS

__all__ = ["STATUS_SYMBOLS", "cost", "duration", "excerpt", "last_line"]
