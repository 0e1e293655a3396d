"""Progress views without a browser or kernel: widget state after events, the row cap, the final
snapshot, the throttle (comm messages counted), the Cancel button while a blocking call holds the
kernel, the control that opens one task, the text renderer and mode selection."""

from __future__ import annotations

import asyncio
import io
import itertools
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import comm
import pytest

from parallelcc_sdk import views
from parallelcc_sdk.errors import ValidationError
from parallelcc_sdk.events import Event, EventType, Phase
from parallelcc_sdk.models import TaskResult, TaskStatus, count_statuses
from parallelcc_sdk.runfolder.layout import PATCH_FILE
from parallelcc_sdk.views import _mode
from parallelcc_sdk.views._picker import LIST_CAP
from parallelcc_sdk.views._state import HandleLike, RunState
from parallelcc_sdk.views._style import ROW_CAP
from parallelcc_sdk.views.html import render_html
from parallelcc_sdk.views.text import TextView
from parallelcc_sdk.views.widget import WIDGET_MIME, WidgetView

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUN_DIR = Path("/home/me/project/parallel-results/20260101-000000-abcdef")


@dataclass(frozen=True)
class IsolatedResult(TaskResult):
    """A record that says what isolated its task, as the engine's records do."""

    isolation: str | None = None


class FakeHandle:
    """Just enough of ExecutionHandle for the view layer: the views only read these members."""

    def __init__(self, n: int, ids: list[str] | None = None) -> None:
        self.run_id = "run-test"
        self.run_dir = RUN_DIR
        ids = ids or [f"task-{i}" for i in range(1, n + 1)]
        self.records: list[TaskResult] = [
            IsolatedResult(task_id=task_id, prompt=f"prompt {i}")
            for i, task_id in enumerate(ids, start=1)
        ]
        self.listeners: list[Callable[[Event], Any]] = []
        self.cancelled: list[str | None] = []
        self.status = "running"
        self.elapsed_s = 0.0
        self.blocking = False
        self._done = False

    @property
    def tasks(self) -> list[TaskResult]:
        return list(self.records)

    @property
    def total(self) -> int:
        return len(self.records)

    def done(self) -> bool:
        return self._done

    def cancel(self, task_id: str | None = None) -> None:
        self.cancelled.append(task_id)

    def add_listener(self, callback: Callable[[Event], Any]) -> Callable[[], None]:
        self.listeners.append(callback)
        return lambda: self.listeners.remove(callback)

    # -- driving it like the engine would --------------------------------------------------

    def emit(self, type_: EventType, index: int | None = None, **changes: Any) -> None:
        task = None
        message = changes.pop("message", None)
        phase = changes.pop("phase", None)
        data = changes.pop("data", {})
        if index is not None:
            task = self.records[index].replace(**changes)
            self.records[index] = task
        event = Event(
            type=type_,
            run_id=self.run_id,
            task_id=task.task_id if task else None,
            task=task,
            message=message,
            phase=phase,
            data=data,
        )
        for listener in list(self.listeners):
            listener(event)

    def start(self, i: int, **extra: Any) -> None:
        self.emit(EventType.TASK_STARTED, i, status=TaskStatus.RUNNING, started_at=T0, **extra)

    def finish(self, i: int, status: TaskStatus = TaskStatus.COMPLETED, **extra: Any) -> None:
        self.emit(
            EventType.TASK_FINISHED,
            i,
            status=status,
            finished_at=T0 + timedelta(seconds=2),
            duration_s=2.0,
            **extra,
        )

    def end(self, status: str = "finished") -> None:
        self.status = status
        self._done = True
        self.emit(EventType.RUN_FINISHED, data={"state": status})


def test_fake_handle_matches_the_protocol() -> None:
    assert isinstance(FakeHandle(1), HandleLike)


# -- state and HTML ---------------------------------------------------------------------------


