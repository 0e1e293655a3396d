"""A task's streamed files, ``execution.log`` and ``events.jsonl``, written so that a full disk
fails the task that could not write, never the run.

A write that fails is reported once (the first failure says which file and why) and the files
are written no further: the engine stops the task and records it ``failed`` with that sentence,
while the other tasks go on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO

from .errors import OutputWriteError, describe_write_failure
from .runfolder.layout import TaskLayout

__all__ = ["TaskOutput", "run_relative"]


def run_relative(path: str | Path | None, run_dir: Path) -> str:
    """A file of the run's folder as the run's records name it: ``task-3/metadata.json``."""
    if path is None:
        return "a file of the run's folder"
    try:
        return Path(path).relative_to(run_dir).as_posix()
    except ValueError:
        return str(path)


class TaskOutput:
    """The open log and events files of one task; use it as a context manager."""

    def __init__(
        self, files: TaskLayout, run_dir: Path, on_failure: Callable[[str], None]
    ) -> None:
        self._files = files
        self._run_dir = run_dir
        self._on_failure = on_failure
        self._log: IO[str] | None = None
        self._events: IO[str] | None = None
        self.failure: str | None = None
        """Why a file of the task could not be written (``None`` while all is well)."""

    def display(self, path: Path) -> str:
        return run_relative(path, self._run_dir)

    def open(self) -> None:
        """Makes the task's folder and opens its files; raises :class:`OutputWriteError`."""
        path = self._files.task_dir
        try:
            path.mkdir(exist_ok=True)
            path = self._files.execution_log
            # Line-buffered: each line is one quick append, on disk while the task runs.
            self._log = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            path = self._files.events
            self._events = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        except OSError as exc:
            self.close()
            raise OutputWriteError(describe_write_failure(self.display(path), exc)) from exc

    def log(self, text: str) -> None:
        """Appends ``text`` to ``execution.log``; never raises."""
        self._write(self._log, self._files.execution_log, text)

    def event(self, text: str) -> None:
        """Appends ``text`` to ``events.jsonl``; never raises."""
        self._write(self._events, self._files.events, text)

    def close(self) -> None:
        """Closes both files. A failure to flush their last bytes is recorded in ``failure``
        like any other, but not reported: the task has ended, there is nothing to stop."""
        for path, handle in (
            (self._files.execution_log, self._log),
            (self._files.events, self._events),
        ):
            if handle is None:
                continue
            try:
                handle.close()
            except OSError as exc:
                if self.failure is None:
                    self.failure = describe_write_failure(self.display(path), exc)
        self._log = self._events = None

    def __enter__(self) -> TaskOutput:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(self, handle: IO[str] | None, path: Path, text: str) -> None:
        if handle is None or self.failure is not None:
            return
        try:
            handle.write(text)
        except OSError as exc:
            self._fail(path, exc)

    def _fail(self, path: Path, exc: OSError) -> None:
        if self.failure is not None:
            return
        self.failure = describe_write_failure(self.display(path), exc)
        self._on_failure(self.failure)
