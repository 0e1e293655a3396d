"""Helpers of the attack tests (tests/security): a shell function that tries something and writes
down whether it worked, and reading what a task wrote back.

An attack's outcome is read from files the task wrote into its own workspace, which come back in
``changed-files/``.
"""

from __future__ import annotations

from pathlib import Path

from parallelcc_sdk import TaskResult

# `attempt NAME 'shell code'` appends "NAME done" or "NAME denied" to report.txt in the workspace.
ATTEMPT = (
    'attempt() { if sh -c "$2" >/dev/null 2>&1; then r=done; else r=denied; fi; '
    'echo "$1 $r" >> "$REPORT"; }; REPORT="$PWD/report.txt"; '
)


def copies(record: TaskResult) -> Path:
    """The task's ``changed-files/`` folder."""
    return Path(record.output_path or "") / "changed-files"


def report_of(record: TaskResult) -> dict[str, str]:
    """The ``attempt`` verdicts a task wrote, by name."""
    return verdicts_in(copies(record))


def verdicts_in(folder: Path) -> dict[str, str]:
    """The ``attempt`` verdicts written into ``folder/report.txt``, by name."""
    lines = (folder / "report.txt").read_text().splitlines()
    return dict(line.split(" ", 1) for line in lines)
