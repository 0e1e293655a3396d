"""The run folder's reader: runs whose process died, damaged files, listing an output folder,
and who may import and spell what."""

from __future__ import annotations

import ast
import json
import logging
import os
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import parallelcc_sdk as pcc
from parallelcc_sdk.errors import RunFolderError, RunFolderNotFoundError, ValidationError
from parallelcc_sdk.models import RunStatus, TaskResult, TaskStatus
from parallelcc_sdk.results import RunResult, RunSummary
from parallelcc_sdk.runfolder import list_runs, load_run, read_journal, read_run_info
from parallelcc_sdk.runfolder.codec import task_result_to_json
from parallelcc_sdk.runfolder.process import RunProcess
from parallelcc_sdk.runfolder.reader import INTERRUPTED_PENDING_ERROR, INTERRUPTED_RUNNING_ERROR
from parallelcc_sdk.runfolder.writer import (
    RunJournal,
    create_run_dir,
    mark_interrupted,
    write_run_outputs,
    write_task_metadata,
)

PACKAGE = Path(pcc.__file__).resolve().parent
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def pending(task_id: str) -> TaskResult:
    return TaskResult(task_id=task_id, prompt=f"prompt {task_id}", output_path=f"/r/{task_id}")


def completed(task_id: str, cost: float | None = 0.25) -> TaskResult:
    return pending(task_id).replace(
        status=TaskStatus.COMPLETED,
        exit_code=0,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=4),
        duration_s=4.0,
        cost_usd=cost,
        sandbox_id=f"sb-{task_id}",
        attempts=1,
    )


def running(task_id: str) -> TaskResult:
    return pending(task_id).replace(
        status=TaskStatus.RUNNING, started_at=T0, sandbox_id=f"sb-{task_id}", phase="running"
    )


