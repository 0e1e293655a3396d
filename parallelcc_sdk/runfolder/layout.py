"""Every name and path in a run folder. No other module spells a file name of the run folder.

    <output_dir>/
      .gitignore                  ``*``, written when the SDK creates the output folder
      <run_id>/
        .gitignore                ``*``: the run never shows in the user's ``git status``
        run.json                  config, task list, the run's process; compacted at the end
        journal.jsonl             one line per task state change while the run is live
        summary.json              RunSummary + every task record (finished runs)
        summary-report.md         the Markdown report
        results.csv               ``result.df``
        setup/                    only for a run with a set-up command
          setup.json              its command, exit code, times (also in run.json's ``setup``)
          execution.log           its output, redacted
        <task_id>/
          metadata.json           the task's final record
          execution.log           the agent's full output, redacted
          events.jsonl            the agent's structured events
          changes.patch           ``git diff --binary`` against the snapshot
          changed-files/          copies of added or modified files
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CHANGED_FILES_DIR",
    "EVENTS_JSONL",
    "EXECUTION_LOG",
    "GITIGNORE",
    "GITIGNORE_TEXT",
    "JOURNAL_JSONL",
    "METADATA_JSON",
    "PATCH_FILE",
    "REPORT_MD",
    "RESULTS_CSV",
    "RUN_JSON",
    "SETUP_DIR",
    "SETUP_JSON",
    "SUMMARY_JSON",
    "RunLayout",
    "TaskLayout",
]

GITIGNORE = ".gitignore"
GITIGNORE_TEXT = "*\n"

RUN_JSON = "run.json"
JOURNAL_JSONL = "journal.jsonl"
SUMMARY_JSON = "summary.json"
REPORT_MD = "summary-report.md"
RESULTS_CSV = "results.csv"

METADATA_JSON = "metadata.json"
EXECUTION_LOG = "execution.log"
EVENTS_JSONL = "events.jsonl"
PATCH_FILE = "changes.patch"
CHANGED_FILES_DIR = "changed-files"
SNAPSHOT_JSON = "snapshot.json"
SNAPSHOT_PATCH = "snapshot.patch"

SETUP_DIR = "setup"
SETUP_JSON = "setup.json"


@dataclass(frozen=True)
class TaskLayout:
    """The paths of one task's folder, ``<run_dir>/<task_id>/``."""

    task_dir: Path

    @property
    def metadata(self) -> Path:
        return self.task_dir / METADATA_JSON

    @property
    def execution_log(self) -> Path:
        return self.task_dir / EXECUTION_LOG

    @property
    def events(self) -> Path:
        return self.task_dir / EVENTS_JSONL

    @property
    def patch(self) -> Path:
        return self.task_dir / PATCH_FILE

    @property
    def changed_files(self) -> Path:
        return self.task_dir / CHANGED_FILES_DIR


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run's folder, ``<output_dir>/<run_id>/``."""

    run_dir: Path

    @property
    def gitignore(self) -> Path:
        return self.run_dir / GITIGNORE

    @property
    def run_json(self) -> Path:
        return self.run_dir / RUN_JSON

    @property
    def journal(self) -> Path:
        return self.run_dir / JOURNAL_JSONL

    @property
    def summary_json(self) -> Path:
        return self.run_dir / SUMMARY_JSON

    @property
    def report(self) -> Path:
        return self.run_dir / REPORT_MD

    @property
    def results_csv(self) -> Path:
        return self.run_dir / RESULTS_CSV

    @property
    def setup_dir(self) -> Path:
        return self.run_dir / SETUP_DIR

    @property
    def setup_json(self) -> Path:
        return self.setup_dir / SETUP_JSON

    @property
    def setup_log(self) -> Path:
        return self.setup_dir / EXECUTION_LOG

    def task_dir(self, task_id: str) -> Path:
        """The folder of ``task_id``.

        Ids are checked as folder names when tasks are loaded, but a run folder read back from
        disk may hold anything: an id that would lead out of the run folder is refused here.
        """
        if not task_id or task_id in (".", "..") or "/" in task_id or "\0" in task_id:
            raise ValueError(f"{task_id!r} is not a task folder name")
        return self.run_dir / task_id

    def task(self, task_id: str) -> TaskLayout:
        return TaskLayout(self.task_dir(task_id))

    def is_run_folder(self) -> bool:
        """True if the folder holds a run (its journal or its summary)."""
        return self.run_json.is_file() or self.summary_json.is_file()
