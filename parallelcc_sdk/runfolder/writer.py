"""Writing a run's folder: run ids, the journal, task metadata and the final outputs.

Whole files are written atomically (a temporary file in the same folder, then ``os.replace``), so
a reader or a crash never sees half of one. The journal is the exception that makes a run's cost
per update flat: ``run.json`` is written once when the run starts and once when it ends, and every
task state change in between is one line appended to ``journal.jsonl``. A crash can tear at most
that file's last line, which the reader skips.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import secrets
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ParallelCCError
from ..models import RunStatus, TaskResult
from ..redaction import Redactor
from .codec import (
    FORMAT_VERSION,
    TASK_FIELDS,
    encode_journal_line,
    format_datetime,
    run_summary_to_json,
    task_fields_to_json,
    task_result_to_json,
    to_jsonable,
)
from .layout import GITIGNORE, GITIGNORE_TEXT, RunLayout, TaskLayout
from .process import RunProcess

if TYPE_CHECKING:
    from ..results import RunResult

__all__ = [
    "RunJournal",
    "create_run_dir",
    "mark_interrupted",
    "new_run_id",
    "write_json_atomic",
    "write_run_outputs",
    "write_task_metadata",
    "write_text_atomic",
]

_MAX_RUN_ID_ATTEMPTS = 100

logger = logging.getLogger("parallelcc_sdk")


# -- run ids and folders ----------------------------------------------------------------------


def new_run_id() -> str:
    """A run id such as ``20261127-081502-3f9a2c``: UTC time, then 6 random hex digits."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(3)}"


def create_run_dir(output_dir: Path) -> tuple[str, Path]:
    """Create a new ``<output_dir>/<run_id>/`` and return ``(run_id, path)``.

    ``mkdir(exist_ok=False)`` is the claim on the id, so two runs started at the same moment,
    even from two processes, never share or overwrite a folder. Both the run folder and (when
    this call creates it) the output folder get a ``.gitignore`` of ``*``: results kept inside
    the repository never show in the user's ``git status``.
    """
    output_dir = Path(output_dir)
    created = not output_dir.is_dir()
    output_dir.mkdir(parents=True, exist_ok=True)
    if created:
        _write_gitignore(output_dir)
    for _ in range(_MAX_RUN_ID_ATTEMPTS):
        run_id = new_run_id()
        run_dir = output_dir / run_id
        try:
            run_dir.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        _write_gitignore(run_dir)
        return run_id, run_dir
    raise ParallelCCError(f"could not find a free run folder name in {output_dir}")


def _write_gitignore(folder: Path) -> None:
    path = folder / GITIGNORE
    if not path.exists():
        write_text_atomic(path, GITIGNORE_TEXT)