@pytest.fixture
def other_process() -> Iterator[subprocess.Popen[bytes]]:
    """A real process to stand for a run's process, to be killed by the test."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def journal_of(run_dir: Path, process: RunProcess, tasks: list[TaskResult]) -> RunJournal:
    journal = RunJournal(run_dir, run_dir.name, {"max_concurrent": 2}, tasks)
    journal.process = process
    journal.write()
    return journal


def half_done_run(run_dir: Path, process: RunProcess) -> RunJournal:
    """task-1 completed (with metadata), task-2 running, task-3 pending."""
    tasks = [pending("task-1"), pending("task-2"), pending("task-3")]
    journal = journal_of(run_dir, process, tasks)
    journal.update(running("task-1"))
    journal.update(completed("task-1"))
    write_task_metadata(run_dir / "task-1", completed("task-1"))
    journal.update(running("task-2"))
    return journal


# -- a run whose process died ------------------------------------------------------------------


def test_a_run_whose_process_died_is_interrupted_and_no_task_runs_on(
    tmp_path: Path, other_process: subprocess.Popen[bytes]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    half_done_run(run_dir, RunProcess.of(other_process.pid))

    live = load_run(run_dir)
    assert live.state is RunStatus.RUNNING
    assert [t.status for t in live.tasks] == ["completed", "running", "pending"]

    other_process.kill()
    other_process.wait()
    loaded = load_run(run_dir)
    assert loaded.state is RunStatus.INTERRUPTED
    assert loaded.tasks[0] == completed("task-1")
    assert loaded.tasks[1] == running("task-2").replace(
        status=TaskStatus.CANCELLED, error=INTERRUPTED_RUNNING_ERROR, phase=None
    )
    assert loaded.tasks[2] == pending("task-3").replace(
        status=TaskStatus.CANCELLED, error=INTERRUPTED_PENDING_ERROR
    )
    assert loaded.summary.cancelled_count == 2 and loaded.summary.success_count == 1

    # The journal itself still says what was recorded; only its reading is settled.
    journal = read_journal(run_dir)
    assert journal.recorded_state is RunStatus.RUNNING and journal.process_alive is False
    assert journal.state is RunStatus.INTERRUPTED
    assert [t.status for t in journal.tasks] == ["completed", "running", "pending"]

    info = read_run_info(run_dir)
    assert info.state is RunStatus.INTERRUPTED
    assert dict(info.counts) == {
        "pending": 0,
        "running": 0,
        "completed": 1,
        "failed": 0,
        "cancelled": 2,
        "timed_out": 0,
    }


def test_mark_interrupted_closes_the_journal_of_a_dead_run_only(
    tmp_path: Path, other_process: subprocess.Popen[bytes]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    half_done_run(run_dir, RunProcess.of(other_process.pid))
    assert mark_interrupted(run_dir) is False  # alive: nothing is touched
    assert (run_dir / "journal.jsonl").exists()

    other_process.kill()
    other_process.wait()
    before = load_run(run_dir)
    assert mark_interrupted(run_dir) is True
    assert not (run_dir / "journal.jsonl").exists()
    data = json.loads((run_dir / "run.json").read_text())
    assert data["state"] == "interrupted" and data["finished_at"]
    assert [t["status"] for t in data["tasks"]] == ["completed", "cancelled", "cancelled"]
    after = load_run(run_dir)
    assert after.tasks == before.tasks and after.state is RunStatus.INTERRUPTED
    assert mark_interrupted(run_dir) is False  # already closed


def test_a_reused_pid_is_not_mistaken_for_the_run(tmp_path: Path) -> None:
    me = RunProcess.current()
    assert me.is_alive() is True
    assert me.start_ticks is not None
    # Same pid, another start time: the run's process died and its pid was given to another.
    reused = RunProcess(me.pid, me.host, me.boot_id, me.start_ticks - 1)
    assert reused.is_alive() is False
    rebooted = RunProcess(me.pid, me.host, "another-boot", me.start_ticks)
    assert rebooted.is_alive() is False


def test_a_run_of_another_machine_is_shown_as_recorded(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    elsewhere = RunProcess(1, f"not-{socket.gethostname()}", None, None)
    half_done_run(run_dir, elsewhere)
    loaded = load_run(run_dir)
    assert read_journal(run_dir).process_alive is None
    assert loaded.state is RunStatus.RUNNING
    assert [t.status for t in loaded.tasks] == ["completed", "running", "pending"]


# -- damaged files ----------------------------------------------------------------------------


def finished_run_folder(output_dir: Path, tasks: list[TaskResult]) -> Path:
    run_id, run_dir = create_run_dir(output_dir)
    journal = RunJournal(run_dir, run_id, {}, [pending(t.task_id) for t in tasks])
    journal.write()
    for task in tasks:
        journal.update(task)
        write_task_metadata(run_dir / task.task_id, task)
    summary = RunSummary.from_results(run_id, tasks, 9.0)
    write_run_outputs(RunResult(run_id, run_dir, tuple(tasks), summary))
    journal.finish(RunStatus.FINISHED)
    return run_dir


def test_a_damaged_summary_falls_back_to_the_journal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tasks = [completed("task-1"), completed("task-2").replace(status=TaskStatus.FAILED)]
    run_dir = finished_run_folder(tmp_path, tasks)
    (run_dir / "summary.json").write_bytes(b'{"run_id": "x", "tasks": [')  # cut short
    with caplog.at_level(logging.WARNING, logger="parallelcc_sdk"):
        loaded = load_run(run_dir)
    assert loaded.tasks == tuple(tasks)
    assert loaded.state is RunStatus.FINISHED
    assert (loaded.summary.success_count, loaded.summary.failure_count) == (1, 1)
    assert "summary.json" in caplog.text and "journal" in caplog.text


def test_a_damaged_run_json_is_a_run_folder_error_in_one_sentence(tmp_path: Path) -> None:
    run_id, run_dir = create_run_dir(tmp_path)
    RunJournal(run_dir, run_id, {}, [pending("task-1")]).write()
    (run_dir / "run.json").write_bytes(b"\x00\x00\x00")
    with pytest.raises(RunFolderError) as caught:
        load_run(run_dir)
    message = str(caught.value)
    assert not isinstance(caught.value, ValidationError)
    assert message.count(". ") == 0 and "\n" not in message
    assert str(run_dir) in message and "run.json is damaged" in message
    assert "restore the file or remove the run folder" in message

    for damage in (b"[]", b'{"tasks": 3}', b'{"state": "exploded", "tasks": []}'):
        (run_dir / "run.json").write_bytes(damage)
        with pytest.raises(RunFolderError, match=r"run\.json is damaged"):
            load_run(run_dir)


def test_paths_that_hold_no_run_are_bad_input(tmp_path: Path) -> None:
    for call in (load_run, read_run_info, read_journal, list_runs):
        with pytest.raises(RunFolderNotFoundError, match=r"does not exist|not a run folder|no run"):
            call(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(RunFolderNotFoundError):
        load_run(tmp_path)
    assert issubclass(RunFolderNotFoundError, ValidationError)
    assert issubclass(RunFolderNotFoundError, RunFolderError)


def test_a_task_id_from_a_damaged_journal_cannot_lead_out_of_the_run_folder(
    tmp_path: Path, other_process: subprocess.Popen[bytes]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    journal = journal_of(run_dir, RunProcess.of(other_process.pid), [pending("task-1")])
    outside = tmp_path / "metadata.json"
    outside.write_text(json.dumps({"task_id": "..", "prompt": "p", "status": "completed"}))
    journal.update(pending("..").replace(status=TaskStatus.RUNNING))
    # The record stays as the journal has it: nothing is read from outside the run folder.
    assert [t.status for t in load_run(run_dir).tasks] == ["pending", "running"]


# -- listing ----------------------------------------------------------------------------------


def test_list_runs_newest_first_with_counts_cost_and_state(
    tmp_path: Path, other_process: subprocess.Popen[bytes]
) -> None:
    out = tmp_path / "out"
    finished = finished_run_folder(
        out, [completed("task-1", 0.5), completed("task-2", None).replace(status="failed")]
    )
    dead_dir = out / "20990101-000000-dead00"
    dead_dir.mkdir()
    half_done_run(dead_dir, RunProcess.of(other_process.pid))
    live_dir = out / "20990101-000001-11ve00"
    live_dir.mkdir()
    live = half_done_run(live_dir, RunProcess.current())
    damaged = out / "20990101-000002-bad000"
    damaged.mkdir()
    (damaged / "run.json").write_text("{")
    (out / "not-a-run").mkdir()
    (out / "notes.txt").write_text("x")
    other_process.kill()
    other_process.wait()

    runs = list_runs(out)
    assert [r.run_dir for r in runs] == [damaged, live_dir, dead_dir, finished]
    bad, running_now, dead, done = runs

    assert bad.state is None and bad.problem and "run.json is damaged" in bad.problem
    assert running_now.state is RunStatus.RUNNING
    assert running_now.counts["running"] == 1 and running_now.counts["pending"] == 1
    assert running_now.duration_s is not None and running_now.duration_s >= 0
    assert dead.state is RunStatus.INTERRUPTED and dead.counts["cancelled"] == 2
    assert done.state is RunStatus.FINISHED and done.problem is None
    assert (done.total_tasks, done.counts["completed"], done.counts["failed"]) == (2, 1, 1)
    assert done.cost_usd == pytest.approx(0.5)
    assert dead.cost_usd == pytest.approx(0.25)
    assert done.created_at is not None and done.finished_at is not None
    assert done.duration_s == pytest.approx((done.finished_at - done.created_at).total_seconds())
    live.finish(RunStatus.CANCELLED)
    assert read_run_info(live_dir).state is RunStatus.CANCELLED


def test_list_runs_reads_no_task_metadata_of_a_finished_run(tmp_path: Path) -> None:
    run_dir = finished_run_folder(tmp_path, [completed("task-1"), completed("task-2")])
    for task_id in ("task-1", "task-2"):
        (run_dir / task_id / "metadata.json").write_text("not read")
    (run_dir / "summary.json").write_text("not read either")
    (info,) = list_runs(tmp_path)
    assert info.counts["completed"] == 2 and info.problem is None


def test_a_cost_nobody_reported_is_none(tmp_path: Path) -> None:
    finished_run_folder(tmp_path, [completed("task-1", None)])
    (info,) = list_runs(tmp_path)
    assert info.cost_usd is None


# -- who may import and spell what ------------------------------------------------------------


def module_imports(path: Path) -> set[str]:
    """The modules a file imports at its top level (imports inside functions are not counted)."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_results_import_neither_the_writer_nor_the_reader() -> None:
    # The writer and reader import the result types, never the other way round.
    imports = module_imports(PACKAGE / "results.py")
    assert not any("runfolder" in name or "outputs" in name for name in imports), imports
    assert not any("writer" in name for name in module_imports(PACKAGE / "runfolder/reader.py"))


