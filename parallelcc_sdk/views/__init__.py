"""Progress views of a run (ipywidgets in Jupyter, text elsewhere) and plots of its results.

Nothing here is imported by ``import parallelcc_sdk``; ipywidgets, IPython, pandas, matplotlib
and rich are imported only when a view or plot is actually made.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._mode import ENV_VAR, resolve_mode
from ._state import HandleLike, RunState
from .html import render_html
from .plain import plain_summary

if TYPE_CHECKING:
    from ._live import LiveView
    from .widget import WidgetView

__all__ = [
    "ENV_VAR",
    "attach_progress",
    "display_handle",
    "mimebundle",
    "resolve_mode",
    "widget_view",
]

# One live widget per handle, shared by every display of it (one set of comm messages for all).
_widgets: weakref.WeakKeyDictionary[Any, WidgetView] = weakref.WeakKeyDictionary()
_text_views: weakref.WeakKeyDictionary[Any, LiveView] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def attach_progress(handle: HandleLike, mode: object = "auto") -> None:
    """Start showing the progress of ``handle`` the way ``mode`` asks (see :func:`resolve_mode`).

    Called by ``submit()`` on the caller's thread, before any task starts: in a notebook the
    widget is displayed in the cell that submitted the run.
    """
    resolved = resolve_mode(mode)
    if resolved == "widgets":
        widget_view(handle).display()
    elif resolved == "text":
        from .text import text_view

        with _lock:
            if handle not in _text_views:
                _text_views[handle] = text_view(handle, sys.stderr)


def widget_view(handle: HandleLike) -> WidgetView:
    """The live widget of ``handle``, made on first use."""
    from .widget import WidgetView

    with _lock:
        view = _widgets.get(handle)
        if view is None:
            view = WidgetView(handle)
            _widgets[handle] = view
        return view


def display_handle(handle: HandleLike) -> None:
    """Shows ``handle`` in the current cell (IPython's ``_ipython_display_`` hook).

    A live run in a widget-capable kernel gets the live widget under a display id, so it too is
    replaced by the static snapshot when the run ends; anything else gets the static bundle.
    """
    from IPython.display import display

    if not handle.done() and _env_allows_widgets() and resolve_mode("auto") == "widgets":
        widget_view(handle).display()
    else:
        display(mimebundle(handle), raw=True)  # type: ignore[no-untyped-call]


def mimebundle(
    handle: HandleLike,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
) -> dict[str, Any]:
    """What a notebook shows for ``handle``: the live widget while the run goes on in a kernel
    that can render widgets, a static HTML summary otherwise (and for finished runs)."""
    bundle: dict[str, Any] | None = None
    if not handle.done() and _env_allows_widgets() and resolve_mode("auto") == "widgets":
        bundle = widget_view(handle).mimebundle()
    if bundle is None:
        state = RunState.from_handle(handle)
        bundle = {"text/plain": plain_summary(state), "text/html": render_html(state)}
    if include is not None:
        wanted = set(include)
        bundle = {k: v for k, v in bundle.items() if k in wanted}
    if exclude is not None:
        unwanted = set(exclude)
        bundle = {k: v for k, v in bundle.items() if k not in unwanted}
    return bundle


def _env_allows_widgets() -> bool:
    # An explicit text/off in the environment means no widget on display either.
    import os

    return os.environ.get(ENV_VAR, "").strip().lower() not in ("text", "off")
