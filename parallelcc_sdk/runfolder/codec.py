"""The JSON form of a run folder's records: task results, run summaries, journal lines, times.

Times are ISO 8601 strings in UTC ending in ``Z``; NaN and missing pandas values are ``null``.
Unknown keys are ignored when reading, so a newer SDK's files still load.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from ..models import TaskResult, TaskStatus
from ..results import RunSummary

__all__ = [
    "FORMAT_VERSION",
    "decode_journal_line",
    "encode_journal_line",
    "format_datetime",
    "parse_datetime",
    "run_summary_from_json",
    "run_summary_to_json",
    "task_fields_to_json",
    "task_result_from_json",
    "task_result_to_json",
    "to_jsonable",
]

FORMAT_VERSION = 2
TASK_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TaskResult))
_DATETIME_FIELDS = ("started_at", "finished_at")


# -- times ------------------------------------------------------------------------------------


def format_datetime(value: dt.datetime) -> str:
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


# -- plain values -----------------------------------------------------------------------------


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
        return format_datetime(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return to_jsonable(item())
        except (TypeError, ValueError):
            pass
    return str(value)


# -- task results -----------------------------------------------------------------------------


def task_fields_to_json(result: TaskResult, names: Iterable[str]) -> dict[str, Any]:
    """The named fields of ``result`` as JSON data."""
    record: dict[str, Any] = {}
    for name in names:
        value = getattr(result, name)
        if name == "status":
            value = TaskStatus(value).value
        record[name] = to_jsonable(value)
    return record


def task_result_to_json(result: TaskResult) -> dict[str, Any]:
    """Every field of a ``TaskResult`` as JSON data (the inverse of ``task_result_from_json``)."""
    return task_fields_to_json(result, TASK_FIELDS)


def task_result_from_json(data: Mapping[str, Any]) -> TaskResult:
    """Rebuild a ``TaskResult``; unknown keys (from a newer version) are ignored.

    Raises ``ValueError`` for a record that is not one.
    """
    if not isinstance(data.get("task_id"), str) or not isinstance(data.get("prompt"), str):
        raise ValueError("a task record needs string 'task_id' and 'prompt' fields")
    fields: dict[str, Any] = {k: v for k, v in data.items() if k in TASK_FIELDS}
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
    try:
        return TaskResult(**fields)
    except TypeError as exc:  # e.g. a field of the wrong kind that the dataclass rejects
        raise ValueError(f"task {data['task_id']!r} has a bad record: {exc}") from None


# -- run summaries ----------------------------------------------------------------------------


def run_summary_to_json(summary: RunSummary) -> dict[str, Any]:
    return dict(to_jsonable(summary.to_dict()))


def run_summary_from_json(data: Any) -> RunSummary:
    """Rebuild a ``RunSummary``; raises ``ValueError`` for anything that is not one."""
    if not isinstance(data, Mapping):
        raise ValueError("the run summary is not a JSON object")
    return RunSummary.from_dict(data)


# -- journal lines ----------------------------------------------------------------------------
# One line per task state change: {"task_id": ..., "set": {field: value, ...}} holding only the
# fields that changed since the task's previous line (or its record in run.json).


def encode_journal_line(task_id: str, changed: Mapping[str, Any]) -> bytes:
    line = json.dumps(
        {"task_id": task_id, "set": changed},
        ensure_ascii=False,
        allow_nan=False,
        separators=(",", ":"),
    )
    return (line + "\n").encode("utf-8")


def decode_journal_line(line: bytes) -> tuple[str, dict[str, Any]] | None:
    """``(task_id, changed fields)``, or ``None`` for a line that is torn or not a journal line."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    task_id, changed = data.get("task_id"), data.get("set")
    if not isinstance(task_id, str) or not isinstance(changed, dict):
        return None
    return task_id, changed
