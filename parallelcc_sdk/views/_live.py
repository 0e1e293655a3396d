"""What the live views share: a run's state mirrored from its events until the run ends."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..events import Event, EventType
from ._state import HandleLike, RunState
from ._throttle import Throttle

logger = logging.getLogger("parallelcc_sdk")


class LiveView:
    """Base of the widget, terminal and text views; subclasses set ``throttle`` and subscribe."""

    handle: HandleLike
    state: RunState
    throttle: Throttle
    _remove_listener: Callable[[], None]

    def __init__(self, handle: HandleLike) -> None:
        self.handle = handle
        self.state = RunState.from_handle(handle)
        self._lock = threading.Lock()
        self._finalized = False

    def _stop_following(self) -> bool:
        """Marks the state final, stops rendering on events; False if that was done already."""
        with self._lock:
            if self._finalized:
                return False
            self._finalized = True
            if not self.state.finished:
                self.state.finish(self.handle.status if self.handle.done() else "finished")
        self.throttle.close()
        self._remove_listener()
        return True

    def on_event(self, event: Event) -> None:
        """Folds ``event`` into the state and asks for a redraw (on the run's loop thread)."""
        try:
            with self._lock:
                self.state.apply(event)
            if event.type is EventType.RUN_FINISHED:
                self.finalize()
            else:
                self.throttle.request()
        except Exception:  # a view must never break the run
            logger.exception("parallelcc %s failed on %s", type(self).__name__, event.type)

    def finalize(self) -> None:
        """Draws the final state and stops following the run."""
        raise NotImplementedError
