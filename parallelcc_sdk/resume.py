"""Going on with a run in a later process: ``resume`` (a run whose process died) and ``retry``.

Both continue the run in its own folder. Tasks whose record is final and not chosen are kept as
they are (record, files); the tasks to run get a fresh record that keeps their attempt count,
their ``changes.patch``, ``changed-files/`` and ``metadata.json`` are removed (the outputs of a
task are always its latest attempt's), and their ``execution.log`` / ``events.jsonl`` go on
being appended to (each new attempt starts with a ``[parallelcc] attempt N`` line). ``run.json``
is rewritten with this process as the run's owner and a ``resumed`` entry per continuation;
the journal goes on from there; ``summary.json`` and the report are written again at the end.
The run's wall clock adds up the time each process ran it.

What the run was configured with is read from ``run.json``: the repository, the limits, the
check and selection, the set-up (run again: its state does not outlive the process), the agent
and the backend (rebuilt from their ``describe()``; pass ``agent=`` / ``backend=`` when they
cannot be, or to change them). The repository must hold what it held when the run started.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .agents.base import Agent
from .api import check_isolation, start_engine
from .backends.base import Backend
from .backends.registry import backend_class
from .bestof import Selector, checked_selector
from .cleanup import cleanup
from .continuation import TASK_OPTIONS, Continuation, tasks_from_records
from .engine import RunConfig
from .errors import ValidationError
from .handle import ExecutionHandle, Listener
from .models import RunStatus, TaskResult, TaskStatus
from .results import RunResult
from .runfolder.codec import format_datetime, parse_datetime
from .runfolder.layout import RunLayout
from .runfolder.reader import JournalState, read_journal
from .snapshot import resolve_repo

__all__ = ["rebuild_agent", "rebuild_backend", "resume", "retry", "submit_resume", "submit_retry"]

RESUMED = "resumed"
KEPT_BY_RESUME = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.TIMED_OUT})
_STANDARD_KEYS = frozenset(
    {"format_version", "run_id", "state", "created_at", "updated_at", "finished_at", "process"}
    | {"config", "tasks"}
)


def resume(
    run_dir: str | os.PathLike[str],
    *,
    agent: Agent | None = None,
    backend: Backend | None = None,
    select: Selector | None = None,
    progress: str | bool = "auto",
    listeners: Iterable[Listener] = (),
) -> RunResult:
    """Continues the run in ``run_dir`` whose process died, and waits for it.

    Completed, failed and timed-out tasks are kept; tasks that were running (their sandboxes
    died with the process: ``pcc.cleanup`` closes what is left first) and tasks that had not
    started or were cancelled run. Refuses a run that finished or whose process is alive.
    """
    return submit_resume(
        run_dir,
        agent=agent,
        backend=backend,
        select=select,
        progress=progress,
        listeners=listeners,
    ).result()


def retry(
    run_dir: str | os.PathLike[str],
    *,
    status: Sequence[str] = ("failed", "timed_out"),
    task_ids: Sequence[str] | None = None,
    agent: Agent | None = None,
    backend: Backend | None = None,
    select: Selector | None = None,
    progress: str | bool = "auto",
    listeners: Iterable[Listener] = (),
) -> RunResult:
    """Runs the tasks of ``run_dir`` in ``status`` (or those named in ``task_ids``) again, as
    new attempts in the same run folder, and waits for them. Other tasks are kept as they are."""
    return submit_retry(
        run_dir,
        status=status,
        task_ids=task_ids,
        agent=agent,
        backend=backend,
        select=select,
        progress=progress,
        listeners=listeners,
    ).result()


def submit_resume(
    run_dir: str | os.PathLike[str],
    *,
    agent: Agent | None = None,
    backend: Backend | None = None,
    select: Selector | None = None,
    progress: str | bool = "auto",
    listeners: Iterable[Listener] = (),
) -> ExecutionHandle:
    """Like :func:`resume`, but returns the live handle at once."""
    path = Path(run_dir).expanduser()
    journal, reattach = _settled(path, "resume", spare_running=True)
    if journal.recorded_state is RunStatus.FINISHED:
        raise ValidationError(
            f"run {journal.run_id} finished, so there is nothing to resume; use "
            f"pcc.retry({str(path)!r}) to run some of its tasks again."
        )
    chosen = [t.task_id for t in journal.tasks if t.status not in KEPT_BY_RESUME]
    return _continue(
        path, journal, chosen, "resume", agent, backend, select, progress, listeners, reattach
    )


def submit_retry(
    run_dir: str | os.PathLike[str],
    *,
    status: Sequence[str] = ("failed", "timed_out"),
    task_ids: Sequence[str] | None = None,
    agent: Agent | None = None,
    backend: Backend | None = None,
    select: Selector | None = None,
    progress: str | bool = "auto",
    listeners: Iterable[Listener] = (),
) -> ExecutionHandle:
    """Like :func:`retry`, but returns the live handle at once."""
    statuses = _statuses(status)
    path = Path(run_dir).expanduser()
    journal, _ = _settled(path, "retry")
    known = {t.task_id for t in journal.tasks}
    if task_ids is not None:
        unknown = [i for i in task_ids if i not in known]
        if unknown:
            raise ValidationError(
                f"run {journal.run_id} has no task {unknown[0]!r}; pass ids of its tasks."
            )
        chosen = [t.task_id for t in journal.tasks if t.task_id in set(task_ids)]
    else:
        chosen = [t.task_id for t in journal.tasks if t.status in statuses]
    if not chosen:
        raise ValidationError(
            f"run {journal.run_id} has no task to retry (none is "
            f"{' or '.join(s.value for s in statuses)}); pass status= or task_ids= to choose."
        )
    return _continue(path, journal, chosen, "retry", agent, backend, select, progress, listeners)


# -- checks -----------------------------------------------------------------------------------


def _statuses(status: Sequence[str]) -> set[TaskStatus]:
    names = [status] if isinstance(status, str) else list(status)
    try:
        chosen = {TaskStatus(name) for name in names}
    except ValueError:
        raise ValidationError(
            f"status={status!r} holds an unknown status; use some of "
            f"{', '.join(s.value for s in TaskStatus if s.is_final)}."
        ) from None
    if not chosen or any(not s.is_final for s in chosen):
        raise ValidationError(
            f"status={status!r} must name final statuses, such as ['failed', 'timed_out']."
        )
    return chosen


def _settled(
    path: Path, verb: str, *, spare_running: bool = False
) -> tuple[JournalState, dict[str, dict[str, Any]]]:
    """The run's journal once what its dead process left is closed; refuses a live run.

    With ``spare_running``, where the run's backend can re-attach, the sandboxes of the tasks
    that were running are left alive, and returned (task id → its journaled sandbox).
    """
    journal = read_journal(path)
    if journal.recorded_state is RunStatus.RUNNING:
        if journal.process_alive is None:
            host = journal.process.host if journal.process is not None else "another machine"
            raise ValidationError(
                f"run {journal.run_id} was started on {host}, so this machine cannot tell "
                f"whether it still runs; {verb} it there."
            )
        if journal.process_alive:
            pid = journal.process.pid if journal.process is not None else "?"
            raise ValidationError(
                f"run {journal.run_id} is still running (process {pid}); wait for it to end or "
                f"cancel it before you {verb} it."
            )
    reattach: dict[str, dict[str, Any]] = {}
    if spare_running and _reattaches(journal):
        reattach = {
            t.task_id: {**t.sandbox_info, "sandbox_id": t.sandbox_id}
            for t in journal.tasks
            if t.status is TaskStatus.RUNNING and t.sandbox_id
        }
    # Close what its dead process left (but what may be re-attached to); mark it interrupted.
    cleanup(path, spare=[str(info["sandbox_id"]) for info in reattach.values()])
    return read_journal(path), reattach


def _reattaches(journal: JournalState) -> bool:
    described = journal.config.get("backend")
    name = described.get("name") if isinstance(described, Mapping) else None
    try:
        return isinstance(name, str) and backend_class(name).supports_reattach
    except ValidationError:
        return False


# -- rebuilding the run -----------------------------------------------------------------------


def rebuild_backend(described: Mapping[str, Any]) -> Backend:
    """The backend a run used, from its ``describe()`` in ``run.json``."""
    name = described.get("name")
    if name == "local":
        from .backends.local import LocalBackend

        work_dir = described.get("work_dir")
        return LocalBackend(
            described.get("isolation", "auto"),
            work_dir=work_dir if isinstance(work_dir, str) else None,
            env_passthrough=list(described.get("env_passthrough") or ()),
            hide=list(described.get("hide") or ()),
            expose=list(described.get("expose") or ()),
            workspace=described.get("workspace", "auto"),
        )
    if name == "e2b":
        return _rebuild_e2b(described)
    raise ValidationError(
        f"the run's backend {name!r} cannot be rebuilt from its run.json; pass backend= "
        "(configured as the run was)."
    )


def _rebuild_e2b(described: Mapping[str, Any]) -> Backend:
    from .backends.e2b import E2BBackend
    from .backends.e2b.pricing import E2BRates

    if described.get("envs") or described.get("npm_token"):
        raise ValidationError(
            "the run's E2BBackend had envs= or npm_token=, whose values run.json does not hold; "
            "pass backend= (configured as the run was)."
        )
    ssh_key = described.get("ssh_key")
    rates = described.get("rates")
    return E2BBackend(
        template=described.get("template"),
        sandbox_timeout=described.get("sandbox_timeout"),
        metadata=dict(described.get("metadata") or {}),
        create_rate=described.get("create_rate"),
        prepare=described.get("prepare") or "auto",
        ssh_key=ssh_key if isinstance(ssh_key, str) else None,
        npm_registry=described.get("npm_registry"),
        rates=E2BRates(**rates) if isinstance(rates, Mapping) else None,
        exclude_secrets=list(described.get("exclude_secrets") or ()),
        domain=described.get("domain"),
    )


def rebuild_agent(described: Mapping[str, Any]) -> Agent:
    """The agent a run used, from its ``describe()`` in ``run.json``; credentials are read from
    this process's environment, as for a new run."""
    name = described.get("name")
    if name == "command" and isinstance(described.get("command"), str):
        from .agents.command import Command

        return Command(described["command"], shell=str(described.get("shell") or "/bin/sh"))
    if name == "claude" and not described.get("append_system_prompt") and not described.get("env"):
        from .agents.claude import ClaudeCode

        return ClaudeCode(
            model=described.get("model"),
            max_turns=described.get("max_turns"),
            max_budget_usd=described.get("max_budget_usd"),
            allowed_tools=described.get("allowed_tools"),
            disallowed_tools=described.get("disallowed_tools"),
            permission_mode=described.get("permission_mode") or "bypassPermissions",
            extra_args=described.get("extra_args") or (),
            executable=described.get("executable") or "claude",
            auth_method=described.get("auth_method"),
        )
    raise ValidationError(
        f"the run's agent {name!r} cannot be rebuilt from its run.json (some of its settings "
        "are not stored); pass agent= (configured as the run was)."
    )


