"""The results DataFrame schema, the run summary arithmetic and RunResult behaviour."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from parallelcc_sdk.errors import RunFolderError, ValidationError
from parallelcc_sdk.models import STATUS_ORDER, TaskResult, TaskStatus
from parallelcc_sdk.results import (
    COLUMNS,
    SCHEMA,
    STATUS_DTYPE,
    RunResult,
    RunSummary,
    build_dataframe,
    load_run,
)

T0 = datetime(2026, 11, 27, 8, 15, 2, 123456, tzinfo=UTC)

EXPECTED_DTYPES = {
    "task_id": "string",
    "prompt": "string",
    "status": "category",
    "exit_code": "Int64",
    "started_at": "datetime64[us, UTC]",
    "finished_at": "datetime64[us, UTC]",
    "duration_s": "float64",
    "files_changed": "Int64",
    "lines_added": "Int64",
    "lines_removed": "Int64",
    "cost_usd": "float64",
    "input_tokens": "Int64",
    "output_tokens": "Int64",
    "num_turns": "Int64",
    "error": "string",
    "output_path": "string",
    "sandbox_id": "string",
    "attempts": "Int64",
    "cache_read_tokens": "Int64",
    "cache_creation_tokens": "Int64",
    "session_id": "string",
    "phase": "string",
    "last_output": "string",
    "agent_cost_usd": "float64",
    "sandbox_cost_usd": "float64",
    "isolation": "string",
    "candidate_of": "string",
    "candidate": "Int64",
    "selected": "boolean",
    "selection_reason": "string",
    "check_exit_code": "Int64",
}


def finished(task_id: str, duration: float | None, **fields: Any) -> TaskResult:
    started = T0 if duration is not None else None
    ended = T0 + timedelta(seconds=duration) if duration is not None else None
    values: dict[str, Any] = {
        "status": TaskStatus.COMPLETED,
        "started_at": started,
        "finished_at": ended,
        "duration_s": duration,
        **fields,
    }
    return TaskResult(task_id=task_id, prompt=f"prompt of {task_id}", **values)


def run_result(tasks: list[TaskResult], total: float = 10.0) -> RunResult:
    summary = RunSummary.from_results("run-1", tasks, total)
    return RunResult("run-1", Path("runs/run-1"), tuple(tasks), summary)


def dtype_names(df: pd.DataFrame) -> dict[str, str]:
    return {str(k): str(v) for k, v in df.dtypes.items()}


# --- schema --------------------------------------------------------------------------------


def test_columns_are_the_contract_columns_then_the_extras_in_order() -> None:
    assert list(EXPECTED_DTYPES) == COLUMNS
    assert {k: str(v) for k, v in SCHEMA.items()} == EXPECTED_DTYPES


def test_status_dtype_is_the_fixed_unordered_status_category() -> None:
    assert list(STATUS_DTYPE.categories) == list(STATUS_ORDER)
    assert STATUS_DTYPE.ordered is False
    assert SCHEMA["status"] == STATUS_DTYPE


def test_dataframe_has_exact_columns_and_dtypes() -> None:
    df = build_dataframe(
        [finished("task-1", 3.5, exit_code=0, cost_usd=0.01), finished("t2", None)]
    )
    assert list(df.columns) == COLUMNS
    assert dtype_names(df) == EXPECTED_DTYPES
    assert df["status"].dtype == STATUS_DTYPE


def test_empty_input_keeps_columns_and_dtypes() -> None:
    df = build_dataframe([])
    assert len(df) == 0
    assert list(df.columns) == COLUMNS
    assert dtype_names(df) == EXPECTED_DTYPES


def test_rows_follow_input_order_and_missing_values_are_na() -> None:
    tasks = [
        finished("b", 2.0, exit_code=1, error="boom", files_changed=3, input_tokens=10),
        TaskResult(task_id="a", prompt="never ran", status=TaskStatus.CANCELLED),
    ]
    df = build_dataframe(tasks)
    assert df["task_id"].tolist() == ["b", "a"]
    assert df["status"].tolist() == ["completed", "cancelled"]
    assert df.loc[0, "exit_code"] == 1
    assert df.loc[0, "error"] == "boom"
    assert df.loc[0, "attempts"] == 0
    never_ran = df.loc[1]
    for column in ("exit_code", "started_at", "duration_s", "error", "files_changed", "phase"):
        assert pd.isna(never_ran[column]), column
    assert df.loc[1, "error"] is pd.NA  # nullable "string" dtype: pd.NA, not NaN or None


def test_datetimes_are_converted_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2026, 1, 1, 12, 0, tzinfo=plus_two)
    naive = datetime(2026, 1, 1, 12, 0)
    df = build_dataframe(
        [
            TaskResult("x", "p", started_at=local, finished_at=naive),
            TaskResult("y", "p", started_at=T0),
        ]
    )
    assert df.loc[0, "started_at"] == pd.Timestamp("2026-01-01 10:00", tz="UTC")
    assert df.loc[0, "finished_at"] == pd.Timestamp("2026-01-01 12:00", tz="UTC")
    assert df.loc[1, "started_at"].microsecond == T0.microsecond


def test_value_counts_lists_every_status() -> None:
    df = build_dataframe([finished("a", 1.0)])
    counts = df["status"].value_counts()
    assert set(counts.index) == set(STATUS_ORDER)
    assert counts["completed"] == 1
    assert counts["failed"] == 0


def test_metadata_keys_become_columns_in_first_seen_order() -> None:
    tasks = [
        finished("a", 1.0, metadata={"repo": "r1", "n": 1}),
        finished("b", 1.0, metadata={"owner": "me", "repo": "r2"}),
        finished("c", 1.0),
    ]
    df = build_dataframe(tasks)
    assert list(df.columns) == [*COLUMNS, "repo", "n", "owner"]
    assert df["repo"].tolist()[:2] == ["r1", "r2"]
    assert pd.isna(df.loc[2, "repo"])
    assert pd.isna(df.loc[0, "owner"])
    assert df.loc[0, "n"] == 1
    assert dtype_names(df[COLUMNS]) == EXPECTED_DTYPES


def test_metadata_key_clashing_with_a_standard_column_is_prefixed() -> None:
    tasks = [finished("a", 1.0, metadata={"status": "draft", "meta_status": "x", "prompt": "p"})]
    df = build_dataframe(tasks)
    assert list(df.columns)[len(COLUMNS) :] == ["meta_status", "meta_meta_status", "meta_prompt"]
    assert df.loc[0, "status"] == "completed"
    assert df.loc[0, "meta_status"] == "draft"
    assert df.loc[0, "meta_meta_status"] == "x"
    assert df.loc[0, "prompt"] == "prompt of a"
    assert df.loc[0, "meta_prompt"] == "p"


# --- summary -------------------------------------------------------------------------------


def test_summary_counts_and_time_saved_use_only_tasks_that_ran() -> None:
    tasks = [
        finished("ok", 10.0, files_changed=2, cost_usd=0.25),
        finished("bad", 20.0, status=TaskStatus.FAILED, files_changed=1, cost_usd=0.5),
        finished("slow", 30.0, status=TaskStatus.TIMED_OUT),
        finished("stopped", 5.0, status=TaskStatus.CANCELLED),
        TaskResult("never", "p", status=TaskStatus.CANCELLED),
    ]
    s = RunSummary.from_results("r", tasks, total_duration_s=25.0)
    assert (s.total_tasks, s.success_count, s.failure_count) == (5, 1, 1)
    assert (s.cancelled_count, s.timed_out_count) == (2, 1)
    assert s.sequential_duration_s == pytest.approx(65.0)
    assert s.time_saved_s == pytest.approx(40.0)
    assert s.total_files_changed == 3
    assert s.total_cost_usd == pytest.approx(0.75)


def test_time_saved_is_never_negative() -> None:
    s = RunSummary.from_results("r", [finished("a", 3.0)], total_duration_s=10.0)
    assert s.sequential_duration_s == 3.0
    assert s.time_saved_s == 0.0


def test_summary_of_no_tasks_is_zero() -> None:
    s = RunSummary.from_results("r", [], total_duration_s=0.5)
    assert s.total_tasks == 0
    assert s.sequential_duration_s == 0.0
    assert s.total_cost_usd is None


def test_unknown_cost_is_none_not_zero() -> None:
    # Plain commands report no cost: the total is unknown, not free.
    s = RunSummary.from_results("r", [finished("a", 1.0), finished("b", 1.0)], 1.0)
    assert s.total_cost_usd is None
    assert RunSummary.from_dict(s.to_dict()).total_cost_usd is None
    some = RunSummary.from_results("r", [finished("a", 1.0, cost_usd=0.0), finished("b", 1.0)], 1)
    assert some.total_cost_usd == 0.0 and isinstance(some.total_cost_usd, float)


def test_last_output_is_a_column() -> None:
    tasks = [finished("a", 1.0, last_output="1 failed, 51 passed in 5.98s"), finished("b", 1.0)]
    df = run_result(tasks).df
    assert df["last_output"].tolist() == ["1 failed, 51 passed in 5.98s", pd.NA]


def test_summary_dict_round_trip() -> None:
    s = RunSummary.from_results("r", [finished("a", 3.0, cost_usd=0.1)], total_duration_s=1.0)
    d = s.to_dict()
    assert list(d) == [
        "run_id",
        "total_tasks",
        "success_count",
        "failure_count",
        "cancelled_count",
        "timed_out_count",
        "total_duration_s",
        "sequential_duration_s",
        "time_saved_s",
        "total_files_changed",
        "total_cost_usd",
    ]
    assert RunSummary.from_dict(d) == s
    with pytest.raises(ValidationError, match="time_saved_s"):
        RunSummary.from_dict({k: v for k, v in d.items() if k != "time_saved_s"})


# --- RunResult -----------------------------------------------------------------------------


def test_success_needs_tasks_and_all_completed() -> None:
    assert run_result([finished("a", 1.0), finished("b", 2.0)]).success is True
    assert run_result([]).success is False
    assert (
        run_result([finished("a", 1.0), finished("b", 1.0, status=TaskStatus.FAILED)]).success
        is False
    )
    assert run_result([finished("a", None, status=TaskStatus.CANCELLED)]).success is False


def test_getitem_by_task_id() -> None:
    result = run_result([finished("a", 1.0), finished("b", 2.0)])
    assert result["b"].duration_s == 2.0
    with pytest.raises(KeyError, match="zzz"):
        result["zzz"]


def test_df_and_report_path() -> None:
    result = run_result([finished("a", 1.0)])
    assert result.report_path == Path("runs/run-1/summary-report.md")
    df = result.df
    assert dtype_names(df) == EXPECTED_DTYPES
    df.loc[0, "prompt"] = "edited"
    assert result.df.loc[0, "prompt"] == "prompt of a"  # each access is a fresh copy


def test_repr_is_short_and_counts_statuses() -> None:
    result = run_result([finished("a", 1.0), finished("b", 1.0, status=TaskStatus.FAILED)])
    text = repr(result)
    assert text == (
        "RunResult(run_id='run-1', tasks=2, completed=1, failed=1, run_dir='runs/run-1')"
    )


def test_html_repr_escapes_text_and_shows_totals() -> None:
    evil = TaskResult(
        "x<y",
        "<script>alert(1)</script> & more",
        status=TaskStatus.FAILED,
        duration_s=7384.0,
        cost_usd=1.5,
    )
    html_text = run_result([evil, finished("ok", 2.0)], total=3.0)._repr_html_()
    assert "<script>" not in html_text
    assert "&lt;script&gt;" in html_text
    assert "x&lt;y" in html_text
    assert ">finished</b>" in html_text
    assert "✗ 1 failed" in html_text and "✓ 1 completed" in html_text
    assert "2h 03m 04s" in html_text  # the task's duration
    assert "wall clock 3.0s" in html_text and "sequential 2h 03m 06s" in html_text
    assert "cost $1.50" in html_text


def test_html_repr_shows_where_the_run_folder_is() -> None:
    html_text = run_result([finished("ok", 1.0)])._repr_html_()
    assert "run run-1" in html_text
    assert 'user-select: all; word-break: break-all;">runs/run-1</code>' in html_text
    assert "cost not reported" in html_text


def test_html_repr_of_a_large_run_lists_only_the_problems() -> None:
    tasks = [finished(f"task-{i}", 1.0) for i in range(1, 31)]
    tasks[4] = finished("task-5", 1.0, status=TaskStatus.FAILED, error="boom")
    html_text = run_result(tasks)._repr_html_()
    assert html_text.count("<tr>") == 2  # header + the failed task
    assert "29 more tasks not listed" in html_text
    assert html_text.count('title="task-') == 30  # every task is a square in the strip


# --- loading errors and import cost --------------------------------------------------------


def test_load_run_rejects_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        load_run(tmp_path / "nope")


def test_load_run_rejects_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValidationError, match="not a run folder"):
        load_run(tmp_path)


def test_load_run_rejects_corrupt_summary(tmp_path: Path) -> None:
    # A damaged run folder is not bad input: it has an error of its own.
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(RunFolderError, match=r"summary\.json") as caught:
        load_run(tmp_path)
    assert not isinstance(caught.value, ValidationError)
    (tmp_path / "summary.json").write_text('{"tasks": [{"task_id": "a"}], "summary": {}}')
    with pytest.raises(RunFolderError, match="bad task record"):
        load_run(tmp_path)


def test_importing_results_does_not_import_pandas() -> None:
    code = (
        "import sys, parallelcc_sdk.results, parallelcc_sdk.report\n"
        "import parallelcc_sdk.runfolder.writer, parallelcc_sdk.runfolder.reader\n"
        "sys.exit(1 if 'pandas' in sys.modules else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr or "pandas was imported"