RUN_FOLDER_NAMES = {
    "run.json",
    "journal.jsonl",
    "summary.json",
    "summary-report.md",
    "results.csv",
    ".gitignore",
    "metadata.json",
    "execution.log",
    "events.jsonl",
    "changes.patch",
    "changed-files",
    "snapshot.json",
    "snapshot.patch",
}


def test_run_folder_names_are_spelled_only_in_the_layout() -> None:
    spelled: list[str] = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "runfolder" / "layout.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in RUN_FOLDER_NAMES:
                spelled.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.value!r}")
    assert spelled == []


def test_run_status_compares_as_a_string() -> None:
    assert RunStatus.FINISHED == "finished"
    assert json.dumps({"state": RunStatus.INTERRUPTED}) == '{"state": "interrupted"}'
    assert [s.value for s in RunStatus] == ["running", "finished", "cancelled", "interrupted"]
    assert pcc.RunStatus is RunStatus and pcc.load_run is load_run


def test_git_error_is_a_parallelcc_error() -> None:
    from parallelcc_sdk._git import GitError, git_sync

    assert pcc.GitError is GitError and issubclass(GitError, pcc.ParallelCCError)
    with pytest.raises(pcc.ParallelCCError, match="git rev-parse failed"):
        git_sync("rev-parse", "--verify", "no-such-ref", cwd=Path(os.sep))


def test_a_journal_of_the_first_format_still_loads(tmp_path: Path) -> None:
    # Format 1 rewrote run.json whole at every update and had no journal.jsonl nor process.
    records = [completed("task-1"), running("task-2")]
    (tmp_path / "run.json").write_text(
        json.dumps(
            {
                "format_version": 1,
                "run_id": "r1",
                "state": "running",
                "created_at": "2026-11-27T08:00:00Z",
                "updated_at": "2026-11-27T08:00:09Z",
                "finished_at": None,
                "config": {},
                "tasks": [task_result_to_json(t) for t in records],
            }
        )
    )
    loaded = load_run(tmp_path)
    assert loaded.tasks == tuple(records)
    assert loaded.state is RunStatus.RUNNING  # whose process it was cannot be told
    assert read_journal(tmp_path).process is None
