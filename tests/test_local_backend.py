"""The local backend end to end: the prompt reaches the agent byte for byte, and under bubblewrap a
task can write only its workspace, its private home and its private /tmp."""

from __future__ import annotations

import json
import os
import pwd
import uuid
from pathlib import Path
from typing import Any

import pytest
from support.e2e import (
    backend_for,
    bubblewrap_backend,
    diff_states,
    local_run_options,
    marked_processes,
    tree_state,
    wait_for,
)

import parallelcc_sdk as pcc
from parallelcc_sdk import Task, TaskStatus

PROMPTS: dict[str, str] = {
    "quotes": "it's \"double\" and 'single' and \"unbalanced ' quote",
    "substitution": "$(touch pwned-dollar) `touch pwned-backtick` ${HOME} $PATH $$ $1 \"$(id)\"",
    "backslashes": "C:\\path\\to\\file \\n is not a newline \\\\ \\x41 \\0 \\",
    "newlines": "\n  leading blank line\nline two\n\n\ttabbed\r\ncrlf\nlast newline\n",
    "unicode": "héllo wörld — 日本語 🚀 zero\u200bwidth, ﬁ ligature, Ω",
    "shell-meta": "; rm -rf / & | > out.txt < in.txt * ? [a-z] ~ # comment ! %s %n",
    "long": ("100 kB: 'quotes' \"dq\" $(x) `y` \\ é 🚀\n" * 2500)[:100_000],
}

# Writes every way the prompt arrives, and nothing else, into the workspace.
ECHO_PROMPT = pcc.Command(
    "cat > stdin.bin; "
    'printf %s "$PARALLELCC_PROMPT" > env.bin; '
    'printf %s "$PARALLELCC_TASK_ID" > id.bin'
)


@pytest.mark.parametrize(
    "isolation", ["none", pytest.param("bubblewrap", marks=pytest.mark.bwrap)]
)
def test_the_prompt_reaches_the_agent_byte_for_byte(
    tmp_path: Path, pcc_repo: Path, isolation: str
) -> None:
    assert len(PROMPTS["long"].encode()) > 100_000
    result = pcc.run(
        [Task(prompt, id=name) for name, prompt in PROMPTS.items()],
        agent=ECHO_PROMPT,
        max_concurrent=4,
        **local_run_options(pcc_repo, tmp_path / "results", backend=backend_for(isolation)),
    )
    assert result.success, result.df[["task_id", "status", "error"]].to_string()
    for record in result.tasks:
        expected = PROMPTS[record.task_id].encode()
        copies = Path(record.output_path or "") / "changed-files"
        assert (copies / "stdin.bin").read_bytes() == expected, f"stdin of {record.task_id}"
        assert (copies / "env.bin").read_bytes() == expected, f"env of {record.task_id}"
        assert (copies / "id.bin").read_bytes() == record.task_id.encode()
        # Nothing in the prompt was run by the shell.
        assert sorted(record.changed_paths) == ["env.bin", "id.bin", "stdin.bin"]
        assert record.prompt == PROMPTS[record.task_id]
    assert list(result.df["prompt"]) == list(PROMPTS.values())


def test_a_prompt_too_long_for_the_environment_still_arrives_on_stdin(
    pcc_opts: dict[str, Any],
) -> None:
    prompt = "x" * 300_000 + "\n'end' é"
    result = pcc.run(
        [prompt],
        agent=pcc.Command(
            'cat > stdin.bin; [ -z "${PARALLELCC_PROMPT+set}" ] && echo unset > env.txt'
        ),
        **pcc_opts,
    )
    record = result.tasks[0]
    assert record.status is TaskStatus.COMPLETED, record.error
    copies = Path(record.output_path or "") / "changed-files"
    assert (copies / "stdin.bin").read_bytes() == prompt.encode()
    assert (copies / "env.txt").read_text() == "unset\n"


# -- bubblewrap -------------------------------------------------------------------------------


