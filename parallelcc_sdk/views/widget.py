"""The live ipywidgets view of a run.

One ``HTML`` widget holds everything that changes (header, bar, rows), so one render is exactly
one comm message however many tasks changed; a static title and the cancel button sit above it.
Renders are throttled to 10 per second. When the run ends, the final state is pushed at once and,
if this view displayed itself, its output is replaced by a static HTML snapshot, which is what a
saved, reopened or exported notebook shows (widget models are not saved with the notebook).
"""

from __future__ import annotations

import contextvars
import logging
from html import escape
from typing import Any

from ._live import LiveView
from ._state import HandleLike
from ._throttle import Throttle
from .html import plain_summary, render_html

logger = logging.getLogger("parallelcc_sdk")

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
MAX_UPDATES_PER_S = 10


class WidgetView(LiveView):
    """Subscribes to a handle and mirrors it in widgets. Build with :meth:`attach`."""

    def __init__(self, handle: HandleLike, *, interval: float = 1 / MAX_UPDATES_PER_S) -> None:
        import ipywidgets as widgets

        super().__init__(handle)
        # Every place this view is shown (submit's auto display, `handle` as a cell's last
        # expression, display(handle)); each is swapped for the static snapshot at the end.
        self._display_ids: list[str] = []

        title = (
            f'<span style="font-weight: 600;">parallelcc</span> '
            f'<span style="color: #78909c;">run {escape(handle.run_id)} · '
            f"{self.state.total} task{'s' if self.state.total != 1 else ''}</span>"
        )
        self.title = widgets.HTML(value=title)
        self.body = widgets.HTML(value=render_html(self.state))
        self.cancel_button = widgets.Button(
            description="Cancel run",
            icon="stop",
            button_style="warning",
            tooltip="Cancel every task that has not finished; sandboxes are closed",
            layout=widgets.Layout(width="auto"),
        )
        self.cancel_button.on_click(self._on_cancel_click)
        top = widgets.HBox(
            [self.title, self.cancel_button],
            layout=widgets.Layout(justify_content="space-between", align_items="center"),
        )
        self.container = widgets.VBox([top, self.body])
        # A stable class for tests and user CSS.
        self.container.add_class("pcc-progress")

        self.throttle = Throttle(self._render, interval=interval, heartbeat=1.0)
        self._remove_listener = handle.add_listener(self.on_event)
        if handle.done():  # finished before we subscribed: nothing more will arrive
            self.finalize()

    # -- rendering (run's loop thread) ------------------------------------------------------

    def _render(self) -> None:
        with self._lock:
            if not self._finalized and self.handle.done():
                # Missed RUN_FINISHED (e.g. the engine ended abnormally): settle from the handle.
                self.state.finish(self.handle.status)
            value = render_html(self.state)
        # Setting an unchanged value sends nothing; a changed one sends one comm message.
        self.body.value = value

    def finalize(self) -> None:
        """Push the final state once, stop listening, and leave a static snapshot behind."""
        if not self._stop_following():
            return
        self.body.value = render_html(self.state)
        with self.cancel_button.hold_sync():
            self.cancel_button.disabled = True
            self.cancel_button.description = "Run " + self.state.status
            self.cancel_button.button_style = ""
        with self._lock:
            display_ids = list(self._display_ids)
        for display_id in display_ids:
            _replace_display(display_id, self.snapshot_bundle())

    # -- user actions (kernel's main thread) --------------------------------------------------

    def _on_cancel_click(self, _button: Any) -> None:
        self.state.cancel_requested = True
        self.cancel_button.disabled = True
        self.cancel_button.description = "Cancelling…"
        self.handle.cancel()
        self.throttle.request()

    # -- display ----------------------------------------------------------------------------

    def text_plain(self) -> str:
        # Stable across re-runs (no ids, no times), so checked notebook cells do not flap.
        return f"<parallelcc progress: {self.state.total} tasks>"

    def mimebundle(self) -> dict[str, Any]:
        if self._finalized:
            return self.snapshot_bundle()
        with self._lock:
            html = render_html(self.state)
        return {
            WIDGET_MIME: {
                "version_major": 2,
                "version_minor": 0,
                "model_id": self.container.model_id,
            },
            "text/plain": self.text_plain(),
            "text/html": html,
        }

    def snapshot_bundle(self) -> dict[str, Any]:
        with self._lock:
            return {"text/plain": plain_summary(self.state), "text/html": render_html(self.state)}

    def display(self) -> None:
        """Show the live view in the current cell, under a display id so it can be replaced."""
        from IPython.display import display

        handle = display(self.mimebundle(), raw=True, display_id=True)  # type: ignore[no-untyped-call]
        if handle is None:
            return
        display_id = str(handle.display_id)
        with self._lock:
            self._display_ids.append(display_id)
            finalized = self._finalized
        if finalized:
            _replace_display(display_id, self.snapshot_bundle())


def _replace_display(display_id: str, bundle: dict[str, Any]) -> None:
    from IPython.display import update_display

    # Sent from an empty context, ipykernel parents the message to the cell executing now
    # (the one blocked in pcc.run or awaiting the handle) rather than to the cell that submitted
    # the run, which may have finished long ago: frontends only route messages of live requests.
    try:
        contextvars.Context().run(update_display, bundle, raw=True, display_id=display_id)
    except Exception:  # no shell any more (kernel shutting down): nothing to update
        logger.debug("could not replace the progress display", exc_info=True)
