"""Writing a run's folder: run ids, the run.json journal, task metadata and the final outputs.

Every file is written atomically (a temporary file in the same folder, then ``os.replace``), so a
reader or a crash never sees half a file: a killed run leaves the previous complete version.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import secrets
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ParallelCCError, ValidationError
from .models import TaskResult, TaskStatus
from .redaction import Redactor

if TYPE_CHECKING:
    from .results import RunResult

__all__ = [
    "RunJournal",
    "create_run_dir",
    "new_run_id",
    "parse_datetime",
    "task_result_from_json",
    "task_result_to_json",
    "write_run_outputs",
    "write_task_metadata",
]

FORMAT_VERSION = 1
_MAX_RUN_ID_ATTEMPTS = 100
_DATETIME_FIELDS = ("started_at", "finished_at")
_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(TaskResult))


# ---------------------------------------------------------------------------------------------
# Run ids and folders


def new_run_id() -> str:
    """A run id such as ``20261127-081502-3f9a2c``: UTC time, then 6 random hex digits."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(3)}"


def create_run_dir(output_dir: Path) -> tuple[str, Path]:
    """Create a new, empty ``<output_dir>/<run_id>/`` and return ``(run_id, path)``.

    ``mkdir(exist_ok=False)`` is the claim on the id, so two runs started at the same moment,
    even from two processes, never share or overwrite a folder.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(_MAX_RUN_ID_ATTEMPTS):
        run_id = new_run_id()
        run_dir = output_dir / run_id
        try:
            run_dir.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        return run_id, run_dir
    raise ParallelCCError(f"could not find a free run folder name in {output_dir}")


# ---------------------------------------------------------------------------------------------
# JSON conversion


def _format_datetime(value: dt.datetime) -> str:
    if value.tzinfo is None:
        # Naive datetimes are taken as UTC, the only zone the SDK records times in.
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def parse_datetime(value: Any) -> dt.datetime | None:
    """An ISO 8601 string (as written here) back to an aware UTC datetime; ``None`` stays None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 date-time string, got {value!r}")
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _is_missing_scalar(value: Any) -> bool:
    # pandas values (pd.NA, NaT) can only be present if pandas is already loaded.
    pandas = sys.modules.get("pandas")
    if pandas is None:
        return False
    try:
        return bool(pandas.isna(value))
    except (TypeError, ValueError):
        return False


def to_jsonable(value: Any) -> Any:
    """A value as plain JSON data: NaN becomes null, datetimes ISO strings, tuples lists.

    Metadata often comes from a DataFrame, so numpy scalars and pandas missing values are
    converted too; anything else unknown is written as its ``str``.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    # Checked before datetimes because pandas' NaT is a datetime instance.
    if _is_missing_scalar(value):
        return None
    if isinstance(value, dt.datetime):
        return _format_datetime(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return to_jsonable(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def task_result_to_json(result: TaskResult) -> dict[str, Any]:
    """Every field of a ``TaskResult`` as JSON data (the inverse of ``task_result_from_json``)."""
    record: dict[str, Any] = {}
    for name in _FIELD_NAMES:
        value = getattr(result, name)
        if name == "status":
            value = TaskStatus(value).value
        record[name] = to_jsonable(value)
    return record


def task_result_from_json(data: Mapping[str, Any]) -> TaskResult:
    """Rebuild a ``TaskResult``; unknown keys (from a newer version) are ignored."""
    if not isinstance(data.get("task_id"), str) or not isinstance(data.get("prompt"), str):
        raise ValueError("a task record needs string 'task_id' and 'prompt' fields")
    fields: dict[str, Any] = {k: v for k, v in data.items() if k in _FIELD_NAMES}
    try:
        fields["status"] = TaskStatus(fields.get("status", TaskStatus.PENDING.value))
    except ValueError:
        raise ValueError(
            f"task {data['task_id']!r} has an unknown status {fields.get('status')!r}"
        ) from None
    for name in _DATETIME_FIELDS:
        fields[name] = parse_datetime(fields.get(name))
    fields["changed_paths"] = tuple(fields.get("changed_paths") or ())
    fields["secrets_in_changes"] = tuple(fields.get("secrets_in_changes") or ())
    fields["metadata"] = dict(fields.get("metadata") or {})
    if fields.get("attempts") is None:
        fields.pop("attempts", None)
    return TaskResult(**fields)


# ---------------------------------------------------------------------------------------------
# Atomic writes


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step.

    The temporary file is opened with mode 0o666 so the result gets the usual umask permissions.
    There is no fsync: ``os.replace`` already keeps readers and killed processes from seeing a
    partial file, and the journal is rewritten at every state change, so syncing each write
    would slow a run down only to protect against power loss.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    write_text_atomic(path, text + "\n")


# ---------------------------------------------------------------------------------------------
# Journal and per-task files


def _now() -> str:
    return _format_datetime(dt.datetime.now(dt.UTC))


class RunJournal:
    """``run.json``: the run's config, task list and each task's latest record.

    Written before any sandbox starts and rewritten whenever a task changes state, so an
    interrupted run can still be loaded and its sandboxes found. The config is redacted
    (secret-named keys masked, credential-shaped strings removed) before it is stored.
    Safe to call from several threads: each write holds a lock, so an older state never
    replaces a newer one.
    """

    FILE_NAME = "run.json"

    def __init__(
        self,
        run_dir: Path,
        run_id: str,
        config: Mapping[str, Any],
        tasks: Sequence[TaskResult],
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_id = run_id
        self.path = self.run_dir / self.FILE_NAME
        self.state = "running"
        self.created_at = _now()
        self.finished_at: str | None = None
        self._config = Redactor().redact_obj(to_jsonable(config))
        self._records = {t.task_id: task_result_to_json(t) for t in tasks}
        self._lock = threading.Lock()

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "run_id": self.run_id,
            "state": self.state,
            "created_at": self.created_at,
            "updated_at": _now(),
            "finished_at": self.finished_at,
            "config": self._config,
            "tasks": list(self._records.values()),
        }

    def write(self) -> None:
        with self._lock:
            write_json_atomic(self.path, self.to_json())

    def update(self, result: TaskResult) -> None:
        """Record the task's new state; a task the journal has not seen is added at the end."""
        with self._lock:
            self._records[result.task_id] = task_result_to_json(result)
            write_json_atomic(self.path, self.to_json())

    def finish(self, state: str) -> None:
        """Mark the run as over, e.g. ``"finished"``, ``"cancelled"`` or ``"interrupted"``."""
        if not state or state == "running":
            raise ValidationError(f"a finished run needs a final state, not {state!r}")
        with self._lock:
            self.state = state
            self.finished_at = _now()
            write_json_atomic(self.path, self.to_json())


def write_task_metadata(task_dir: Path, result: TaskResult) -> None:
    """Write ``task_dir/metadata.json`` with the task's full record."""
    task_dir = Path(task_dir)
    task_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(task_dir / "metadata.json", task_result_to_json(result))


def write_run_outputs(result: RunResult) -> None:
    """Write the finished run's summary-report.md, summary.json and results.csv."""
    from .report import render_report

    run_dir = Path(result.run_dir)
    write_text_atomic(result.report_path, render_report(result))
    summary = {
        "format_version": FORMAT_VERSION,
        "run_id": result.run_id,
        "success": result.success,
        "summary": to_jsonable(result.summary.to_dict()),
        "tasks": [task_result_to_json(t) for t in result.tasks],
    }
    write_json_atomic(run_dir / "summary.json", summary)
    write_text_atomic(run_dir / "results.csv", result.df.to_csv(index=False))
