"""The live ipywidgets view of a run.

One ``HTML`` widget holds everything that changes (header, bar, rows), so one render is exactly
one comm message however many tasks changed; the title and the cancel button sit above it, and
below it a control to open one task's view (see ``_picker``), which a render leaves alone unless
the tasks it offers changed.
Renders are throttled to 10 per second. When the run ends, the final state is pushed at once and,
if this view displayed itself, its output is replaced by a static HTML snapshot, which is what a
saved, reopened or exported notebook shows (widget models are not saved with the notebook).

While a blocking call (``pcc.run``, ``handle.result()``) holds the kernel, a click on the button
cannot reach it: the button is disabled then, and the view says what to do instead.
"""

from __future__ import annotations

import contextvars
import logging
from typing import TYPE_CHECKING, Any, NamedTuple

from ..events import Event
from ._live import LiveView
from ._picker import TaskPicker
from ._state import HandleLike
from ._throttle import Throttle
from .html import render_html, title_html
from .plain import plain_summary

if TYPE_CHECKING:
    from .task import TaskView

logger = logging.getLogger("parallelcc_sdk")

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
MAX_UPDATES_PER_S = 10
_BLOCKED_HINT = (
    "The kernel is busy in pcc.run(...) or handle.result() and cannot take a click: interrupt "
    "the kernel to cancel the run, or start runs with handle = pcc.submit(...) and await handle."
)


class _ButtonLook(NamedTuple):
    description: str
    disabled: bool
    button_style: str
    tooltip: str


class WidgetView(LiveView):
    """Subscribes to a handle and mirrors it in widgets; one per handle (see ``widget_view``)."""

    def __init__(self, handle: HandleLike, *, interval: float = 1 / MAX_UPDATES_PER_S) -> None:
        import ipywidgets as widgets

        super().__init__(handle)
        # Every place this view is shown (submit's auto display, `handle` as a cell's last
        # expression, display(handle)); each is swapped for the static snapshot at the end.
        self._display_ids: list[str] = []

        self.title = widgets.HTML(value=title_html(self.state))
        self.body = widgets.HTML(value=render_html(self.state, title=False))
        self.cancel_button = widgets.Button(icon="stop", layout=widgets.Layout(width="auto"))
        self._restyle_button()
        self.cancel_button.on_click(self._on_cancel_click)
        top = widgets.HBox(
            [self.title, self.cancel_button],
            layout=widgets.Layout(justify_content="space-between", align_items="center"),
        )
        self.picker = TaskPicker(self.state.tasks.values(), self._task_view)
        self.container = widgets.VBox([top, self.body, self.picker.widget])
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
            self.state.cancel_blocked = self.handle.blocking
        self._push()

    def on_event(self, event: Event) -> None:
        if event.task is not None:
            try:
                with self._lock:
                    self.picker.note(event.task)
            except Exception:  # a view must never break the run
                logger.exception("parallelcc task picker failed on %s", event.type)
        super().on_event(event)

    def _push(self) -> None:
        with self._lock:
            title = title_html(self.state)
            body = render_html(self.state, title=False)
            # The picker's ids are resent only when they changed: not on every render.
            ids = self.picker.changed_ids(force=self.state.finished)
            blocked = self.state.cancel_blocked and not self.state.finished
        # Setting an unchanged value sends nothing; a changed one sends one comm message.
        self.title.value = title
        self.body.value = body
        self._restyle_button()
        if ids is not None:
            self.picker.offer(ids)
        self.picker.set_blocked(blocked)

    def _button_look(self) -> _ButtonLook:
        state = self.state
        if state.finished:
            return _ButtonLook(f"Run {state.status}", True, "", "")
        if state.cancel_requested:
            return _ButtonLook("Cancelling…", True, "", "")
        if state.cancel_blocked:
            return _ButtonLook("Cancel: interrupt the kernel", True, "", _BLOCKED_HINT)
        return _ButtonLook(
            "Cancel run",
            False,
            "warning",
            "Cancel every task that has not finished; sandboxes are closed",
        )

    def _restyle_button(self) -> None:
        look = self._button_look()
        with self.cancel_button.hold_sync():  # one message for every trait that changed
            for name, value in look._asdict().items():
                setattr(self.cancel_button, name, value)

    def finalize(self) -> None:
        """Push the final state once, stop listening, and leave a static snapshot behind."""
        if not self._stop_following():
            return
        self._push()
        with self._lock:
            display_ids = list(self._display_ids)
        for display_id in display_ids:
            _replace_display(display_id, self.snapshot_bundle())

    # -- user actions (kernel's main thread) --------------------------------------------------

    def _task_view(self, task_id: str) -> TaskView:
        """What ``handle.show(task_id)`` gives, from the latest record this view holds; works
        while the run goes on and after it ended (a ``KeyError`` for an unknown id)."""
        from .task import TaskView

        with self._lock:
            task = self.state.tasks[task_id]
        return TaskView.from_task(task, self.handle.run_dir / task_id)

    def _on_cancel_click(self, _button: Any) -> None:
        self.state.cancel_requested = True
        self._restyle_button()
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
