"""Runs whose tasks make known edits, for the tests of the conflict map, apply and push."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from support.e2e import local_run_options

import parallelcc_sdk as pcc

# Thirty numbered lines: tasks edit single lines of it, so which edits collide is known.
NUMBERS = "".join(f"{i}\n" for i in range(1, 31))


def run_edits(repo: Path, output_dir: Path, edits: Mapping[str, str]) -> pcc.RunResult:
    """One task per ``task_id: shell command``; the command runs in the task's workspace."""
    tasks = [
        pcc.Task(f"Task {task_id}: {command}", id=task_id, env={"EDIT": command})
        for task_id, command in edits.items()
    ]
    return pcc.run(tasks, agent=pcc.Command('eval "$EDIT"'), **local_run_options(repo, output_dir))


def set_line(n: int, text: str, file: str = "numbers.txt") -> str:
    """A shell command that replaces line ``n`` of ``file`` with ``text``."""
    return f"sed -i '{n}s/.*/{text}/' {file}"
