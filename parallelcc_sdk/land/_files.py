"""Where landing finds a run's files: each task's patch, events and log, and the snapshot record.

Every file name of the run folder that this package reads is spelled here and nowhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..results import RunResult

PATCH_FILE = "changes.patch"
CHANGED_FILES_DIR = "changed-files"
EVENTS_FILE = "events.jsonl"
LOG_FILE = "execution.log"
SNAPSHOT_JSON = "snapshot.json"
SNAPSHOT_PATCH = "snapshot.patch"


def task_dir(result: RunResult, task_id: str) -> Path:
    """The folder of ``task_id``: in the run folder (which may have been moved since the run),
    else where the task recorded it."""
    if not task_id or task_id in (".", "..") or "/" in task_id or "\0" in task_id:
        raise ValueError(f"{task_id!r} is not a task folder name")
    folder = Path(result.run_dir) / task_id
    if not folder.is_dir():
        recorded = result[task_id].output_path
        if recorded and Path(recorded).is_dir():
            return Path(recorded)
    return folder


def task_file(result: RunResult, task_id: str, name: str) -> Path:
    """One file of a task's folder, e.g. ``task_file(result, "task-1", PATCH_FILE)``."""
    return task_dir(result, task_id) / name


def run_file(run_dir: Path, name: str) -> Path:
    """One file at the top of a run folder."""
    return Path(run_dir) / name