def test_state_folds_events_into_counts_phase_and_last_output() -> None:
    h = FakeHandle(3)
    state = RunState.from_handle(h)
    h.listeners.append(state.apply)
    h.start(0)
    h.emit(EventType.TASK_PHASE, 0, phase=Phase.RUNNING)
    h.emit(EventType.TASK_OUTPUT, 0, message="first\nsecond line\n\n")
    h.finish(1, TaskStatus.FAILED, error="boom", cost_usd=0.25)
    assert state.counts == {
        "pending": 1,
        "running": 1,
        "completed": 0,
        "failed": 1,
        "cancelled": 0,
        "timed_out": 0,
    }
    assert state.done_count == 1
    assert state.phase_of(state.tasks["task-1"]) == "running"
    assert state.last_output["task-1"] == "second line"
    assert state.cost_usd == pytest.approx(0.25)
    assert not state.finished


class NoScan(dict[str, TaskResult]):
    """The tasks of a RunState that must not be walked: every whole-run number is kept as the
    events arrive, so neither an event nor a render reads all the tasks."""

    def _scan(self, *args: Any) -> NoReturn:
        raise AssertionError("walked every task")

    values = items = keys = __iter__ = _scan  # type: ignore[assignment]


def test_whole_run_numbers_are_kept_per_event_without_walking_the_tasks() -> None:
    h = FakeHandle(6)
    state = RunState.from_handle(h)
    state.tasks = NoScan(state.tasks)
    h.listeners.append(state.apply)

    def read() -> tuple[Any, ...]:
        return (
            state.counts,
            state.done_count,
            state.cost_usd,
            state.isolation,
            state.outcome,
            state.show_isolation_column,
        )

    assert read()[:3] == (count_statuses(h.records), 0, None)
    for i in range(4):
        h.start(i, isolation="bubblewrap")
        h.emit(EventType.TASK_PROGRESS, i, message="turn 1", cost_usd=0.5)
        h.emit(EventType.TASK_OUTPUT, i, message="working")
        read()
    h.emit(EventType.TASK_PROGRESS, 0, message="turn 2", cost_usd=1.25)  # a cost grows
    h.finish(0, cost_usd=1.5)
    h.finish(1, TaskStatus.FAILED, error="boom", cost_usd=0.5)
    h.emit(EventType.TASK_RETRY, 2, status=TaskStatus.PENDING, isolation=None)  # back to pending
    h.finish(3, TaskStatus.TIMED_OUT, isolation="none")
    counts, done, cost, isolation, outcome, mixed = read()
    assert counts == count_statuses(h.records)
    assert done == 3
    assert cost == pytest.approx(1.5 + 0.5 + 0.5 + 0.5)
    assert isolation == "bubblewrap 2, none 1" and mixed
    assert outcome == "3 of 6 done: 1 completed, 1 failed, 1 timed out, 3 pending"


def test_html_escapes_prompts_and_output() -> None:
    h = FakeHandle(1)
    h.records[0] = h.records[0].replace(prompt="<script>alert(1)</script>")
    state = RunState.from_handle(h)
    state.last_output["task-1"] = "<b>x</b>"
    html = render_html(state)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>x</b>" not in html


# -- widget ------------------------------------------------------------------------------------


def test_widget_shows_counts_rows_and_last_output_after_events() -> None:
    h = FakeHandle(3)
    view = WidgetView(h, interval=0)
    h.start(0)
    h.start(1)
    h.emit(EventType.TASK_OUTPUT, 0, message="editing app.py")
    h.finish(1, files_changed=4, cost_usd=0.0123)
    body = view.body.value
    assert "1 of 3 done" in body
    assert body.count("<tr>") == 1 + 3  # header + one row per task
    assert "editing app.py" in body
    assert "$0.0123" in body
    assert "pcc-progress" in view.container._dom_classes
    assert not view.cancel_button.disabled


def test_rows_become_a_compact_table_above_the_cap() -> None:
    n = ROW_CAP + 15
    h = FakeHandle(n)
    view = WidgetView(h, interval=0)
    for i in range(n):
        h.start(i)
    for i in range(n - 3):
        h.finish(i)
    body = view.body.value
    assert f"{n - 3} of {n} done" in body
    assert "pcc-strip" in body
    assert body.count("<tr>") == 1 + 3  # only the three running tasks are listed
    assert f"{n - 3} more tasks not listed" in body
    # Every task is still visible as a square in the strip.
    assert body.count('title="task-') >= n


