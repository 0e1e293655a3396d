"""Reading run folders back: one run (``load_run``), one run's journal, and every run of a folder.

Nothing here needs the SDK state of the process that ran the run: a run is rebuilt from its
files alone, finished, still running, or killed at any moment. Which files are read:

- ``summary.json`` for a finished run (falling back to the journal when it is damaged);
- ``run.json`` plus the lines of ``journal.jsonl`` (a torn last line is skipped) for a run that
  did not finish, plus the ``metadata.json`` of each task the journal still shows unfinished;
- a run whose journal says ``running`` but whose process is gone is ``interrupted``, and its
  unfinished tasks are shown ``cancelled`` with an error that says why.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RunFolderError, RunFolderNotFoundError
from ..models import STATUS_ORDER, RunStatus, TaskResult, TaskStatus
from ..results import RunResult, RunSummary
from .codec import (
    decode_journal_line,
    parse_datetime,
    run_summary_from_json,
    task_result_from_json,
)
from .layout import RUN_JSON, SUMMARY_JSON, RunLayout
from .process import RunProcess

__all__ = [
    "INTERRUPTED_PENDING_ERROR",
    "INTERRUPTED_RUNNING_ERROR",
    "JournalState",
    "RunInfo",
    "list_runs",
    "load_run",
    "read_journal",
    "read_run_info",
    "settle_dead_tasks",
]

logger = logging.getLogger("parallelcc_sdk")

INTERRUPTED_RUNNING_ERROR = "interrupted: the run's process ended while the task was running"
INTERRUPTED_PENDING_ERROR = "interrupted: the run's process ended before the task started"
_UNFINISHED = (TaskStatus.PENDING.value, TaskStatus.RUNNING.value)


# -- public records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JournalState:
    """What a run's journal (``run.json`` + ``journal.jsonl``) says, replayed."""

    run_id: str
    run_dir: Path
    recorded_state: RunStatus
    """The state written in ``run.json``: ``running`` until the run closed its journal."""
    created_at: dt.datetime | None
    finished_at: dt.datetime | None
    last_update: dt.datetime | None
    """When the journal was last written to."""
    config: Mapping[str, Any]
    process: RunProcess | None
    process_alive: bool | None
    """For a run still recorded as running: is its process alive (``None``: cannot tell)."""
    tasks: tuple[TaskResult, ...]
    """Each task's last recorded state, in input order (unfinished tasks as recorded)."""
    skipped_lines: int = 0
    """Journal lines that could not be read (a line torn by a crash)."""
    backend_run: Mapping[str, Any] = field(default_factory=dict)
    """What the backend made once for the whole run (e.g. a base sandbox's id)."""

    @property
    def state(self) -> RunStatus:
        """The run's real state: a ``running`` run whose process is gone is ``interrupted``."""
        if self.recorded_state is RunStatus.RUNNING and self.process_alive is False:
            return RunStatus.INTERRUPTED
        return self.recorded_state


@dataclass(frozen=True)
class RunInfo:
    """One run of an output folder, as ``list_runs`` shows it (read without loading tasks)."""

    run_id: str
    run_dir: Path
    state: RunStatus | None
    """``None`` only when the folder could not be read (see ``problem``)."""
    created_at: dt.datetime | None
    finished_at: dt.datetime | None
    duration_s: float | None
    """Wall clock: start to end, to the last journal write (a dead run), or to now (running)."""
    total_tasks: int
    counts: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(STATUS_ORDER, 0))
    """Tasks in each status; every status is listed, in ``STATUS_ORDER``."""
    cost_usd: float | None = None
    """Sum of the tasks' costs; ``None`` when no task reported one."""
    problem: str | None = None
    """Why the folder could not be read; then the other fields are mostly empty."""


# -- reading files ----------------------------------------------------------------------------


def _damaged(path: Path, reason: str) -> RunFolderError:
    return RunFolderError(
        f"cannot read the run in {path.parent}: {path.name} is damaged ({reason}); "
        "restore the file or remove the run folder"
    )


