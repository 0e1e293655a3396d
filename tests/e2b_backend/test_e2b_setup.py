"""Set-up once per run on ``E2BBackend``: it runs in the base sandbox before the forks, which
inherit its result; counted from the local E2B server's own record of the commands it started."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2b_server.server import E2BTestServer
from support.e2b_runs import e2b_options, task_sandbox
from support.gitrepo import make_repo

import parallelcc_sdk as pcc
from parallelcc_sdk.errors import SetupError

pytestmark = [pytest.mark.bwrap, pytest.mark.timeout(180)]

SETUP_MARK = "setup-was-here"
SETUP = (
    f"echo {SETUP_MARK} > /dev/null && mkdir -p .tool && "
    "printf '#!/bin/sh\\necho tool-output\\n' > .tool/run && chmod +x .tool/run && "
    "echo set-up done"
)


@pytest.fixture
def tool_repo(tmp_path: Path, pcc_git_env: Path) -> Path:
    return make_repo(tmp_path / "repo", {".gitignore": ".tool/\n", "app.py": "print(1)\n"})


def test_setup_runs_once_in_the_base_sandbox_for_20_forked_tasks(
    server: E2BTestServer, tool_repo: Path, tmp_path: Path
) -> None:
    agent = pcc.Command("./.tool/run > used.txt && echo change >> app.py")
    result = pcc.run(
        [f"task {n}" for n in range(20)],
        setup=SETUP,
        **e2b_options(tool_repo, tmp_path / "results", agent=agent, max_concurrent=5),
    )
    assert result.success, result.df[["task_id", "status", "error"]]
    # One command of the whole run was the set-up, started in the one sandbox not a task's.
    started = [
        (r.sandbox_id, line)
        for r in server.records()
        for line in server.commands(r.sandbox_id)
        if SETUP_MARK in line
    ]
    assert len(started) == 1, started
    (base,) = [r for r in server.records() if not task_sandbox(r)]
    assert started[0][0] == base.sandbox_id
    forks = [r for r in server.records() if task_sandbox(r)]
    assert len(forks) == 20 and all(r.parent_id == base.sandbox_id for r in forks)
    for task in result.tasks:
        patch = (Path(task.output_path or "") / "changes.patch").read_text()
        # Each task ran set-up's tool; set-up's own outputs are not in its changes.
        assert "+tool-output" in patch and "+change" in patch and ".tool" not in patch
        assert task.files_changed == 2
    assert result.setup is not None and result.setup["exit_code"] == 0
    assert (result.run_dir / "setup" / "execution.log").read_text() == "set-up done\n"
    assert json.loads((result.run_dir / "run.json").read_text())["setup"]["exit_code"] == 0
    assert server.alive() == []


def test_setup_that_edits_a_tracked_file_fails_the_run_before_any_fork(
    server: E2BTestServer, tool_repo: Path, tmp_path: Path
) -> None:
    handle = pcc.submit(
        ["a", "b"],
        setup="echo more >> app.py",
        **e2b_options(tool_repo, tmp_path / "results", agent=pcc.Command("touch ran")),
    )
    with pytest.raises(SetupError, match=r"app\.py"):
        handle.result()
    assert [r for r in server.records() if task_sandbox(r)] == []
    assert server.alive() == []


def test_setup_with_upload_is_refused_before_any_sandbox(
    server: E2BTestServer, tool_repo: Path, tmp_path: Path
) -> None:
    with pytest.raises(pcc.ValidationError, match=r"prepare='fork' or 'auto'"):
        pcc.submit(
            ["a"],
            setup=SETUP,
            **e2b_options(tool_repo, tmp_path / "results", prepare="upload"),
        )
    assert server.records() == []