def test_final_snapshot_is_static_html_and_button_is_disabled() -> None:
    h = FakeHandle(2)
    view = WidgetView(h, interval=10)  # a huge interval: the final state must not wait for it
    h.start(0)
    h.start(1)
    h.finish(0)
    h.finish(1, TaskStatus.TIMED_OUT, error="timed out after 5 s")
    h.end()
    assert '"pcc-outcome">finished</b>' in view.body.value
    assert view.cancel_button.disabled
    assert view.cancel_button.description == "Run finished"
    assert h.listeners == []  # unsubscribed
    bundle = view.mimebundle()
    assert WIDGET_MIME not in bundle
    html = bundle["text/html"]
    assert '"pcc-outcome">finished</b>' in html and "1 timed out" in html
    assert bundle["text/plain"].startswith(
        "parallelcc run run-test finished: 1 completed, 1 timed out"
    )


def test_the_snapshot_a_notebook_keeps_says_where_the_results_are() -> None:
    h = FakeHandle(2)
    view = WidgetView(h, interval=10)
    for i in range(2):
        h.start(i)
        h.finish(i)
    h.end()
    snapshot = view.snapshot_bundle()
    html, text = snapshot["text/html"], snapshot["text/plain"]
    # The run id and the run folder, as a path to copy with one click.
    assert "run run-test · 2 tasks" in html
    assert f'<code style="user-select: all; word-break: break-all;">{RUN_DIR}</code>' in html
    assert f"run folder: {RUN_DIR}" in text
    # The totals of the run.
    assert "wall clock" in html and "saved" in html and "cost not reported" in html


@pytest.mark.parametrize(
    ("state", "finish", "outcome"),
    [
        ("cancelled", [TaskStatus.COMPLETED, TaskStatus.CANCELLED, TaskStatus.CANCELLED],
         "cancelled: 1 completed, 2 cancelled"),
        ("interrupted", [TaskStatus.CANCELLED] * 3, "interrupted: 3 cancelled"),
        ("finished", [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.COMPLETED],
         "finished: 2 completed, 1 failed"),
    ],
)
def test_the_end_state_is_worded_with_counts_not_n_of_n_done(
    state: str, finish: list[TaskStatus], outcome: str
) -> None:
    h = FakeHandle(3)
    view = WidgetView(h, interval=10)
    for i, status in enumerate(finish):
        h.finish(i, status)
    h.end(state)
    snapshot = view.snapshot_bundle()
    assert snapshot["text/plain"].startswith(f"parallelcc run run-test {outcome} · ")
    assert f'"pcc-outcome">{state}</b>' in snapshot["text/html"]
    assert "3/3" not in snapshot["text/html"] and "done" not in snapshot["text/plain"]
    assert view.cancel_button.description == f"Run {state}"


def test_task_ids_stay_on_one_line() -> None:
    h = FakeHandle(1, ids=["t07-fails"])
    html = render_html(RunState.from_handle(h))
    assert '<code style="white-space: nowrap;">t07-fails</code>' in html


def test_the_bar_puts_completed_before_running() -> None:
    h = FakeHandle(4)
    view = WidgetView(h, interval=0)
    h.start(0)
    h.start(1)
    h.start(2)
    h.finish(2)
    h.finish(1, TaskStatus.FAILED)
    bar = view.body.value.split('class="pcc-bar"')[1].split("</div></div>")[0]
    titles = [part.split('"')[0] for part in bar.split('title="')[1:]]
    assert titles == ["completed: 1", "failed: 1", "running: 1"]


def test_isolation_is_shown_in_the_title_and_per_task_when_it_differs() -> None:
    h = FakeHandle(2)
    view = WidgetView(h, interval=0)
    assert "isolation" not in view.title.value  # nothing known before a task starts
    h.start(0, isolation="bubblewrap")
    assert "isolation bubblewrap" in view.title.value
    assert ">isolation</th>" not in view.body.value
    h.start(1, isolation="none")
    assert "isolation bubblewrap 1, none 1" in view.title.value
    assert ">isolation</th>" in view.body.value