def _config(
    described: Mapping[str, Any],
    agent: Agent | None,
    backend: Backend | None,
    select: Selector | None,
) -> RunConfig:
    stored_select = described.get("select")
    if select is None and stored_select == "function":
        raise ValidationError(
            "the run chose best-of-N candidates with a function, which run.json cannot hold; "
            "pass select= again."
        )
    check_command = described.get("check_command")
    config = RunConfig(
        repo=resolve_repo(str(described.get("repo") or ".")),
        backend=backend or rebuild_backend(described.get("backend") or {}),
        agent=agent or rebuild_agent(described.get("agent") or {}),
        max_concurrent=int(described.get("max_concurrent") or 3),
        fail_fast=bool(described.get("fail_fast")),
        task_timeout=described.get("task_timeout"),
        retries=int(described.get("retries") or 0),
        retry_backoff_s=float(described.get("retry_backoff_s", 2.0)),
        budget_usd=described.get("budget_usd"),
        check_command=check_command if isinstance(check_command, str) else None,
        select=checked_selector(select or stored_select or "smallest_diff", check_command),
        setup=described.get("setup"),
    )
    config.backend.validate()
    config.agent.validate(on_host=config.backend.runs_on_host)
    check_isolation(config.backend, config.agent)
    return config


def _fresh(record: TaskResult) -> TaskResult:
    """A task about to run again: nothing of its earlier attempts but their count.

    A task whose command never got a slot (its sandbox only prepared ahead) has run no attempt.
    """
    return TaskResult(
        task_id=record.task_id,
        prompt=record.prompt,
        output_path=record.output_path,
        metadata=record.metadata,
        attempts=record.attempts if record.started_at is not None else 0,
        candidate_of=record.candidate_of,
        candidate=record.candidate,
    )