# -- atomic writes ----------------------------------------------------------------------------


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step.

    The temporary file is opened with mode 0o666 so the result gets the usual umask permissions.
    There is no fsync: ``os.replace`` already keeps readers and killed processes from seeing a
    partial file; syncing would only protect against power loss, at a price on every write.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        if exc.errno is None:
            raise
        # Named after the file being replaced, not its temporary twin (a full disk says where).
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def write_json_atomic(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    write_text_atomic(path, text + "\n")


def _now() -> str:
    return format_datetime(dt.datetime.now(dt.UTC))


def run_json_document(
    *,
    run_id: str,
    state: RunStatus,
    created_at: str | None,
    finished_at: str | None,
    process: RunProcess | None,
    config: Any,
    tasks: Sequence[TaskResult],
    backend_run: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of ``run.json``: the run, its config and one record per task.

    ``backend_run`` is what the backend made once for the whole run (a base sandbox), so a
    cleanup after a crash can find it.
    """
    return {
        "format_version": FORMAT_VERSION,
        "run_id": run_id,
        "state": state.value,
        "created_at": created_at,
        "updated_at": _now(),
        "finished_at": finished_at,
        "process": process.to_json() if process is not None else None,
        "config": config,
        "backend_run": dict(backend_run or {}),
        "tasks": [task_result_to_json(t) for t in tasks],
    }


# -- the journal ------------------------------------------------------------------------------


class RunJournal:
    """A run's journal: ``run.json`` plus the ``journal.jsonl`` of task state changes.

    ``write()`` writes ``run.json`` (config, task list, the process running the run) before any
    sandbox starts; ``update()`` appends one line with the fields of a task that changed since
    its previous line, a cost that does not depend on the number of tasks; ``finish()`` writes
    the final ``run.json`` with every task's last record and removes the then redundant journal.

    The config is redacted (secret-named keys masked, credential-shaped strings removed) before
    it is stored. Safe to call from several threads: a lock keeps lines whole and in order.
    """

    def __init__(
        self,
        run_dir: Path,
        run_id: str,
        config: Mapping[str, Any],
        tasks: Sequence[TaskResult],
        *,
        created_at: str | None = None,
    ) -> None:
        self.layout = RunLayout(Path(run_dir))
        self.run_dir = self.layout.run_dir
        self.run_id = run_id
        self.path = self.layout.run_json
        self.state = RunStatus.RUNNING
        # A run resumed by a later process keeps the time it was first started.
        self.created_at = created_at or _now()
        self.finished_at: str | None = None
        self.process = RunProcess.current()
        self._config = Redactor().redact_obj(to_jsonable(config))
        self._backend_run: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}
        """More top-level entries of ``run.json`` (the run's ``setup``), written with it."""
        # Every task's latest record, and the last one on disk: a line holds only what differs
        # between the two (they part only while a write fails, e.g. on a full disk).
        self._records: dict[str, TaskResult] = {t.task_id: t for t in tasks}
        self._written: dict[str, TaskResult] = dict(self._records)
        self._lock = threading.Lock()
        self._lines: io.FileIO | None = None
        self._torn = False
        self.write_error: OSError | None = None
        """The last failure to append to the journal, if any (the run went on without it)."""

    def to_json(self) -> dict[str, Any]:
        return run_json_document(
            run_id=self.run_id,
            state=self.state,
            created_at=self.created_at,
            finished_at=self.finished_at,
            process=self.process,
            config=self._config,
            tasks=list(self._records.values()),
            backend_run=self._backend_run,
        ) | {str(k): to_jsonable(v) for k, v in self.extra.items()}

    def write(self) -> None:
        """Write ``run.json`` with every task's current record and start an empty journal."""
        with self._lock:
            self._start()

    def _start(self) -> None:
        self._close_lines()
        # The journal is emptied first: lines left from an earlier write() are in run.json now.
        self._lines = open(self.layout.journal, "wb", buffering=0)  # noqa: SIM115
        self._torn = False
        write_json_atomic(self.path, self.to_json())
        self._written = dict(self._records)

    def set_backend_run(self, info: Mapping[str, Any]) -> None:
        """Records what the backend made for the whole run (once, when the run starts)."""
        with self._lock:
            self._backend_run = Redactor().redact_obj(to_jsonable(info))
            self._start()

    def update(self, result: TaskResult) -> None:
        """Record the task's new state; a task the journal has not seen is added at the end.

        Never raises for a write that fails (a full disk): the run goes on, the failure is in
        :attr:`write_error`, and the next line that can be written carries what was missed.
        """
        with self._lock:
            self._records[result.task_id] = result
            try:
                if self._lines is None:
                    self._start()
                previous = self._written.get(result.task_id)
                if previous is None:
                    changed = task_result_to_json(result)
                else:
                    names = [
                        n
                        for n in TASK_FIELDS
                        if _differs(getattr(previous, n), getattr(result, n))
                    ]
                    if not names:
                        return
                    changed = task_fields_to_json(result, names)
                self._append(encode_journal_line(result.task_id, changed))
            except OSError as exc:
                if self.write_error is None:
                    logger.warning("the journal of run %s is behind: %s", self.run_id, exc)
                self.write_error = exc
                return
            # Only a line on disk moves the baseline, so the next one also holds this change.
            self._written[result.task_id] = result

    def _append(self, line: bytes) -> None:
        assert self._lines is not None
        if self._torn:
            # The previous line was cut short (a full disk?): end it, so this one stays whole.
            line = b"\n" + line
        view = memoryview(line)
        try:
            while view:
                written = self._lines.write(view)
                view = view[written or 0 :]
        except BaseException:
            self._torn = True
            raise
        self._torn = False

    def finish(self, state: RunStatus | str) -> None:
        """Mark the run as over (``finished``, ``cancelled`` or ``interrupted``) for good."""
        final = RunStatus(state)
        if not final.is_final:
            raise ValueError(f"a finished run needs a final state, not {state!r}")
        with self._lock:
            finished_at = _now()
            document = self.to_json() | {"state": final.value, "finished_at": finished_at}
            write_json_atomic(self.path, document)
            self.state, self.finished_at = final, finished_at
            # run.json now holds every line of the journal; a reader ignores the journal of a
            # run whose run.json is final, so a crash before this unlink changes nothing.
            self._close_lines()
            self.layout.journal.unlink(missing_ok=True)

    def _close_lines(self) -> None:
        if self._lines is not None:
            self._lines.close()
            self._lines = None


def _differs(old: Any, new: Any) -> bool:
    # Identity first: the engine builds each record from the previous one, so unchanged fields
    # (the prompt, the metadata) are the same objects and cost nothing to compare.
    if old is new:
        return False
    try:
        return bool(old != new)
    except Exception:  # values whose == is not a bool (arrays in metadata): write them again
        return True


def mark_interrupted(run_dir: Path) -> bool:
    """Close the journal of a run whose process died: state ``interrupted``, no task running.

    Returns True if the run was marked; False if it had ended already, or its process is alive
    or on another machine (then nothing is touched).
    """
    from .reader import read_journal, settle_dead_tasks

    journal = read_journal(run_dir)
    if journal.recorded_state.is_final or journal.process_alive is not False:
        return False
    layout = RunLayout(Path(run_dir))
    last_write = journal.last_update or journal.created_at
    document = run_json_document(
        run_id=journal.run_id,
        state=RunStatus.INTERRUPTED,
        created_at=format_datetime(journal.created_at) if journal.created_at else None,
        finished_at=format_datetime(last_write) if last_write else _now(),
        process=journal.process,
        config=journal.config,
        tasks=settle_dead_tasks(journal.tasks),
        backend_run=journal.backend_run,
    )
    # Entries this function does not write itself (the run's set-up, its resumptions) stay.
    try:
        earlier = json.loads(layout.run_json.read_bytes())
    except (OSError, ValueError):
        earlier = {}
    if isinstance(earlier, dict):
        document = {k: v for k, v in earlier.items() if k not in document} | document
    write_json_atomic(layout.run_json, document)
    layout.journal.unlink(missing_ok=True)
    return True


# -- per-task files and the final outputs -----------------------------------------------------


def write_task_metadata(task_dir: Path, result: TaskResult) -> None:
    """Write ``task_dir/metadata.json`` with the task's full record."""
    layout = TaskLayout(Path(task_dir))
    layout.task_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(layout.metadata, task_result_to_json(result))


def write_run_outputs(result: RunResult) -> None:
    """Write the finished run's summary-report.md, summary.json and results.csv."""
    from ..report import render_report

    layout = RunLayout(Path(result.run_dir))
    write_text_atomic(layout.report, render_report(result))
    summary = {
        "format_version": FORMAT_VERSION,
        "run_id": result.run_id,
        "state": RunStatus(result.state).value,
        "success": result.success,
        "summary": run_summary_to_json(result.summary),
        "tasks": [task_result_to_json(t) for t in result.tasks],
    }
    write_json_atomic(layout.summary_json, summary)
    write_text_atomic(layout.results_csv, result.df.to_csv(index=False))
