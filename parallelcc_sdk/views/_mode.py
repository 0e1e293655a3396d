"""Which progress renderer fits where the code runs: widgets, text or nothing."""

from __future__ import annotations

import os
import sys
from typing import Literal

from ..errors import ValidationError

Mode = Literal["widgets", "text", "off"]
ENV_VAR = "PARALLELCC_PROGRESS"
_CHOICES = ("auto", "widgets", "text", "off")


def resolve_mode(mode: object) -> Mode:
    """``mode`` is ``"auto" | "widgets" | "text" | "off" | True | False``.

    ``PARALLELCC_PROGRESS`` replaces ``"auto"`` (and ``True``), never an explicit choice, so a
    notebook's code can stay as a user wrote it while CI or VS Code users switch the renderer.
    Asking for widgets where they cannot render gives text instead of an error.
    """
    if mode is None or mode is False:
        return "off"
    if mode is True:
        mode = "auto"
    if not isinstance(mode, str) or mode.strip().lower() not in _CHOICES:
        raise ValidationError(
            f"progress={mode!r} is not a progress mode; use one of "
            '"auto", "widgets", "text", "off", True or False.'
        )
    choice = mode.strip().lower()
    if choice == "auto":
        choice = _env_choice() or "auto"
    if choice == "off":
        return "off"
    if choice == "text":
        return "text"
    if in_widget_kernel():
        return "widgets"
    if choice == "widgets" or in_kernel():
        return "text"
    return "text" if _stderr_is_tty() else "off"


def _env_choice() -> str | None:
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if not value:
        return None
    if value not in _CHOICES:
        raise ValidationError(
            f"{ENV_VAR}={value!r} is not a progress mode; set it to auto, widgets, text or off."
        )
    return value


def in_kernel() -> bool:
    """True inside a Jupyter (ZMQ) kernel, whatever the frontend."""
    if "ipykernel" not in sys.modules:
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return False
    try:
        from ipykernel.zmqshell import ZMQInteractiveShell
    except ImportError:
        return False
    return isinstance(shell, ZMQInteractiveShell)


def in_widget_kernel() -> bool:
    """A kernel where ipywidgets can be imported (its frontend may still lack the extension)."""
    if not in_kernel():
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def _stderr_is_tty() -> bool:
    return is_terminal(sys.stderr)


def is_terminal(stream: object) -> bool:
    """True when ``stream`` is an open terminal."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False
