"""The live widget's control to open one task in detail: pick a task id, click Show, and the
task's :class:`~parallelcc_sdk.views.task.TaskView` appears below (click again to hide it).

The widget's body is one HTML value redrawn as a whole, so a click inside it cannot reach Python;
this control sits below it instead. Up to ``LIST_CAP`` tasks it is a dropdown of every task id,
set once (the ids of a run do not change, so a render sends nothing for it). Above that, a
dropdown would be too long to use and too heavy to resend: it is a text box that takes any id
and suggests the tasks worth opening (running, failed or timed out, or finished with changes),
resent only when that set changed, at most once per ``refresh_s``, and only the newest
``LIST_CAP`` of them, so what one refresh sends does not grow with the run.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..models import TaskResult, TaskStatus

if TYPE_CHECKING:
    from .task import TaskView

__all__ = ["LIST_CAP", "TaskPicker"]

# Above this many tasks the dropdown of every id becomes a text box with suggestions.
LIST_CAP = 1000
# How often, at most, the suggestions of a large run are resent.
REFRESH_S = 1.0


def worth_opening(task: TaskResult) -> bool:
    """Whether a large run suggests ``task``: it is running, it went wrong, or it changed files."""
    status = TaskStatus(task.status)
    if status in (TaskStatus.RUNNING, TaskStatus.FAILED, TaskStatus.TIMED_OUT):
        return True
    return status.is_final and bool(task.files_changed)


class TaskPicker:
    """A task id input, a Show/Hide button and the Output the chosen task is shown in.

    The live view calls ``note`` and ``changed_ids`` under its lock and ``offer`` outside it, on
    the run's loop thread; the button's click arrives on the kernel's thread and calls
    ``open_task``.
    """

    def __init__(
        self,
        tasks: Iterable[TaskResult],
        open_task: Callable[[str], TaskView],
        *,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import ipywidgets as widgets

        tasks = list(tasks)
        self._open_task = open_task
        self.large = len(tasks) > LIST_CAP
        # The ids offered, as an ordered set: every task, or in a large run those worth opening
        # in the order they became so.
        self._listed: dict[str, None] = {
            t.task_id: None for t in tasks if not self.large or worth_opening(t)
        }
        self._dirty = False
        self._refresh_s = refresh_s
        self._clock = clock
        self._last_refresh = float("-inf")
        self.rebuilds = 0  # how often the offered ids were resent (read by tests)
        self._shown: str | None = None
        self._blocked = False

        self.input: widgets.Dropdown | widgets.Combobox
        if self.large:
            self.input = widgets.Combobox(
                placeholder="task id",
                description="Task",
                ensure_option=False,  # any id of the run, not only the suggested ones
                options=tuple(self._offered()),
                layout=widgets.Layout(width="260px"),
            )
        else:
            self.input = widgets.Dropdown(
                options=list(self._listed),
                description="Task",
                layout=widgets.Layout(width="260px"),
            )
        self.input.style.description_width = "initial"
        self.button = widgets.Button(layout=widgets.Layout(width="auto"))
        self.output = widgets.Output()
        self._restyle()
        self.button.on_click(self._on_click)
        self.input.observe(lambda _change: self._restyle(), names="value")
        self.widget = widgets.VBox(
            [widgets.HBox([self.input, self.button], layout=widgets.Layout(align_items="center")),
             self.output]
        )
        self.widget.add_class("pcc-task-picker")

    # -- following the run (loop thread) ---------------------------------------------------------

    def note(self, task: TaskResult) -> None:
        """Takes a new record of ``task`` into account; O(1), nothing is sent."""
        task_id = task.task_id
        if not self.large:
            if task_id not in self._listed:  # a task the run did not have at the start
                self._listed[task_id] = None
                self._dirty = True
            return
        listed = task_id in self._listed
        if worth_opening(task):
            # Newest last, so the suggestions keep the tasks that changed lately.
            self._listed.pop(task_id, None)
            self._listed[task_id] = None
            self._dirty |= not listed
        elif listed:
            del self._listed[task_id]
            self._dirty = True

    def changed_ids(self, *, force: bool = False) -> list[str] | None:
        """The ids to offer now if they changed since last sent (for a large run, not more
        often than every ``refresh_s`` unless ``force``); None when there is nothing to send."""
        if not self._dirty:
            return None
        now = self._clock()
        if not force and now - self._last_refresh < self._refresh_s:
            return None
        self._dirty = False
        self._last_refresh = now
        return self._offered() if self.large else list(self._listed)

    def offer(self, ids: list[str]) -> None:
        """Sends ``ids`` (from ``changed_ids``) to the input: one comm message."""
        self.rebuilds += 1
        if self.large:
            self.input.options = tuple(ids)
            return
        value = self.input.value
        with self.input.hold_sync():  # setting the options selects the first one: keep the pick
            self.input.options = ids
            if value in ids:
                self.input.value = value

    def _offered(self) -> list[str]:
        newest = list(itertools.islice(reversed(self._listed), LIST_CAP))
        newest.reverse()
        return newest

    def set_blocked(self, blocked: bool) -> None:
        """While a blocking call holds the kernel a click cannot arrive: say so on the button."""
        if blocked != self._blocked:
            self._blocked = blocked
            self._restyle()

    # -- the user's clicks (kernel's thread) -----------------------------------------------------

    def _selected(self) -> str:
        return str(self.input.value or "").strip()

    def _restyle(self) -> None:
        showing = self._shown is not None and self._shown == self._selected()
        with self.button.hold_sync():
            self.button.description = "Hide" if showing else "Show"
            self.button.icon = "eye-slash" if showing else "eye"
            self.button.disabled = self._blocked or not (showing or self._selected())
            self.button.tooltip = (
                "The kernel is busy in a blocking call and cannot take a click"
                if self._blocked
                else "Hide the task's view" if showing
                else "Show the chosen task: its turns, tool calls and diff so far"
            )

    def _on_click(self, _button: Any) -> None:
        task_id = self._selected()
        if self._shown is not None and self._shown == task_id:
            self.hide()
        else:
            self.show(task_id)

    def show(self, task_id: str) -> None:
        """Renders ``task_id``'s view into the Output, replacing what it showed."""
        try:
            view = self._open_task(task_id)
        except KeyError:
            self._set_output({"text/plain": f"This run has no task {task_id!r}."})
            self._shown = None
        else:
            # Set as one value rather than printed inside `with output:`: one message, and it
            # does not depend on which cell the kernel is executing when the click arrives.
            self._set_output({"text/html": view._repr_html_(), "text/plain": f"<task {task_id}>"})
            self._shown = task_id
        self._restyle()

    def hide(self) -> None:
        self._set_output(None)
        self._shown = None
        self._restyle()

    def _set_output(self, data: dict[str, str] | None) -> None:
        if data is None:
            self.output.outputs = ()
        else:
            self.output.outputs = (
                {"output_type": "display_data", "data": data, "metadata": {}},
            )
