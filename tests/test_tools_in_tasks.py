"""What docs/tools-in-tasks.md promises, under bubblewrap: tools are found on PATH, the Python
running the SDK works in a task but cannot be changed by it, and a virtualenv in the task's
private home is no part of its changes."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from support.e2e import bubblewrap_backend, local_run_options

import parallelcc_sdk as pcc

pytestmark = [pytest.mark.bwrap, pytest.mark.usefixtures("pcc_git_env")]

PYTHON = shlex.quote(sys.executable)


@pytest.fixture
def sandboxed(pcc_repo: Path, tmp_path: Path) -> dict[str, Any]:
    return local_run_options(pcc_repo, tmp_path / "out", backend=bubblewrap_backend())


def test_a_tool_on_path_is_found_by_name(
    sandboxed: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "my-linter").write_text("#!/bin/sh\necho 'my-linter: 0 problems'\n")
    (tools / "my-linter").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{sys.prefix}/bin:/usr/bin:/bin")
    result = pcc.run(["lint"], agent=pcc.Command("my-linter"), **sandboxed)
    assert result.tasks[0].last_output == "my-linter: 0 problems"


def test_the_sdks_python_runs_in_a_task_which_cannot_change_it(sandboxed: dict[str, Any]) -> None:
    probe = Path(sys.prefix) / "parallelcc-probe"
    result = pcc.run(
        ["x"],
        agent=pcc.Command(
            f"{PYTHON} -c 'import pandas; print(pandas.__name__)' && "
            f"touch {shlex.quote(str(probe))}"
        ),
        **sandboxed,
    )
    task = result.tasks[0]
    assert task.status is pcc.TaskStatus.FAILED
    assert task.error is not None and task.error.endswith("Read-only file system"), task.error
    log = (Path(task.output_path or "") / "execution.log").read_text()
    assert "pandas" in log.splitlines()
    assert not probe.exists()


def test_a_virtualenv_in_the_tasks_home_is_not_in_its_changes(sandboxed: dict[str, Any]) -> None:
    result = pcc.run(
        ["x"],
        agent=pcc.Command(
            f'{PYTHON} -m venv --without-pip "$HOME/venv" && '
            '"$HOME/venv/bin/python" -c "print(6 * 7)" > answer.txt'
        ),
        **sandboxed,
    )
    task = result.tasks[0]
    assert task.status is pcc.TaskStatus.COMPLETED, task.error
    assert (task.changed_paths, task.excluded_paths) == (("answer.txt",), ())
    copy = Path(task.output_path or "") / "changed-files" / "answer.txt"
    assert copy.read_text() == "42\n"
