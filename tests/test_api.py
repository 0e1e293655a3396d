"""The public API end to end: submit / run / run_async, the live ExecutionHandle, Ctrl-C, the run
folder on disk, and input validation before anything starts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from support.e2e import pid_alive, read_pids, tree_state, wait_for, wait_until_gone

import parallelcc_sdk as pcc
from parallelcc_sdk import Event, EventType, Task, TaskStatus
from parallelcc_sdk.runfolder import JournalState, read_journal

PACKAGE_ROOT = Path(pcc.__file__).resolve().parent.parent


def gated(gate: Path, before: str = "", after: str = "") -> pcc.Command:
    """A task that runs ``before``, waits (at most 10 s) for ``gate`` to exist, then ``after``."""
    return pcc.Command(
        f"{before} i=0; while [ ! -e \"$GATE\" ] && [ $i -lt 400 ]; do sleep 0.025; "
        f'i=$((i+1)); done; {after} [ -e "$GATE" ]',
        env={"GATE": str(gate)},
    )


def state_events(events: list[Event]) -> list[tuple[str, str | None, str | None]]:
    return [
        (e.type.value, e.task_id, e.phase.value if e.phase else None)
        for e in events
        if e.type is not EventType.TASK_OUTPUT
    ]


# -- submit, run, run_async -------------------------------------------------------------------


@pytest.mark.timeout(60)
async def test_submit_inside_a_running_loop_runs_on_the_sdk_loop_thread(
    pcc_opts: dict[str, Any],
) -> None:
    threads: set[str] = set()
    handle = pcc.submit(
        ["a", "b"],
        agent=pcc.Command("sleep 0.2"),
        listeners=[lambda e: threads.add(threading.current_thread().name)],
        **pcc_opts,
    )
    assert not handle.done() and handle.status == "running"
    result = await handle
    assert result.success
    assert threads == {"parallelcc-loop"}  # never the caller's loop thread
    assert handle.done() and handle.status == "finished"
    assert (await handle.wait()).run_id == result.run_id
    assert handle.result().run_id == result.run_id


@pytest.mark.timeout(60)
async def test_result_inside_a_running_loop_blocks_without_patching_asyncio(
    pcc_opts: dict[str, Any],
) -> None:
    handle = pcc.submit(["a", "b"], agent=pcc.Command("sleep 0.2"), **pcc_opts)
    assert not handle.done()
    result = handle.result(timeout=30)  # blocks this loop's thread; the run goes on elsewhere
    assert result.success and handle.done()
    assert [t.status for t in result.tasks] == [TaskStatus.COMPLETED] * 2
    assert not hasattr(asyncio, "_nest_patched")


def test_submit_without_a_loop_runs_in_the_background(pcc_opts: dict[str, Any]) -> None:
    threads: set[str] = set()
    t0 = time.monotonic()
    handle = pcc.submit(
        ["a", "b"],
        agent=pcc.Command("sleep 1"),
        max_concurrent=2,
        listeners=[lambda e: threads.add(threading.current_thread().name)],
        **pcc_opts,
    )
    assert time.monotonic() - t0 < 0.8, "submit() waited for the run"
    assert not handle.done()
    result = handle.result(timeout=30)
    assert result.success and handle.done()
    assert threading.current_thread().name not in threads
    assert threads == {"parallelcc-loop"}


async def test_run_async(pcc_opts: dict[str, Any]) -> None:
    result = await pcc.run_async(["a", "b", "c"], agent=pcc.Command("echo $PARALLELCC_TASK_ID"),
                                 **pcc_opts)
    assert result.success
    assert [t.task_id for t in result.tasks] == ["task-1", "task-2", "task-3"]
    assert result.summary.success_count == 3


def test_result_with_a_timeout_raises_run_not_finished(
    pcc_opts: dict[str, Any], tmp_path: Path
) -> None:
    handle = pcc.submit(["a"], agent=pcc.Command("sleep 30"), **pcc_opts)
    try:
        t0 = time.monotonic()
        with pytest.raises(pcc.RunNotFinishedError) as info:
            handle.result(timeout=0.01)
        assert time.monotonic() - t0 < 2
        assert isinstance(info.value, TimeoutError)
        assert handle.run_id in str(info.value)
        assert not handle.done()
    finally:
        handle.cancel()
    result = handle.result(timeout=20)
    assert result.tasks[0].status is TaskStatus.CANCELLED


# -- the live handle --------------------------------------------------------------------------


async def test_events_iterator_yields_the_same_state_events_and_ends(
    pcc_opts: dict[str, Any],
) -> None:
    seen: list[Event] = []
    handle = pcc.submit(
        ["a", "b"], agent=pcc.Command("echo out; echo err >&2"), listeners=[seen.append],
        **pcc_opts,
    )
    got = [event async for event in handle.events()]
    assert got[-1].type is EventType.RUN_FINISHED
    assert state_events(got) == state_events(seen)
    assert [e.message for e in got if e.type is EventType.TASK_OUTPUT] == [
        e.message for e in seen if e.type is EventType.TASK_OUTPUT
    ]
    result = await handle
    assert handle.done() and result.success
    # After the end: the recorded events again, and the iterator ends.
    late = [event async for event in handle.events()]
    assert state_events(late) == state_events(seen)


def test_events_iterator_from_another_loop_than_the_runs(pcc_opts: dict[str, Any]) -> None:
    seen: list[Event] = []
    handle = pcc.submit(["a", "b"], agent=pcc.Command("echo x"), listeners=[seen.append],
                        **pcc_opts)

    async def consume() -> list[Event]:
        return [event async for event in handle.events()]

    got = asyncio.run(asyncio.wait_for(consume(), 30))
    assert got[-1].type is EventType.RUN_FINISHED
    assert state_events(got) == state_events(seen)


async def test_handle_df_counts_and_status_are_live(
    pcc_opts: dict[str, Any], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    handle = pcc.submit(
        [Task("a", metadata={"team": "x"}), Task("b", metadata={"team": "y"}), Task("c")],
        agent=gated(gate),
        max_concurrent=2,
        **pcc_opts,
    )
    before = handle.df
    assert list(before["status"]) == ["pending"] * 3
    assert handle.counts == dict.fromkeys(
        ["pending", "running", "completed", "failed", "cancelled", "timed_out"], 0
    ) | {"pending": 3}

    deadline = time.monotonic() + 15
    while handle.counts["running"] < 2:
        assert time.monotonic() < deadline, "the tasks never started"
        await asyncio.sleep(0.02)
    during = handle.df
    assert list(during["status"]) == ["running", "running", "pending"]
    assert during["started_at"].notna().tolist() == [True, True, False]
    assert isinstance(during["status"].dtype, pd.CategoricalDtype)
    assert list(during["team"])[:2] == ["x", "y"]
    assert handle.status == "running" and not handle.done()
    assert list(before["status"]) == ["pending"] * 3  # a snapshot, not a view

    gate.touch()
    result = await handle
    assert handle.done() and handle.status == "finished"
    assert handle.counts["completed"] == 3 and sum(handle.counts.values()) == 3
    after = handle.df
    assert list(after["status"]) == ["completed"] * 3
    assert list(after.columns) == list(result.df.columns)
    assert after["task_id"].tolist() == result.df["task_id"].tolist()


# -- Ctrl-C -----------------------------------------------------------------------------------

_INTERRUPTED_SCRIPT = textwrap.dedent(
    """
    import signal
    import sys

    # As in an interactive terminal (a parent may have started us with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)

    import parallelcc_sdk as pcc

    repo, out, pids = sys.argv[1:4]
    pcc.run(
        ["a", "b", "c"],
        repo=repo,
        output_dir=out,
        agent=pcc.Command(
            'echo "$PARALLELCC_TASK_ID $$" >> "$PIDS"; sleep 60 & '
            'echo "$PARALLELCC_TASK_ID $!" >> "$PIDS"; wait',
            env={"PIDS": pids},
        ),
        backend=pcc.LocalBackend(isolation="none"),
        max_concurrent=2,
        progress="off",
    )
    print("pcc.run returned")
    """
)


def test_keyboard_interrupt_during_run_leaves_no_process(pcc_repo: Path, tmp_path: Path) -> None:
    script = tmp_path / "interrupted.py"
    script.write_text(_INTERRUPTED_SCRIPT)
    pids = tmp_path / "pids.txt"
    out = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(pcc_repo), str(out), str(pids)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(read_pids(pids)) == 4 or proc.poll() is not None, timeout=30,
                 what="two running tasks")
        assert proc.poll() is None, proc.communicate()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert time.monotonic() - t0 < 15
    assert "KeyboardInterrupt" in stderr, stderr
    assert "pcc.run returned" not in stdout
    assert proc.returncode in (-signal.SIGINT, 128 + signal.SIGINT, 1), proc.returncode

    recorded = read_pids(pids)
    assert len(recorded) == 4
    assert wait_until_gone(recorded) == [], "a task process outlived the interrupted run"
    assert not any(pid_alive(p) for p in recorded)

    (info,) = pcc.list_runs(out)
    journal = json.loads((info.run_dir / "run.json").read_text())
    assert journal["state"] == "interrupted" == info.state
    assert journal["finished_at"] is not None
    assert [t["status"] for t in journal["tasks"]] == ["cancelled"] * 3
    assert [t["started_at"] is not None for t in journal["tasks"]] == [True, True, False]
    assert all("interrupt" in t["error"] for t in journal["tasks"])


# -- the run folder ---------------------------------------------------------------------------


def test_run_json_exists_before_the_first_task_starts_and_is_kept_current_with_metadata(
    pcc_opts: dict[str, Any],
) -> None:
    out = Path(pcc_opts["output_dir"])
    checks: list[str] = []
    problems: list[str] = []

    def journal(event: Event) -> JournalState:
        # run.json is written once at the start; each state change is a line of its journal.
        return read_journal(out / event.run_id)

    def on_event(event: Event) -> None:
        try:
            if event.type is EventType.RUN_STARTED:
                data = json.loads((out / event.run_id / "run.json").read_text())
                assert data["state"] == "running"
                assert [t["task_id"] for t in data["tasks"]] == ["one", "two", "three"]
                assert {t["status"] for t in data["tasks"]} == {"pending"}
                checks.append("run_started")
            elif event.type is EventType.TASK_STARTED and "first_start" not in checks:
                state = journal(event)
                assert state.state == "running"
                assert [t.status for t in state.tasks] == ["running", "pending", "pending"]
                # Its sandbox was opened and prepared before it started (others maybe too).
                assert state.tasks[0].sandbox_id is not None
                checks.append("first_start")
            elif event.type is EventType.TASK_FINISHED:
                record = next(t for t in journal(event).tasks if t.task_id == event.task_id)
                assert record.status == "completed", record
                assert record.sandbox_id and record.finished_at
                metadata = out / event.run_id / str(event.task_id) / "metadata.json"
                assert json.loads(metadata.read_text())["status"] == "completed"
                checks.append(f"finished {event.task_id}")
        except Exception as exc:  # listener errors are only logged: collect them instead
            problems.append(f"{event.type} {event.task_id}: {exc!r}")

    result = pcc.run(
        [Task("1", id="one"), Task("2", id="two"), Task("3", id="three")],
        agent=pcc.Command("echo hi"),
        max_concurrent=1,
        listeners=[on_event],
        **pcc_opts,
    )
    assert problems == []
    assert checks == ["run_started", "first_start", "finished one", "finished two",
                      "finished three"]
    data = json.loads((result.run_dir / "run.json").read_text())
    assert data["state"] == "finished" and data["run_id"] == result.run_id
    assert data["config"]["max_concurrent"] == 1
    assert data["config"]["agent"] == {"name": "command", "command": "echo hi", "shell": "/bin/sh"}


def test_execution_log_is_streamed_while_the_task_runs(
    pcc_opts: dict[str, Any], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    handle = pcc.submit(
        ["x"],
        agent=gated(gate, before="echo first-line; echo warning >&2;", after="echo second-line;"),
        **pcc_opts,
    )
    log = handle.run_dir / "task-1" / "execution.log"
    try:
        wait_for(
            lambda: log.exists() and {"first-line", "[stderr] warning"} <= set(
                log.read_text().splitlines()
            ),
            what="streamed output",
        )
        assert not handle.done()
        assert handle.tasks[0].status is TaskStatus.RUNNING
        assert log.read_text() in (
            "first-line\n[stderr] warning\n",
            "[stderr] warning\nfirst-line\n",
        )
    finally:
        gate.touch()
    result = handle.result(timeout=30)
    assert result.success
    text = log.read_text()
    assert text.endswith("second-line\n") and "first-line\n" in text


def test_execution_log_holds_the_full_output(pcc_opts: dict[str, Any]) -> None:
    result = pcc.run(["x"], agent=pcc.Command("seq 1 50000"), **pcc_opts)
    assert result.success
    log = Path(result.tasks[0].output_path or "") / "execution.log"
    assert log.read_text().splitlines() == [str(i) for i in range(1, 50001)]


def test_the_run_folder_has_every_output_and_a_second_run_never_touches_the_first(
    pcc_opts: dict[str, Any],
) -> None:
    first = pcc.run(
        ["add a", "fail"],
        agent=pcc.Command('echo "$PARALLELCC_PROMPT" > out.txt; [ "$PARALLELCC_PROMPT" != fail ]'),
        **pcc_opts,
    )
    run_dir = first.run_dir
    assert run_dir.parent == Path(pcc_opts["output_dir"]).resolve()
    for name in ("run.json", "results.csv", "summary.json", "summary-report.md"):
        assert (run_dir / name).is_file(), name
    for task_id in ("task-1", "task-2"):
        for name in ("metadata.json", "execution.log", "changes.patch", "changed-files/out.txt"):
            assert (run_dir / task_id / name).is_file(), f"{task_id}/{name}"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["success"] is False and summary["run_id"] == first.run_id
    assert [t["status"] for t in summary["tasks"]] == ["completed", "failed"]
    csv = pd.read_csv(run_dir / "results.csv")
    assert csv["task_id"].tolist() == ["task-1", "task-2"]
    assert csv["status"].tolist() == ["completed", "failed"]
    assert "task-2" in (run_dir / "summary-report.md").read_text()
    assert first.report_path == run_dir / "summary-report.md"
    loaded = pcc.load_run(run_dir)
    assert [t.status for t in loaded.tasks] == [TaskStatus.COMPLETED, TaskStatus.FAILED]

    before = tree_state(run_dir)
    second = pcc.run(["add a", "fail"], agent=pcc.Command("echo again > out.txt"), **pcc_opts)
    assert second.run_dir != run_dir and second.run_id != first.run_id
    assert second.success
    assert tree_state(run_dir) == before
    assert sorted(p.name for p in run_dir.parent.iterdir()) == sorted(
        [".gitignore", first.run_id, second.run_id]
    )


# -- validation -------------------------------------------------------------------------------

_INVALID: dict[str, tuple[dict[str, Any], type[pcc.ParallelCCError], list[str]]] = {
    "empty list": ({"tasks": []}, pcc.ValidationError, ["task list is empty"]),
    "missing task file": (
        {"tasks": "{tmp}/missing-tasks.txt"},
        pcc.TaskFileError,
        ["missing-tasks.txt", "does not exist"],
    ),
    "duplicate ids": (
        {"tasks": [Task("a", id="same"), Task("b", id="same")]},
        pcc.ValidationError,
        ["'same'", "unique"],
    ),
    "unsafe id": (
        {"tasks": [Task("a", id="../escape")]},
        pcc.ValidationError,
        ["'../escape'", "folder name"],
    ),
    "unsafe id with a slash": (
        {"tasks": [Task("a", id="a/b")]},
        pcc.ValidationError,
        ["'a/b'"],
    ),
    "max_concurrent 0": ({"max_concurrent": 0}, pcc.ValidationError, ["max_concurrent", "0"]),
    "max_concurrent -1": ({"max_concurrent": -1}, pcc.ValidationError, ["max_concurrent", "-1"]),
    "max_concurrent 2.5": (
        {"max_concurrent": 2.5}, pcc.ValidationError, ["max_concurrent", "2.5"]
    ),
    "max_concurrent '3abc'": (
        {"max_concurrent": "3abc"}, pcc.ValidationError, ["max_concurrent", "'3abc'"]
    ),
    "max_concurrent NaN": (
        {"max_concurrent": float("nan")}, pcc.ValidationError, ["max_concurrent", "nan"]
    ),
    "repo not a git repository": (
        {"repo": "{tmp}/plain"}, pcc.RepositoryError, ["plain", "not a git repository"]
    ),
    "repo missing": ({"repo": "{tmp}/nowhere"}, pcc.RepositoryError, ["nowhere", "not exist"]),
    "unknown backend": ({"backend": "docker"}, pcc.ValidationError, ["'docker'", "unknown"]),
    "unknown agent": ({"agent": "gpt"}, pcc.ValidationError, ["'gpt'", "unknown"]),
    "claude without credentials": (
        {"agent": "claude"}, pcc.CredentialsError, ["ClaudeCode", "ANTHROPIC_API_KEY"]
    ),
    "negative task timeout": (
        {"task_timeout": -1}, pcc.ValidationError, ["task_timeout", "-1"]
    ),
    "bad per-task timeout": (
        {"tasks": [Task("a", timeout=0)]}, pcc.ValidationError, ["timeout", "task 1"]
    ),
    "NUL in a prompt": ({"tasks": ["a\0b"]}, pcc.ValidationError, ["task 1", "NUL"]),
    "negative retry backoff": (
        {"retry_backoff_s": -1}, pcc.ValidationError, ["retry_backoff_s", "-1", "0 or more"]
    ),
    "retry backoff None": (
        {"retry_backoff_s": None}, pcc.ValidationError, ["retry_backoff_s", "None", "=0"]
    ),
}


@pytest.mark.parametrize("case", list(_INVALID))
def test_bad_input_is_rejected_before_anything_starts(
    case: str, pcc_opts: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN",
                "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "plain").mkdir()
    changes, expected, fragments = _INVALID[case]
    options: dict[str, Any] = {"tasks": ["a valid prompt"], "agent": pcc.Command("true"),
                               **pcc_opts}
    options.update(
        {k: v.format(tmp=tmp_path) if isinstance(v, str) and "{tmp}" in v else v
         for k, v in changes.items()}
    )
    tasks = options.pop("tasks")
    out = Path(options["output_dir"])
    out.mkdir()
    started: list[Event] = []
    with pytest.raises(expected) as info:
        pcc.run(tasks, listeners=[started.append], **options)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message and message.endswith("."), message
    assert isinstance(info.value, pcc.ParallelCCError)
    assert list(out.iterdir()) == [], "a run folder was created for bad input"
    assert started == []


@pytest.mark.parametrize("value", [-1, None, "soon", float("nan"), True])
def test_the_retry_backoff_error_suggests_only_values_that_are_accepted(
    value: Any, pcc_opts: dict[str, Any]
) -> None:
    with pytest.raises(pcc.ValidationError) as info:
        pcc.submit(["x"], agent=pcc.Command("true"), retry_backoff_s=value, **pcc_opts)
    message = str(info.value)
    assert "retry_backoff_s=2" in message and "retry_backoff_s=0" in message
    assert "retry_backoff_s=None" not in message and "or None" not in message


def test_an_output_dir_that_cannot_be_written_is_one_sentence(
    pcc_opts: dict[str, Any], unwritable_folder: Path
) -> None:
    before = sorted(unwritable_folder.iterdir())
    for output_dir in (unwritable_folder, unwritable_folder / "results"):
        with pytest.raises(pcc.ValidationError) as info:
            pcc.run(["x"], agent=pcc.Command("true"), **{**pcc_opts, "output_dir": output_dir})
        message = str(info.value)
        assert message.startswith(f"output_dir {str(output_dir)!r} cannot be written (")
        assert message.endswith("; pass a folder you can write to.") and "\n" not in message
    assert sorted(unwritable_folder.iterdir()) == before


@pytest.fixture
def unwritable_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot write to: read-only by its permissions, or, as root (who
    ignores permissions), a read-only mount; where root cannot mount, /sys, which refuses new
    folders to anyone."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mount = ["mount", "-t", "tmpfs", "-o", "ro", "pcc-read-only", str(folder)]
    if subprocess.run(mount, capture_output=True, check=False).returncode != 0:
        yield Path("/sys")
        return
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_the_same_input_with_good_values_runs(pcc_opts: dict[str, Any], tmp_path: Path) -> None:
    # The validation cases above differ from this run only in the one bad value.
    (tmp_path / "tasks.txt").write_text("# a comment\nfirst prompt\n\nsecond prompt\n")
    result = pcc.run(
        str(tmp_path / "tasks.txt"), agent=pcc.Command("true"), max_concurrent="2",
        task_timeout=30, **pcc_opts,
    )
    assert result.success
    assert [t.prompt for t in result.tasks] == ["first prompt", "second prompt"]
