"""The exit codes of ``parallelcc``; scripts depend on them."""

from __future__ import annotations

import signal
from typing import Final

OK: Final = 0
"""Every task completed (``run``), or the command did what it was asked."""
TASKS_NOT_COMPLETED: Final = 1
"""Some task failed, timed out or was cancelled."""
NOT_LANDED: Final = 1
"""``apply`` or ``push``: a task's changes do not apply (nothing was changed), or the push was
refused."""
USAGE: Final = 2
"""Bad usage or input: nothing was started."""
SIGINT: Final = 128 + signal.SIGINT
"""Stopped by Ctrl-C: every sandbox closed, the report written (130)."""
SIGTERM: Final = 128 + signal.SIGTERM
"""Stopped by SIGTERM: every sandbox closed, the report written (143)."""


def for_signal(signum: int) -> int:
    """The shell's convention: 128 + the signal's number."""
    return 128 + signum