def test_cancel_button_cancels_the_run() -> None:
    h = FakeHandle(2)
    view = WidgetView(h, interval=0)
    view.cancel_button.click()
    assert h.cancelled == [None]
    assert view.cancel_button.disabled
    assert "cancelling" in view.body.value


def test_cancel_button_is_disabled_with_a_hint_while_a_blocking_call_holds_the_kernel() -> None:
    h = FakeHandle(2)
    view = WidgetView(h, interval=0)
    assert not view.cancel_button.disabled
    h.blocking = True  # pcc.run(...) or handle.result() waits on the kernel's thread
    h.start(0)
    button = view.cancel_button
    assert button.disabled and button.description == "Cancel: interrupt the kernel"
    assert "interrupt the kernel" in button.tooltip and "await handle" in button.tooltip
    assert 'class="pcc-hint"' in view.body.value
    h.blocking = False  # the blocking call returned (e.g. result(timeout=...) timed out)
    h.start(1)
    assert not button.disabled and button.description == "Cancel run"
    assert "pcc-hint" not in view.body.value
    h.blocking = True
    h.finish(0)
    h.finish(1)
    h.end()
    assert button.description == "Run finished"
    assert "pcc-hint" not in view.snapshot_bundle()["text/html"]


def test_live_bundle_has_widget_and_stable_text_plain() -> None:
    h = FakeHandle(4)
    view = WidgetView(h, interval=0)
    bundle = view.mimebundle()
    assert bundle[WIDGET_MIME]["model_id"] == view.container.model_id
    assert bundle["text/plain"] == "<parallelcc progress: 4 tasks>"
    assert "0 of 4 done" in bundle["text/html"]