def _read_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise _damaged(path, str(exc)) from exc
    if not isinstance(data, dict):
        raise _damaged(path, "it is not a JSON object")
    return data


def _task_records(data: Mapping[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    """The ``tasks`` list of run.json / summary.json, keyed by task id in input order."""
    records = data.get("tasks")
    if not isinstance(records, list):
        raise _damaged(path, "it has no 'tasks' list")
    by_id: dict[str, dict[str, Any]] = {}
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("task_id"), str):
            raise _damaged(path, "it holds a bad task record: a record without a task_id")
        by_id[record["task_id"]] = dict(record)
    return by_id


def _parse_tasks(records: Iterable[Mapping[str, Any]], path: Path) -> tuple[TaskResult, ...]:
    try:
        return tuple(task_result_from_json(record) for record in records)
    except (KeyError, TypeError, ValueError) as exc:
        raise _damaged(path, f"it holds a bad task record: {exc}") from exc


def _mtime(path: Path) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    except OSError:
        return None


def _datetime(value: Any) -> dt.datetime | None:
    try:
        return parse_datetime(value)
    except ValueError:
        return None


@dataclass
class _Replayed:
    """run.json with the journal's lines applied: raw records, not yet TaskResults."""

    header: dict[str, Any]
    records: dict[str, dict[str, Any]]
    recorded_state: RunStatus
    process: RunProcess | None
    process_alive: bool | None
    last_update: dt.datetime | None
    skipped_lines: int


def _replay(layout: RunLayout, *, again: bool = True) -> _Replayed:
    path = layout.run_json
    header = _read_object(path)
    try:
        recorded = RunStatus(header.get("state", RunStatus.RUNNING.value))
    except ValueError:
        raise _damaged(path, f"its run state {header.get('state')!r} is unknown") from None
    records = _task_records(header, path)
    process = RunProcess.from_json(header.get("process"))
    if recorded.is_final:
        # A final run.json holds every line of the journal already.
        return _Replayed(header, records, recorded, process, None, _mtime(path), 0)
    skipped = _apply_journal(layout.journal, records)
    if skipped is None:
        # The journal is created before run.json and removed only after the final run.json
        # replaced it: without it, the run ended between the two reads. Read that ending.
        if again:
            return _replay(layout, again=False)
        skipped = 0
    _apply_task_metadata(layout, records)
    last_update = _mtime(layout.journal) or _mtime(path)
    alive = process.is_alive() if process is not None else None
    return _Replayed(header, records, recorded, process, alive, last_update, skipped)


def _apply_journal(path: Path, records: dict[str, dict[str, Any]]) -> int | None:
    """Applies each line's changed fields; returns how many lines were unreadable, or ``None``
    if there is no journal."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _damaged(path, str(exc)) from exc
    skipped = 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        decoded = decode_journal_line(line)
        if decoded is None:
            # A line torn by a crash (or a full disk) while it was being appended.
            skipped += 1
            continue
        task_id, changed = decoded
        records.setdefault(task_id, {"task_id": task_id}).update(changed)
    return skipped


def _apply_task_metadata(layout: RunLayout, records: dict[str, dict[str, Any]]) -> None:
    # A task's metadata.json is written right after its last journal line; it can only be newer
    # than the journal when that line was lost. A missing or damaged one leaves the journal's
    # record, which is still the best there is.
    for task_id, record in records.items():
        if record.get("status") not in _UNFINISHED:
            continue
        try:
            metadata = json.loads(layout.task(task_id).metadata.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(metadata, dict) and metadata.get("task_id") == task_id:
            records[task_id] = metadata


def _require_run_folder(run_dir: str | os.PathLike[str]) -> RunLayout:
    path = Path(run_dir)
    if not path.is_dir():
        raise RunFolderNotFoundError(
            f"run folder {path} does not exist or is not a folder; "
            "pass the folder of one run, e.g. <output_dir>/<run_id>"
        )
    layout = RunLayout(path)
    if not layout.is_run_folder():
        raise RunFolderNotFoundError(
            f"{path} is not a run folder: it has neither {SUMMARY_JSON} nor {RUN_JSON}; "
            "pass the folder of one run, e.g. <output_dir>/<run_id>"
        )
    return layout


# -- settling a dead run ----------------------------------------------------------------------


def settle_dead_tasks(tasks: Iterable[TaskResult]) -> list[TaskResult]:
    """The tasks of a run whose process died: none is pending or running any more.

    Such tasks will never finish, so they are ``cancelled``, with an error saying that the run's
    process ended (the same status the engine gives the tasks of a run it stops itself).
    """
    settled = []
    for task in tasks:
        if task.status is TaskStatus.RUNNING:
            task = task.replace(
                status=TaskStatus.CANCELLED, error=INTERRUPTED_RUNNING_ERROR, phase=None
            )
        elif task.status is TaskStatus.PENDING:
            task = task.replace(status=TaskStatus.CANCELLED, error=INTERRUPTED_PENDING_ERROR)
        settled.append(task)
    return settled


def _settled_status(status: Any) -> Any:
    return TaskStatus.CANCELLED.value if status in _UNFINISHED else status


# -- the public readers -----------------------------------------------------------------------


def read_journal(run_dir: str | os.PathLike[str]) -> JournalState:
    """Replay ``run.json`` and ``journal.jsonl``: each task's last recorded state, as recorded.

    Raises ``RunFolderNotFoundError`` if there is no run.json, ``RunFolderError`` if it is
    damaged (a torn journal line is not damage: it is skipped and counted).
    """
    path = Path(run_dir)
    layout = RunLayout(path)
    if not layout.run_json.is_file():
        raise RunFolderNotFoundError(
            f"{path} has no {RUN_JSON}; pass the folder of one run, e.g. <output_dir>/<run_id>"
        )
    replayed = _replay(layout)
    header = replayed.header
    config = header.get("config")
    backend_run = header.get("backend_run")
    return JournalState(
        run_id=str(header.get("run_id") or path.name),
        run_dir=path,
        recorded_state=replayed.recorded_state,
        created_at=_datetime(header.get("created_at")),
        finished_at=_datetime(header.get("finished_at")),
        last_update=replayed.last_update,
        config=config if isinstance(config, dict) else {},
        process=replayed.process,
        process_alive=replayed.process_alive,
        tasks=_parse_tasks(replayed.records.values(), layout.run_json),
        skipped_lines=replayed.skipped_lines,
        backend_run=backend_run if isinstance(backend_run, dict) else {},
    )


def _wall_clock(
    state: RunStatus,
    created_at: dt.datetime | None,
    finished_at: dt.datetime | None,
    last_update: dt.datetime | None,
) -> float | None:
    if state is RunStatus.RUNNING:
        end: dt.datetime | None = dt.datetime.now(dt.UTC)
    else:
        end = finished_at or last_update
    if created_at is None or end is None:
        return None
    return max(0.0, (end - created_at).total_seconds())


def _load_summary(layout: RunLayout) -> RunResult:
    path = layout.summary_json
    data = _read_object(path)
    tasks = _parse_tasks(_task_records(data, path).values(), path)
    try:
        summary = run_summary_from_json(data.get("summary"))
        state = RunStatus(data.get("state", RunStatus.FINISHED.value))
    except (TypeError, ValueError) as exc:
        raise _damaged(path, str(exc)) from exc
    return RunResult(summary.run_id, layout.run_dir, tasks, summary, state=state)


def _load_journal(layout: RunLayout) -> RunResult:
    journal = read_journal(layout.run_dir)
    state = journal.state
    tasks: Sequence[TaskResult] = journal.tasks
    if state is RunStatus.INTERRUPTED and journal.recorded_state is RunStatus.RUNNING:
        tasks = settle_dead_tasks(tasks)
    duration = _wall_clock(state, journal.created_at, journal.finished_at, journal.last_update)
    summary = RunSummary.from_results(journal.run_id, tasks, duration or 0.0)
    return RunResult(journal.run_id, layout.run_dir, tuple(tasks), summary, state=state)


def load_run(run_dir: str | os.PathLike[str]) -> RunResult:
    """Rebuild a ``RunResult`` from a run folder, using nothing but the files in it.

    A finished run is read from ``summary.json``; a run without one (still running, killed,
    interrupted), or whose ``summary.json`` is damaged, from its journal. Tasks keep the status
    they last recorded, except that in a run whose process died, tasks that were pending or
    running are ``cancelled`` with an ``interrupted: ...`` error, and the run is
    ``interrupted`` (``result.state``).

    Raises ``RunFolderNotFoundError`` (also a ``ValidationError``) for a path that holds no run,
    ``RunFolderError`` for a run folder whose files are damaged.
    """
    layout = _require_run_folder(run_dir)
    if layout.summary_json.is_file():
        try:
            return _load_summary(layout)
        except RunFolderError as exc:
            if not layout.run_json.is_file():
                raise
            logger.warning("%s; loading the run from its journal instead", exc)
    return _load_journal(layout)


def read_run_info(run_dir: str | os.PathLike[str]) -> RunInfo:
    """One run's state, counts, cost and duration, without building its task records.

    Reads ``run.json`` (replaying the journal of an unfinished run) and never a task's
    ``metadata.json`` for a finished run; falls back to ``summary.json`` if ``run.json`` is
    missing. Raises like :func:`load_run`.
    """
    layout = _require_run_folder(run_dir)
    if layout.run_json.is_file():
        replayed = _replay(layout)
        header, records = replayed.header, replayed.records
        state = replayed.recorded_state
        if state is RunStatus.RUNNING and replayed.process_alive is False:
            state = RunStatus.INTERRUPTED
        last_update = replayed.last_update
    else:
        header = _read_object(layout.summary_json)
        records = _task_records(header, layout.summary_json)
        try:
            state = RunStatus(header.get("state", RunStatus.FINISHED.value))
        except ValueError as exc:
            raise _damaged(layout.summary_json, str(exc)) from exc
        last_update = _mtime(layout.summary_json)
    statuses = [record.get("status", TaskStatus.PENDING.value) for record in records.values()]
    if state is RunStatus.INTERRUPTED:
        statuses = [_settled_status(s) for s in statuses]
    counts = dict.fromkeys(STATUS_ORDER, 0)
    for status in statuses:
        if status in counts:
            counts[status] += 1
    costs = [r["cost_usd"] for r in records.values() if isinstance(r.get("cost_usd"), int | float)]
    created_at = _datetime(header.get("created_at"))
    finished_at = _datetime(header.get("finished_at"))
    return RunInfo(
        run_id=str(header.get("run_id") or layout.run_dir.name),
        run_dir=layout.run_dir,
        state=state,
        created_at=created_at,
        finished_at=finished_at,
        duration_s=_wall_clock(state, created_at, finished_at, last_update),
        total_tasks=len(records),
        counts=counts,
        cost_usd=float(sum(costs)) if costs else None,
    )


def list_runs(output_dir: str | os.PathLike[str]) -> list[RunInfo]:
    """Every run in ``output_dir``, newest first, read cheaply (see :func:`read_run_info`).

    Folders that hold no run are left out; a run folder that cannot be read is listed with its
    ``problem`` instead of failing the whole listing. Raises ``RunFolderNotFoundError`` if
    ``output_dir`` is not a folder.
    """
    path = Path(output_dir)
    if not path.is_dir():
        raise RunFolderNotFoundError(
            f"output folder {path} does not exist or is not a folder; "
            "pass the output_dir of your runs (default ./parallel-results)"
        )
    infos: list[tuple[float, RunInfo]] = []
    for child in path.iterdir():
        layout = RunLayout(child)
        if not child.is_dir() or not layout.is_run_folder():
            continue
        try:
            info = read_run_info(child)
        except RunFolderError as exc:
            info = RunInfo(child.name, child, None, None, None, None, 0, problem=str(exc))
        when = info.created_at.timestamp() if info.created_at else _folder_time(child)
        infos.append((when, info))
    infos.sort(key=lambda item: (item[0], item[1].run_id), reverse=True)
    return [info for _, info in infos]


def _folder_time(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0

