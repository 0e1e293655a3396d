"""What a run needs to go on in a later process (resume, retry), and how tasks are stored for it.

``run.json`` records each task's result, which holds its prompt and metadata; what else a task
needs to run again (its time limit, its environment) is the config's ``task_options``, written
only for tasks that have any. Environment values under secret-looking names are masked in
``run.json`` like every secret; they are read again from this process's environment when the
task is rebuilt.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ValidationError
from .models import Task, TaskResult
from .redaction import MASK

__all__ = ["TASK_OPTIONS", "Continuation", "task_options", "tasks_from_records"]

TASK_OPTIONS = "task_options"


@dataclass(frozen=True)
class Continuation:
    """An earlier process's share of a run, which this process goes on from."""

    records: Mapping[str, TaskResult]
    """Every task's record; tasks whose record is final are kept, the others run."""
    created_at: str | None = None
    """When the run was first started (kept in ``run.json``)."""
    elapsed_before_s: float = 0.0
    """How long the run's earlier processes ran, added to this one's wall clock."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Top-level entries of ``run.json`` to keep (``setup``, ``resumed``)."""
    reattach: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Task id → its sandbox as journaled (``sandbox_info`` with its ``sandbox_id``), for tasks
    that were running when the run's process died in a sandbox that may still be alive: their
    attempt goes on there if the backend can re-attach to it (``Backend.reattach``)."""


def task_options(tasks: Iterable[Task]) -> dict[str, dict[str, Any]]:
    """Task id → what its record does not hold (timeout, env), for tasks that have any."""
    options: dict[str, dict[str, Any]] = {}
    for task in tasks:
        entry: dict[str, Any] = {}
        if task.timeout is not None:
            entry["timeout"] = task.timeout
        if task.env:
            entry["env"] = dict(task.env)
        if entry:
            options[task.task_id] = entry
    return options


def tasks_from_records(
    records: Iterable[TaskResult],
    options: Mapping[str, Any],
    environ: Mapping[str, str] = os.environ,
) -> list[Task]:
    """The tasks of a recorded run, rebuilt; masked environment values come from ``environ``."""
    tasks = []
    for record in records:
        entry = options.get(record.task_id)
        entry = entry if isinstance(entry, Mapping) else {}
        env = {str(k): str(v) for k, v in (entry.get("env") or {}).items()}
        for name, value in env.items():
            if value == MASK:
                if name not in environ:
                    raise ValidationError(
                        f"task {record.task_id} needs the environment variable {name}, whose "
                        "value was not stored with the run (it looks secret); set it and try "
                        "again."
                    )
                env[name] = environ[name]
        timeout = entry.get("timeout")
        tasks.append(
            Task(
                prompt=record.prompt,
                id=record.task_id,
                metadata=dict(record.metadata),
                timeout=float(timeout) if isinstance(timeout, int | float) else None,
                env=env,
                candidate_of=record.candidate_of,
                candidate=record.candidate,
            )
        )
    return tasks