class RecordingComm:
    """Stands in for a kernel comm and records every message a widget sends."""

    sent: ClassVar[list[tuple[float, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.comm_id = f"comm-{id(self)}"
        self.kernel = "fake"

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        RecordingComm.sent.append((time.monotonic(), data))

    def on_msg(self, callback: Any) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture
def recording_comm(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[float, Any]]]:
    RecordingComm.sent = []
    monkeypatch.setattr(comm, "create_comm", lambda **kw: RecordingComm(**kw))
    yield RecordingComm.sent


def test_thousand_events_in_one_second_send_at_most_eleven_comm_messages(
    recording_comm: list[tuple[float, Any]],
) -> None:
    h = FakeHandle(20)
    view = WidgetView(h)
    opened = len(recording_comm)

    async def engine() -> None:
        # Events arrive on the run's loop, as the engine delivers them: 1,000 within one second.
        start = time.monotonic()
        for i in range(1000):
            task = i % 20
            if i < 20:
                h.start(task)
            elif i >= 980:
                h.finish(task)
            else:
                h.emit(EventType.TASK_OUTPUT, task, message=f"line {i}")
            await asyncio.sleep(max(0.0, start + (i + 1) / 1000 - time.monotonic()))
        # Let the trailing render of the burst happen.
        await asyncio.sleep(0.3)

    asyncio.run(engine())
    updates = recording_comm[opened:]
    view.throttle.close()
    print(f"comm messages for 1,000 events in one second: {len(updates)}")
    assert 2 <= len(updates) <= 11
    assert "20 of 20 done" in view.body.value  # the last state was not lost to the throttle
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(updates)]
    assert min(gaps) >= 0.09


def test_quiet_run_still_ticks_the_clock() -> None:
    h = FakeHandle(1)
    view = WidgetView(h, interval=0.01)
    view.throttle.heartbeat = 0.05
    shown: set[str] = set()

    async def wait() -> None:
        h.start(0)
        for _ in range(40):  # no event for 0.4 s
            shown.add(view.body.value)
            await asyncio.sleep(0.01)

    asyncio.run(wait())
    view.throttle.close()
    assert len(shown) >= 3  # the elapsed time moved on without any event


# -- opening one task from the widget ----------------------------------------------------------

PATCH = "--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-old\n+new_line_42\n"


def shown_html(view: WidgetView) -> str:
    return "".join(o["data"].get("text/html", "") for o in view.picker.output.outputs)


def count_option_sends(widget: Any) -> list[Any]:
    sent: list[Any] = []
    widget.observe(lambda change: sent.append(change["new"]), names="options")
    return sent


def test_the_picker_lists_the_tasks_and_show_renders_the_chosen_one(tmp_path: Path) -> None:
    h = FakeHandle(3)
    h.run_dir = tmp_path
    (tmp_path / "task-2").mkdir()
    (tmp_path / "task-2" / PATCH_FILE).write_text(PATCH)
    view = WidgetView(h, interval=0)
    picker = view.picker
    assert picker.widget in view.container.children  # below the body
    assert list(picker.input.options) == ["task-1", "task-2", "task-3"]
    h.start(1)
    picker.input.value = "task-2"
    picker.button.click()  # while the run goes on
    html = shown_html(view)
    assert ">task-2</code>" in html and "new_line_42" in html and "running</span>" in html
    assert picker.button.description == "Hide"
    picker.button.click()  # the same task again: hide it
    assert picker.output.outputs == () and picker.button.description == "Show"
    h.finish(1, files_changed=1)
    h.end()
    picker.button.click()  # after the run ended, with the final record
    html = shown_html(view)
    assert "new_line_42" in html and "completed</span>" in html
    picker.input.value = "task-3"  # another task: the button shows it instead of hiding
    assert picker.button.description == "Show"
    picker.button.click()
    assert ">task-3</code>" in shown_html(view) and "No changes." in shown_html(view)


def test_the_dropdown_is_not_rebuilt_on_events(
    recording_comm: list[tuple[float, Any]],
) -> None:
    h = FakeHandle(20)
    view = WidgetView(h, interval=0)
    sends = count_option_sends(view.picker.input)
    view.picker.input.value = "task-7"
    before = len(recording_comm)
    for i in range(20):
        h.start(i)
        h.emit(EventType.TASK_OUTPUT, i, message="working")
        h.finish(i, files_changed=1)
    h.end()
    assert sends == [] and view.picker.rebuilds == 0
    assert view.picker.input.value == "task-7"
    # No message carried the dropdown's options (nor its selection, nor any output).
    sent_keys = {key for _, data in recording_comm[before:] for key in data["state"]}
    assert sent_keys and not sent_keys & {"_options_labels", "index", "outputs"}


def test_a_large_run_suggests_the_tasks_worth_opening_when_they_change() -> None:
    n = LIST_CAP + 5
    h = FakeHandle(n)
    view = WidgetView(h, interval=0)
    picker = view.picker
    picker._refresh_s = 0  # no time gate: every change of the set is sent at the next render
    sends = count_option_sends(picker.input)
    assert picker.large and list(picker.input.options) == []  # nothing started
    h.start(0)
    h.start(1)
    h.start(2)
    for _ in range(20):  # output lines change nothing the picker offers
        h.emit(EventType.TASK_OUTPUT, 0, message="working")
    assert len(sends) == 3 and picker.input.options == ("task-1", "task-2", "task-3")
    h.finish(0, files_changed=2)  # still worth opening: no resend
    h.finish(1, TaskStatus.FAILED, error="boom")
    h.finish(2)  # completed without changes: dropped
    assert len(sends) == 4
    assert set(picker.input.options) == {"task-1", "task-2"}
    # Any id can be typed, suggested or not.
    picker.input.value = f"task-{n}"
    picker.button.click()
    assert f">task-{n}</code>" in shown_html(view)
    picker.input.value = "nope"
    picker.button.click()
    assert "no task 'nope'" in picker.output.outputs[0]["data"]["text/plain"]


def test_a_large_run_resends_its_suggestions_at_most_once_per_interval() -> None:
    n = LIST_CAP + 1
    h = FakeHandle(n)
    view = WidgetView(h, interval=0)
    clock = [0.0]
    view.picker._clock = lambda: clock[0]
    sends = count_option_sends(view.picker.input)
    for i in range(100):
        h.start(i)  # 100 changes of the set within one (frozen) second
    assert len(sends) == 1
    clock[0] = 1.5
    h.start(100)
    assert len(sends) == 2 and len(sends[-1]) == 101


def test_the_show_button_is_disabled_while_a_blocking_call_holds_the_kernel() -> None:
    h = FakeHandle(2)
    view = WidgetView(h, interval=0)
    assert not view.picker.button.disabled
    h.blocking = True
    h.start(0)
    assert view.picker.button.disabled
    h.blocking = False
    h.start(1)
    assert not view.picker.button.disabled


# -- text --------------------------------------------------------------------------------------


def test_text_view_for_logs_prints_one_line_per_state_change_and_a_final_line() -> None:
    h = FakeHandle(3)
    out = io.StringIO()
    TextView(h, out, interval=0)
    h.start(0)
    h.emit(EventType.TASK_OUTPUT, 0, message="x" * 50)  # output is not echoed in log mode
    h.emit(EventType.TASK_PHASE, 0, phase=Phase.COLLECTING)  # nor are phases
    h.finish(0, files_changed=2)
    h.start(1)
    h.finish(1, TaskStatus.FAILED, error="exit code 2: \x1b[31mred\x1b[0m\r\nsecond line\a")
    h.finish(2, TaskStatus.CANCELLED, error="fail-fast")
    h.end("cancelled")
    lines = out.getvalue().splitlines()
    assert lines == [
        f"parallelcc run run-test: 3 tasks, results in {RUN_DIR}",
        "[0/3] ▶ task-1 started",
        "[1/3] ✓ task-1 completed 2.0s, 2 files changed",
        "[1/3] ▶ task-2 started",
        "[2/3] ✗ task-2 failed 2.0s — exit code 2: red second line",
        "[3/3] ⊘ task-3 cancelled 2.0s — fail-fast",
        "parallelcc cancelled: 1 completed, 1 failed, 1 cancelled · 0.0s",
        f"Results: {RUN_DIR}",
    ]
    # Nothing but printable text and line ends: logs read the same in any viewer.
    assert not [c for c in out.getvalue() if ord(c) < 32 and c != "\n"]


def test_text_view_names_the_run_folder_at_start_and_end() -> None:
    h = FakeHandle(1)
    h.run_dir = "/results/run-test"  # type: ignore[attr-defined]
    out = io.StringIO()
    TextView(h, out, interval=0)
    h.start(0)
    h.finish(0)
    h.end()
    lines = out.getvalue().splitlines()
    assert lines[0] == "parallelcc run run-test: 1 task, results in /results/run-test"
    assert lines[-1] == "Results: /results/run-test"


def terminal(width: int, height: int) -> tuple[io.StringIO, Any]:
    from rich.console import Console

    out = io.StringIO()
    console = Console(
        file=out, force_terminal=True, width=width, height=height, color_system="standard"
    )
    return out, console


def test_terminal_view_redraws_in_place() -> None:
    from parallelcc_sdk.views.terminal import TerminalView

    h = FakeHandle(2)
    out, console = terminal(80, 24)
    TerminalView(h, out, console=console, interval=0)
    h.start(0)
    h.finish(0)
    h.end()
    text = out.getvalue()
    assert text.count("\x1b[1A") >= 2  # the region moved up to be redrawn, more than once
    assert text.startswith("parallelcc run run-test: 2 tasks")
    # The final frame stays, the cursor is back, and the results folder is the last line.
    assert text.endswith(f"\n\x1b[?25hResults: {RUN_DIR}\n")


@pytest.mark.parametrize("width", [20, 40, 60, 80, 200])
def test_terminal_frame_fits_any_width(width: int) -> None:
    from parallelcc_sdk.views.terminal import frame_lines

    h = FakeHandle(4)
    state = RunState.from_handle(h)
    h.listeners.append(state.apply)
    h.records[0] = h.records[0].replace(task_id="a-rather-long-task-identifier-" + "x" * 40)
    h.start(0)
    h.emit(EventType.TASK_OUTPUT, 0, message="日本語の出力 " * 30 + "\x1b[2J\ttab")
    h.start(1)
    h.finish(1, TaskStatus.FAILED, error="e" * 500)
    for line in frame_lines(state, width, 24):
        assert line.cell_len <= width - 1, line.plain
        assert "\x1b" not in line.plain and "\t" not in line.plain


def test_terminal_frame_lists_running_and_failed_tasks_when_they_do_not_fit() -> None:
    from parallelcc_sdk.views.terminal import frame_lines

    h = FakeHandle(40)
    state = RunState.from_handle(h)
    h.listeners.append(state.apply)
    for i in range(10):
        h.start(i)
        h.finish(i)
    h.start(10)
    h.finish(10, TaskStatus.FAILED, error="boom")
    for i in range(11, 14):
        h.start(i)
    lines = [line.plain for line in frame_lines(state, 80, 12)]
    assert len(lines) <= 11  # one line short of the height: the region never scrolls
    rows = lines[2:-1]
    assert [r.split()[1] for r in rows] == ["task-12", "task-13", "task-14", "task-11"]
    assert lines[-1] == "not listed: 26 pending, 10 completed"
    # Above a screenful, every running task is still shown before any failed one.
    small = [line.plain for line in frame_lines(state, 80, 6)]
    assert [r.split()[1] for r in small[2:-1]] == ["task-12", "task-13"]
    assert small[-1].startswith("not listed: 26 pending, 1 running, 10 completed, 1 failed")


# -- modes and bundles ------------------------------------------------------------------------


def test_resolve_mode_outside_a_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(views.ENV_VAR, raising=False)
    monkeypatch.setattr(_mode, "_stderr_is_tty", lambda: False)
    assert views.resolve_mode("auto") == "off"
    assert views.resolve_mode(True) == "off"
    assert views.resolve_mode(False) == "off"
    assert views.resolve_mode("widgets") == "text"  # no kernel: fall back, no error
    assert views.resolve_mode("TEXT") == "text"
    monkeypatch.setattr(_mode, "_stderr_is_tty", lambda: True)
    assert views.resolve_mode("auto") == "text"
    monkeypatch.setenv(views.ENV_VAR, "off")
    assert views.resolve_mode("auto") == "off"
    assert views.resolve_mode("text") == "text"  # an explicit choice beats the environment


@pytest.mark.parametrize("bad", ["fancy", 3, "", object()])
def test_resolve_mode_rejects_unknown_modes(bad: object) -> None:
    with pytest.raises(ValidationError, match="progress="):
        views.resolve_mode(bad)


def test_bad_environment_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(views.ENV_VAR, "loud")
    with pytest.raises(ValidationError, match="PARALLELCC_PROGRESS"):
        views.resolve_mode("auto")


def test_attach_progress_text_writes_to_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    h = FakeHandle(1)
    views.attach_progress(h, "text")
    h.start(0)
    h.finish(0)
    h.end()
    err = capsys.readouterr().err
    assert f"run-test: 1 task, results in {RUN_DIR}" in err and "finished: 1 completed" in err


def test_attach_progress_off_subscribes_nothing() -> None:
    h = FakeHandle(1)
    views.attach_progress(h, "off")
    assert h.listeners == []


def test_mimebundle_outside_a_kernel_is_static_html() -> None:
    h = FakeHandle(2)
    bundle = views.mimebundle(h)
    assert set(bundle) == {"text/plain", "text/html"}
    assert "0 of 2 done" in bundle["text/html"] and str(RUN_DIR) in bundle["text/html"]
    assert set(views.mimebundle(h, include=["text/plain"])) == {"text/plain"}
    assert set(views.mimebundle(h, exclude=["text/plain"])) == {"text/html"}


def test_importing_views_imports_no_heavy_dependency() -> None:
    code = (
        "import sys, parallelcc_sdk, parallelcc_sdk.views;"
        "heavy = ('ipywidgets', 'matplotlib', 'pandas', 'IPython', 'rich');"
        "heavy = [m for m in heavy if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