def _records(journal: JournalState, chosen: set[str]) -> dict[str, TaskResult]:
    groups = {t.candidate_of for t in journal.tasks if t.task_id in chosen and t.candidate_of}
    records: dict[str, TaskResult] = {}
    for task in journal.tasks:
        if task.task_id in chosen:
            task = _fresh(task)
        elif task.candidate_of in groups:
            # Its group is chosen between again once the candidates that run again finish.
            task = task.replace(selected=None, selection_reason=None)
        records[task.task_id] = task
    return records


def _remove_outputs(layout: RunLayout, task_ids: Iterable[str]) -> None:
    for task_id in task_ids:
        files = layout.task(task_id)
        files.patch.unlink(missing_ok=True)
        files.metadata.unlink(missing_ok=True)
        shutil.rmtree(files.changed_files, ignore_errors=True)


def _header(layout: RunLayout) -> dict[str, Any]:
    try:
        data = json.loads(layout.run_json.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _elapsed_before(layout: RunLayout, journal: JournalState, header: Mapping[str, Any]) -> float:
    """How long the run's earlier processes ran it, without the time it lay dead in between."""
    try:
        summary = json.loads(layout.summary_json.read_bytes())["summary"]
        return float(summary["total_duration_s"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no summary: the last process died before writing one
    history = header.get(RESUMED)
    last = history[-1] if isinstance(history, list) and history else {}
    last = last if isinstance(last, dict) else {}
    start = _time(last.get("at")) or journal.created_at
    before = float(last.get("elapsed_before_s") or 0.0)
    end = journal.finished_at or journal.last_update
    if start is None or end is None:
        return before
    return before + max(0.0, (end - start).total_seconds())


def _time(value: Any) -> dt.datetime | None:
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def _continue(
    path: Path,
    journal: JournalState,
    chosen: list[str],
    how: str,
    agent: Agent | None,
    backend: Backend | None,
    select: Selector | None,
    progress: str | bool,
    listeners: Iterable[Listener],
    reattach: Mapping[str, Mapping[str, Any]] | None = None,
) -> ExecutionHandle:
    reattach = reattach or {}
    try:
        config = _config(journal.config, agent, backend, select)
    except BaseException:
        if reattach:
            cleanup(path)  # the spared sandboxes: nothing will take them over
        raise
    if reattach and not config.backend.supports_reattach:
        cleanup(path)
        reattach = {}
    options = journal.config.get(TASK_OPTIONS)
    tasks = tasks_from_records(journal.tasks, options if isinstance(options, Mapping) else {})
    layout = RunLayout(path)
    header = _header(layout)
    elapsed = _elapsed_before(layout, journal, header)
    extra = {k: v for k, v in header.items() if k not in _STANDARD_KEYS}
    earlier = extra.get(RESUMED)
    history: list[Any] = earlier if isinstance(earlier, list) else []
    now = format_datetime(dt.datetime.now(dt.UTC))
    entry = {"at": now, "how": how, "tasks": len(chosen), "elapsed_before_s": elapsed}
    extra[RESUMED] = [*history, entry]
    # Everything is checked: only now is the run folder touched.
    _remove_outputs(layout, chosen)
    layout.summary_json.unlink(missing_ok=True)  # stale until this process writes it again
    continuation = Continuation(
        records=_records(journal, set(chosen)),
        created_at=format_datetime(journal.created_at) if journal.created_at else None,
        elapsed_before_s=elapsed,
        extra=extra,
        reattach=reattach,
    )
    return start_engine(
        tasks,
        config,
        journal.run_id,
        path,
        progress=progress,
        listeners=listeners,
        continuation=continuation,
    )
