"""Where landing finds a run's files: each task's patch, events and log, and the snapshot record.

The file names come from the run folder's layout; this module only finds the folders.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..results import RunResult

from ..runfolder.layout import CHANGED_FILES_DIR, PATCH_FILE, SNAPSHOT_JSON, SNAPSHOT_PATCH
from ..runfolder.layout import EVENTS_JSONL as EVENTS_FILE
from ..runfolder.layout import EXECUTION_LOG as LOG_FILE

__all__ = [
    "CHANGED_FILES_DIR",
    "EVENTS_FILE",
    "LOG_FILE",
    "PATCH_FILE",
    "SNAPSHOT_JSON",
    "SNAPSHOT_PATCH",
    "run_file",
    "task_dir",
    "task_file",
]


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
