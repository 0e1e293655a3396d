"""The ``--json`` document: parallel-cc's keys and units, so scripts that read it keep working.

Durations are whole milliseconds, as in parallel-cc. Where this tool knows more, keys are added
after parallel-cc's; and where parallel-cc wrote ``0`` for a cost nobody reported, this writes
``null``. ``failureCount`` counts timed-out tasks too (parallel-cc had no separate status for
them); ``timedOutCount`` says how many of them there were.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from ..models import TaskResult
from ..results import RunResult

if TYPE_CHECKING:
    import pandas as pd

    from ..land.conflicts import ConflictReport


def run_document(result: RunResult) -> dict[str, Any]:
    summary = result.summary
    reported = any(t.cost_usd is not None for t in result.tasks)
    report = result.report_path
    return {
        "success": result.success,
        "tasks": [task_document(t) for t in result.tasks],
        "summary": {
            "totalDuration": _ms(summary.total_duration_s),
            "sequentialDuration": _ms(summary.sequential_duration_s),
            "timeSaved": _ms(summary.time_saved_s),
            "successCount": summary.success_count,
            "failureCount": summary.failure_count + summary.timed_out_count,
            "cancelledCount": summary.cancelled_count,
            "totalFilesChanged": summary.total_files_changed,
            "totalCost": _number(summary.total_cost_usd) if reported else None,
            "batchId": summary.run_id,
            "totalTasks": summary.total_tasks,
            "timedOutCount": summary.timed_out_count,
        },
        "reportPath": str(report) if report.is_file() else None,
        "runDir": str(result.run_dir),
    }


def task_document(task: TaskResult) -> dict[str, Any]:
    return {
        "taskId": task.task_id,
        "description": task.prompt,
        "status": task.status.value,
        "duration": _ms(task.duration_s),
        "filesChanged": task.files_changed or 0,
        "outputPath": task.output_path,
        "error": task.error,
        "costEstimate": _number(task.cost_usd),
        "exitCode": task.exit_code,
        "linesAdded": task.lines_added,
        "linesRemoved": task.lines_removed,
    }


def conflicts_document(report: ConflictReport) -> dict[str, Any]:
    """``parallelcc show --conflicts --json``: the conflict map, keyed like the run's document.

    ``matrix`` and ``files`` are objects of objects (``matrix[task][other]``), in ``tasks``
    order; ``overlaps`` is one object per pair of tasks and shared file."""
    return {
        "runId": report.run_id,
        "summary": report.summary(),
        "trialMerged": report.trial_merged,
        "note": report.note,
        "tasks": list(report.tasks),
        "order": list(report.order),
        "cleanSet": list(report.clean_set),
        "conflicting": dict(report.conflicting),
        "skipped": dict(report.skipped),
        "matrix": _square(report.matrix),
        "files": _square(report.files),
        "overlaps": _records(report.overlaps),
    }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One object per row: text columns as strings, the others (counts) as whole numbers."""
    columns = [str(c) for c in frame.columns]
    return [
        {c: v if isinstance(v, str) else int(v) for c, v in zip(columns, row, strict=True)}
        for row in frame.astype(object).to_numpy().tolist()
    ]


def _square(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    cells = frame.to_numpy()
    columns = [str(c) for c in frame.columns]
    return {
        str(task): {other: int(n) for other, n in zip(columns, cells[i], strict=True)}
        for i, task in enumerate(frame.index)
    }


def dumps(document: Any) -> str:
    """Pretty-printed with two spaces like parallel-cc; ASCII only, so any terminal or pipe
    encoding carries it unchanged (non-ASCII prompts come back exactly when parsed)."""
    return json.dumps(document, indent=2, ensure_ascii=True, allow_nan=False)


def _ms(seconds: float | None) -> int:
    if seconds is None or not math.isfinite(seconds):
        return 0  # a task that never ran, as parallel-cc reported it
    return round(seconds * 1000)


def _number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