@pytest.mark.bwrap
def test_under_bubblewrap_a_task_writes_only_its_workspace_home_and_tmp(
    tmp_path: Path, pcc_repo: Path, pcc_git_env: Path
) -> None:
    backend = bubblewrap_backend()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep\n")
    real_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    package_dir = Path(pcc.__file__).resolve().parent
    probe = f".parallelcc-escape-probe-{uuid.uuid4().hex}"
    targets = {
        "repo": pcc_repo / probe,
        "repo-git": pcc_repo / ".git" / probe,
        "repo-objects": pcc_repo / ".git" / "objects" / probe,
        "repo-file": pcc_repo / "README.md",
        "outside": outside / probe,
        "outside-file": outside / "keep.txt",
        "host-home": pcc_git_env / probe,
        "real-home": real_home / probe,
        "host-folder": package_dir / probe,
    }
    attempts = " ".join(
        f'attempt {name} \'echo escaped > "{path}"\';' for name, path in targets.items()
    )
    agent = pcc.Command(
        'attempt() { if sh -c "$2" 2>/dev/null; then r=written; else r=denied; fi; '
        'echo "$1 $r" >> "$REPORT"; }; '
        'REPORT="$PWD/report.txt"; '
        "attempt workspace 'mkdir -p sub && echo ok > sub/in-workspace.txt'; "
        "attempt home 'echo ok > \"$HOME/in-home.txt\" && grep -q ok \"$HOME/in-home.txt\"'; "
        "attempt tmp 'echo ok > /tmp/in-tmp.txt && grep -q ok /tmp/in-tmp.txt'; "
        f"{attempts} "
        'echo "home=$HOME"'
    )
    before = tree_state(pcc_repo)
    outside_before = tree_state(outside)
    try:
        result = pcc.run(
            ["try to escape"],
            agent=agent,
            **local_run_options(pcc_repo, tmp_path / "results", backend=backend),
        )
        record = result.tasks[0]
        assert record.status is TaskStatus.COMPLETED, record.error
        copies = Path(record.output_path or "") / "changed-files"
        report = dict(
            line.split() for line in (copies / "report.txt").read_text().splitlines()
        )
        assert report == {
            "workspace": "written",
            "home": "written",
            "tmp": "written",
            **dict.fromkeys(targets, "denied"),
        }
        assert (copies / "sub" / "in-workspace.txt").read_text() == "ok\n"
        log = (Path(record.output_path or "") / "execution.log").read_text()
        assert "home=" in log and f"home={pcc_git_env}\n" not in log  # a private home
        # Nothing reached the host.
        leaked = [str(p) for p in targets.values() if p.name == probe and p.exists()]
        assert leaked == []
        assert diff_states(before, tree_state(pcc_repo)) == []
        assert diff_states(outside_before, tree_state(outside)) == []
    finally:
        for path in targets.values():
            if path.name == probe:
                path.unlink(missing_ok=True)


@pytest.mark.bwrap
def test_under_bubblewrap_a_timeout_kills_everything_in_the_sandbox(
    tmp_path: Path, pcc_repo: Path
) -> None:
    handle = pcc.submit(
        ["x"],
        agent=pcc.Command("sleep 30 & (setsid sleep 30 &) ; wait"),
        task_timeout=1.5,
        **local_run_options(pcc_repo, tmp_path / "results", backend=bubblewrap_backend()),
    )
    try:
        wait_for(lambda: handle.tasks[0].phase == "running", what="the task to run")
        sandbox_id = handle.tasks[0].sandbox_id
        assert sandbox_id
        # The marker scan sees the sandbox's processes while it runs...
        wait_for(lambda: len(marked_processes([sandbox_id])) >= 3, what="sandboxed processes")
        result = handle.result(timeout=20)
    finally:
        handle.cancel()
    assert result.tasks[0].status is TaskStatus.TIMED_OUT
    # ...and none of them once the task is over.
    assert marked_processes([sandbox_id]) == []


@pytest.mark.bwrap
def test_bubblewrap_isolation_is_recorded_in_run_json(tmp_path: Path, pcc_repo: Path) -> None:
    result = pcc.run(
        ["x"],
        agent=pcc.Command("true"),
        **local_run_options(pcc_repo, tmp_path / "results", backend=bubblewrap_backend()),
    )
    config = json.loads((result.run_dir / "run.json").read_text())["config"]
    backend = config["backend"]
    assert {k: backend[k] for k in ("name", "isolation", "isolation_in_force", "bubblewrap")} == {
        "name": "local", "isolation": "bubblewrap", "isolation_in_force": "bubblewrap",
        "bubblewrap": True,
    }
    assert backend["sandbox_user"].endswith("without capabilities")
    assert "/root" in backend["hidden"]
    assert result.tasks[0].isolation == "bubblewrap"


@pytest.mark.bwrap
def test_under_bubblewrap_host_files_in_tmp_are_readable_and_other_sandboxes_hidden(
    tmp_path: Path, pcc_repo: Path
) -> None:
    # tmp_path lies under /tmp: a tool installed there (a virtualenv, a checkout) must run inside
    # the sandbox, read-only, while the sandbox's own /tmp stays private.
    tools = tmp_path / "tools"
    tools.mkdir()
    tool = tools / "hello.sh"
    tool.write_text('#!/bin/sh\necho "hello from $(basename "$0")"\n')
    tool.chmod(0o755)
    (tools / "data.txt").write_text("host data\n")
    agent = pcc.Command(
        f'{tool} > ran.txt; cat "{tools}/data.txt" >> ran.txt; '
        f'if echo x > "{tools}/data.txt" 2>/dev/null; then echo wrote >> ran.txt; '
        "else echo denied >> ran.txt; fi; "
        "sleep 0.5; ls /tmp > tmp-listing.txt"
    )
    result = pcc.run(
        ["one", "two"],
        agent=agent,
        max_concurrent=2,
        **local_run_options(pcc_repo, tmp_path / "results", backend=bubblewrap_backend()),
    )
    first, second = result.tasks
    assert (first.status, second.status) == (TaskStatus.COMPLETED,) * 2, first.error
    copies = Path(first.output_path or "") / "changed-files"
    assert (copies / "ran.txt").read_text() == "hello from hello.sh\nhost data\ndenied\n"
    assert (tools / "data.txt").read_text() == "host data\n"
    listing = (copies / "tmp-listing.txt").read_text().split()
    other_root = (second.sandbox_id or "").removeprefix("local:")
    own_root = (first.sandbox_id or "").removeprefix("local:")
    assert other_root and other_root not in listing  # both ran at once, yet it is not visible
    assert own_root in listing
    assert tmp_path.parts[2] in listing  # host entries of /tmp are there (read-only)
