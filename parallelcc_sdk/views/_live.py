"""What the live views share: a run's state mirrored from its events until the run ends."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ._state import HandleLike, RunState
from ._throttle import Throttle


class LiveView:
    """Base of the widget and text views; subclasses set ``throttle`` and subscribe."""

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
