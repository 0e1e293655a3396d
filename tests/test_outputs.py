"""The on-disk layout: run folders, JSON records, the journal, and loading runs back.

Reading the journal of a run whose process died, listing runs and damaged folders are in
test_runfolder.py; killing a real run in test_run_folder_e2e.py.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parallelcc_sdk.models import RunStatus, TaskResult, TaskStatus
from parallelcc_sdk.results import RunResult, RunSummary, build_dataframe, load_run
from parallelcc_sdk.runfolder import read_journal, writer
from parallelcc_sdk.runfolder.codec import (
    task_result_from_json,
    task_result_to_json,
    to_jsonable,
)
from parallelcc_sdk.runfolder.writer import (
    RunJournal,
    create_run_dir,
    new_run_id,
    write_run_outputs,
    write_task_metadata,
)

T0 = datetime(2026, 11, 27, 8, 15, 2, 123456, tzinfo=UTC)


def full_result(task_id: str = "task-1", **changes: object) -> TaskResult:
    result = TaskResult(
        task_id=task_id,
        prompt="Fix the | pipe\nand the newline",
        status=TaskStatus.COMPLETED,
        exit_code=0,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=12.5),
        duration_s=12.5,
        files_changed=2,
        lines_added=10,
        lines_removed=3,
        cost_usd=0.0123,
        input_tokens=1000,
        output_tokens=200,
        cache_read_tokens=50,
        cache_creation_tokens=5,
        num_turns=4,
        error=None,
        output_path=f"/runs/r/{task_id}",
        sandbox_id="sb-1",
        attempts=2,
        session_id="sess-1",
        final_text="done",
        phase=None,
        last_output="last line",
        changed_paths=("a.py", "dir/b.txt"),
        metadata={"repo": "r1", "n": 3, "tags": ["x", "y"], "nested": {"k": None}},
    )
    return result.replace(**changes)


def pending(task_id: str) -> TaskResult:
    return TaskResult(task_id=task_id, prompt=f"prompt {task_id}")


def finished_run(run_dir: Path, run_id: str, tasks: list[TaskResult]) -> RunResult:
    summary = RunSummary.from_results(run_id, tasks, total_duration_s=20.0)
    return RunResult(run_id, run_dir, tuple(tasks), summary)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


# --- run ids and folders -------------------------------------------------------------------


def test_run_id_is_utc_time_and_random_hex() -> None:
    run_id = new_run_id()
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", run_id)
    stamp = datetime.strptime(run_id[:15], "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
    assert len({new_run_id() for _ in range(50)}) == 50


def test_create_run_dir_makes_missing_output_dir(tmp_path: Path) -> None:
    run_id, run_dir = create_run_dir(tmp_path / "deep" / "results")
    assert run_dir == tmp_path / "deep" / "results" / run_id
    assert run_dir.is_dir()
    # Results kept inside a repository never show in its `git status`.
    assert [p.name for p in run_dir.iterdir()] == [".gitignore"]
    assert (run_dir / ".gitignore").read_text() == "*\n"
    assert (tmp_path / "deep" / "results" / ".gitignore").read_text() == "*\n"


def test_create_run_dir_leaves_an_existing_output_dir_alone(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("the user's own file")
    _, run_dir = create_run_dir(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["mine.txt", run_dir.name])


def test_create_run_dir_retries_on_collision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "20260101-000000-aaaaaa").mkdir()
    (tmp_path / "20260101-000000-aaaaaa" / "keep.txt").write_text("first run")
    ids: Iterator[str] = iter(["20260101-000000-aaaaaa", "20260101-000000-bbbbbb"])
    monkeypatch.setattr(writer, "new_run_id", lambda: next(ids))
    run_id, run_dir = create_run_dir(tmp_path)
    assert run_id == "20260101-000000-bbbbbb"
    assert run_dir == tmp_path / run_id
    assert (tmp_path / "20260101-000000-aaaaaa" / "keep.txt").read_text() == "first run"


def test_two_runs_get_separate_folders_and_the_first_is_untouched(tmp_path: Path) -> None:
    first_id, first_dir = create_run_dir(tmp_path)
    first = finished_run(first_dir, first_id, [full_result("task-1")])
    RunJournal(first_dir, first_id, {"max_concurrent": 2}, first.tasks).write()
    write_task_metadata(first_dir / "task-1", first.tasks[0])
    write_run_outputs(first)
    before = tree_bytes(first_dir)

    second_id, second_dir = create_run_dir(tmp_path)
    second = finished_run(second_dir, second_id, [full_result("task-1", status=TaskStatus.FAILED)])
    RunJournal(second_dir, second_id, {}, second.tasks).write()
    write_task_metadata(second_dir / "task-1", second.tasks[0])
    write_run_outputs(second)

    assert second_dir != first_dir
    assert tree_bytes(first_dir) == before
    assert load_run(first_dir).tasks[0].status == TaskStatus.COMPLETED
    assert load_run(second_dir).tasks[0].status == TaskStatus.FAILED


# --- JSON records --------------------------------------------------------------------------


def test_task_result_json_round_trip() -> None:
    result = full_result()
    record = task_result_to_json(result)
    text = json.dumps(record, allow_nan=False)
    assert task_result_from_json(json.loads(text)) == result
    assert record["status"] == "completed"
    assert record["started_at"] == "2026-11-27T08:15:02.123456Z"
    assert record["changed_paths"] == ["a.py", "dir/b.txt"]


def test_datetimes_are_written_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    result = pending("a").replace(started_at=datetime(2026, 1, 1, 12, 0, tzinfo=plus_two))
    record = task_result_to_json(result)
    assert record["started_at"] == "2026-01-01T10:00:00Z"
    back = task_result_from_json(record)
    assert back.started_at == result.started_at
    assert back.started_at is not None and back.started_at.utcoffset() == timedelta(0)


def test_pending_task_round_trip_keeps_nones() -> None:
    result = pending("a")
    assert task_result_from_json(task_result_to_json(result)) == result


def test_from_json_ignores_unknown_keys_and_rejects_bad_status() -> None:
    record = task_result_to_json(pending("a")) | {"added_in_a_later_version": 1}
    assert task_result_from_json(record) == pending("a")
    with pytest.raises(ValueError, match="unknown status 'done'"):
        task_result_from_json(record | {"status": "done"})
    with pytest.raises(ValueError, match="task_id"):
        task_result_from_json({"prompt": "p"})


def test_metadata_from_dataframes_becomes_plain_json() -> None:
    value = {
        "i": np.int64(3),
        "f": np.float64(1.5),
        "nan": float("nan"),
        "na": pd.NA,
        "nat": pd.NaT,
        "ts": pd.Timestamp("2026-01-01 10:00", tz="UTC"),
        "tuple": (1, 2),
    }
    converted = to_jsonable(value)
    json.dumps(converted, allow_nan=False)
    assert converted == {
        "i": 3,
        "f": 1.5,
        "nan": None,
        "na": None,
        "nat": None,
        "ts": "2026-01-01T10:00:00Z",
        "tuple": [1, 2],
    }
    assert not math.isnan(to_jsonable(np.float64(2.0)))


# --- journal -------------------------------------------------------------------------------


def read_run_json(run_dir: Path) -> dict[str, object]:
    data = json.loads((run_dir / "run.json").read_text())
    assert isinstance(data, dict)
    return data


def test_journal_lifecycle(tmp_path: Path) -> None:
    tasks = [pending("task-1"), pending("task-2")]
    journal = RunJournal(tmp_path, "r1", {"max_concurrent": 2, "backend": "local"}, tasks)
    journal.write()
    data = read_run_json(tmp_path)
    assert data["run_id"] == "r1"
    assert data["state"] == "running"
    assert data["config"] == {"max_concurrent": 2, "backend": "local"}
    assert isinstance(data["created_at"], str)
    assert [t["status"] for t in data["tasks"]] == ["pending", "pending"]  # type: ignore[attr-defined]
    assert data["process"]["pid"] == os.getpid()  # type: ignore[index]

    journal.update(tasks[1].replace(status=TaskStatus.RUNNING, sandbox_id="sb-2"))
    state = read_journal(tmp_path)
    assert [t.task_id for t in state.tasks] == ["task-1", "task-2"]
    assert state.tasks[1] == tasks[1].replace(status=TaskStatus.RUNNING, sandbox_id="sb-2")
    assert state.state is RunStatus.RUNNING and state.process_alive is True

    journal.finish("cancelled")
    data = read_run_json(tmp_path)
    assert data["state"] == "cancelled"
    assert data["finished_at"] is not None
    records = data["tasks"]
    assert isinstance(records, list)
    assert [(r["status"], r["sandbox_id"]) for r in records] == [
        ("pending", None),
        ("running", "sb-2"),
    ]
    # The final run.json holds every update: the journal lines are no longer needed.
    assert not (tmp_path / "journal.jsonl").exists()
    assert read_journal(tmp_path).state is RunStatus.CANCELLED
    assert temp_files(tmp_path) == []


def test_journal_update_appends_a_line_and_never_rewrites_run_json(tmp_path: Path) -> None:
    tasks = [pending(f"task-{i}") for i in range(1, 201)]
    journal = RunJournal(tmp_path, "r", {}, tasks)
    journal.write()
    run_json = tmp_path / "run.json"
    before = (run_json.stat().st_ino, run_json.stat().st_mtime_ns, run_json.read_bytes())

    expected = {t.task_id: t for t in tasks}
    for i, task in enumerate(tasks):
        running = task.replace(status=TaskStatus.RUNNING, started_at=T0, sandbox_id=f"sb-{i}")
        journal.update(running)
        expected[task.task_id] = running
        if i % 2:
            done = full_result(task.task_id, prompt=task.prompt, metadata={}, sandbox_id=f"sb-{i}")
            journal.update(done)
            expected[task.task_id] = done
    journal.update(expected["task-1"])  # nothing changed: nothing is written

    after = (run_json.stat().st_ino, run_json.stat().st_mtime_ns, run_json.read_bytes())
    assert after == before
    lines = (tmp_path / "journal.jsonl").read_bytes().splitlines()
    assert len(lines) == 300
    # A line holds what changed, not the task's whole record.
    first = json.loads(lines[0])
    assert first["task_id"] == "task-1"
    assert set(first["set"]) == {"status", "started_at", "sandbox_id"}
    assert list(read_journal(tmp_path).tasks) == [expected[t.task_id] for t in tasks]


def test_journal_adds_a_task_it_has_not_seen(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path, "r", {}, [pending("task-1")])
    journal.write()
    journal.update(full_result("extra"))
    assert [t.task_id for t in read_journal(tmp_path).tasks] == ["task-1", "extra"]
    assert read_journal(tmp_path).tasks[1] == full_result("extra")


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path, "r", {}, [pending("task-1"), pending("task-2")])
    journal.write()
    journal.update(pending("task-1").replace(status=TaskStatus.RUNNING))
    # A crash in the middle of appending the next line leaves part of it.
    line = (tmp_path / "journal.jsonl").read_bytes()
    with (tmp_path / "journal.jsonl").open("ab") as handle:
        handle.write(line[: len(line) // 2].replace(b"task-1", b"task-2"))
    state = read_journal(tmp_path)
    assert [t.status for t in state.tasks] == [TaskStatus.RUNNING, TaskStatus.PENDING]
    assert state.skipped_lines == 1


class _FailsHalfway:
    """A journal file on a disk that fills up in the middle of one write."""

    def __init__(self, real: object) -> None:
        self.real = real
        self.fail_next = True

    def write(self, data: bytes) -> int:
        if self.fail_next:
            self.fail_next = False
            self.real.write(bytes(data)[:10])  # type: ignore[attr-defined]
            raise OSError(28, "No space left on device")
        return int(self.real.write(data))  # type: ignore[attr-defined]

    def close(self) -> None:
        self.real.close()  # type: ignore[attr-defined]


def test_a_line_cut_short_by_a_write_error_does_not_spoil_the_next(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path, "r", {}, [pending("task-1"), pending("task-2")])
    journal.write()
    journal._lines = _FailsHalfway(journal._lines)  # type: ignore[assignment]
    # A full disk costs the line, not the run: the failure is kept, the next lines go on.
    journal.update(pending("task-1").replace(status=TaskStatus.RUNNING))
    assert journal.write_error is not None and journal.write_error.errno == 28
    journal.update(pending("task-2").replace(status=TaskStatus.RUNNING))
    journal.update(pending("task-1").replace(status=TaskStatus.FAILED, error="disk full"))
    state = read_journal(tmp_path)
    assert [t.status for t in state.tasks] == [TaskStatus.FAILED, TaskStatus.RUNNING]
    assert state.skipped_lines == 1


def test_a_run_json_written_after_lost_lines_holds_every_task_as_it_is(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path, "r", {}, [pending("task-1")])
    journal.write()
    journal._lines = _FailsHalfway(journal._lines)  # type: ignore[assignment]
    journal.update(full_result("task-1"))  # its line is lost on the full disk
    journal.finish(RunStatus.FINISHED)
    assert read_run_json(tmp_path)["tasks"][0]["status"] == "completed"  # type: ignore[index]
    assert read_journal(tmp_path).tasks == (full_result("task-1"),)


def test_journal_config_keeps_no_secrets(tmp_path: Path) -> None:
    config = {"api_key": "sk-ant-abcdefghijklmnop", "model": "opus", "note": "x-api-key: abc12345"}
    RunJournal(tmp_path, "r", config, []).write()
    text = (tmp_path / "run.json").read_text()
    assert "abcdefghijklmnop" not in text
    assert "abc12345" not in text
    assert read_run_json(tmp_path)["config"]["model"] == "opus"  # type: ignore[index]


def test_journal_finish_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = RunJournal(tmp_path, "r", {}, [pending("task-1")])
    journal.write()
    journal.update(full_result("task-1"))
    before = (tmp_path / "run.json").read_bytes()
    real_replace = os.replace
    swaps: list[tuple[Path, Path]] = []

    def crash(src: str | Path, dst: str | Path) -> None:
        raise OSError("disk went away")

    def spy(src: str | Path, dst: str | Path) -> None:
        # The new version must be complete on disk before it takes the journal's name.
        data = json.loads(Path(src).read_text())
        assert (data["state"], data["tasks"][0]["status"]) == ("finished", "completed")
        swaps.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk went away"):
        journal.finish(RunStatus.FINISHED)
    assert (tmp_path / "run.json").read_bytes() == before
    assert temp_files(tmp_path) == []
    # Nothing is lost: the journal still holds the update.
    state = read_journal(tmp_path)
    assert state.recorded_state is RunStatus.RUNNING
    assert state.tasks == (full_result("task-1"),)

    monkeypatch.setattr(os, "replace", spy)
    journal.finish(RunStatus.FINISHED)
    assert [(src.parent, dst) for src, dst in swaps] == [(tmp_path, tmp_path / "run.json")]
    assert read_run_json(tmp_path)["tasks"][0]["status"] == "completed"  # type: ignore[index]
    assert temp_files(tmp_path) == []


def test_journal_rejects_running_as_a_final_state(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path, "r", {}, [])
    with pytest.raises(ValueError, match="final state"):
        journal.finish("running")


# --- final outputs and load_run ------------------------------------------------------------


def test_write_task_metadata(tmp_path: Path) -> None:
    result = full_result()
    write_task_metadata(tmp_path / "task-1", result)
    data = json.loads((tmp_path / "task-1" / "metadata.json").read_text())
    assert task_result_from_json(data) == result


def test_write_outputs_then_load_run_round_trip(tmp_path: Path) -> None:
    run_id, run_dir = create_run_dir(tmp_path)
    tasks = [
        full_result("task-1"),
        full_result(
            "task-2",
            status=TaskStatus.FAILED,
            exit_code=2,
            error="Traceback:\n  boom | bang",
            metadata={"repo": "r2", "owner": "me"},
        ),
        pending("task-3").replace(status=TaskStatus.CANCELLED, error="cancelled by the user"),
    ]
    original = finished_run(run_dir, run_id, tasks)
    write_run_outputs(original)

    assert {p.name for p in run_dir.iterdir()} == {
        ".gitignore",
        "summary-report.md",
        "summary.json",
        "results.csv",
    }
    loaded = load_run(run_dir)
    assert loaded.tasks == original.tasks
    assert loaded.summary == original.summary
    assert loaded.state is RunStatus.FINISHED
    assert loaded.run_id == run_id
    assert loaded.run_dir == run_dir
    pd.testing.assert_frame_equal(loaded.df, original.df)

    csv = pd.read_csv(run_dir / "results.csv")
    assert list(csv.columns) == list(original.df.columns)
    assert csv["task_id"].tolist() == ["task-1", "task-2", "task-3"]
    assert csv.loc[1, "error"] == "Traceback:\n  boom | bang"
    assert "## Errors" in (run_dir / "summary-report.md").read_text()
    assert temp_files(run_dir) == []


def test_interrupted_run_loads_from_journal_and_metadata(tmp_path: Path) -> None:
    run_id, run_dir = create_run_dir(tmp_path)
    tasks = [pending("task-1"), pending("task-2"), pending("task-3")]
    journal = RunJournal(run_dir, run_id, {"max_concurrent": 2}, tasks)
    journal.write()
    done = full_result("task-1")
    journal.update(done)
    write_task_metadata(run_dir / "task-1", done)
    # task-2 finished and wrote its metadata, but the run died before the journal caught up.
    journal.update(pending("task-2").replace(status=TaskStatus.RUNNING, sandbox_id="sb-2"))
    late = full_result("task-2", status=TaskStatus.FAILED, error="boom", sandbox_id="sb-2")
    write_task_metadata(run_dir / "task-2", late)
    (run_dir / "task-3").mkdir()
    (run_dir / "task-3" / "metadata.json").write_text("{truncated")

    loaded = load_run(run_dir)
    assert [t.task_id for t in loaded.tasks] == ["task-1", "task-2", "task-3"]
    assert loaded.tasks[0] == done
    assert loaded.tasks[1] == late
    assert loaded.tasks[2] == pending("task-3")
    assert loaded.run_id == run_id
    assert loaded.state is RunStatus.RUNNING  # its process (this one) is alive
    s = loaded.summary
    assert (s.total_tasks, s.success_count, s.failure_count) == (3, 1, 1)
    assert s.sequential_duration_s == pytest.approx(25.0)
    assert s.total_duration_s >= 0.0
    assert loaded.success is False
    assert list(build_dataframe(loaded.tasks)["status"]) == ["completed", "failed", "pending"]
