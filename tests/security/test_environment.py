"""Secrets reach a task only when its agent needs them, and never silently reach an output file.

Attacks that used to work: a task inherited the whole environment of the notebook
(``AWS_SECRET_ACCESS_KEY``, ``ANTHROPIC_API_KEY``), and ``env > e.txt`` put those values in clear
into ``changes.patch`` and ``changed-files/``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from support.attacks import copies
from support.e2e import backend_for, local_run_options
from support.gitrepo import git

import parallelcc_sdk as pcc
from parallelcc_sdk import Task, TaskStatus

ISOLATIONS = ["none", pytest.param("bubblewrap", marks=pytest.mark.bwrap)]
HOST_SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "ANTHROPIC_API_KEY": "sk-ant-api03-host-key-0123456789",
    "MY_SERVICE_TOKEN": "service-token-0123456789",
    "DATABASE_URL": "postgres://admin:hunter2-password@db/prod",
}


def files_of_run(run_dir: Path) -> dict[str, str]:
    """Every file the SDK wrote for the run, as text."""
    return {
        str(path.relative_to(run_dir)): path.read_text(errors="replace")
        for path in sorted(run_dir.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_task_gets_an_allow_listed_environment_not_the_hosts(
    isolation: str,
    tmp_path: Path,
    pcc_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    repo_untouched: Callable[[], None],
) -> None:
    for name, value in HOST_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    backend = backend_for(isolation)
    passing = pcc.LocalBackend(
        isolation=backend.isolation, env_passthrough=["PIP_*", "HTTPS_PROXY"]
    )
    for name, chosen in (("default", backend), ("passthrough", passing)):
        result = pcc.run(
            [Task("dump", env={"TASK_SETTING": "from-the-task"})],
            agent=pcc.Command("env > env.txt", env={"AGENT_SETTING": "from-the-agent"}),
            **local_run_options(pcc_repo, tmp_path / name, backend=chosen),
        )
        record = result.tasks[0]
        assert record.status is TaskStatus.COMPLETED, record.error
        env = dict(
            line.split("=", 1)
            for line in (copies(record) / "env.txt").read_text().splitlines()
            if "=" in line
        )
        for secret_name, value in HOST_SECRETS.items():
            assert secret_name not in env
            assert value not in (copies(record) / "env.txt").read_text()
        assert env["TASK_SETTING"] == "from-the-task"
        assert env["AGENT_SETTING"] == "from-the-agent"
        assert env["LC_ALL"] == "C.UTF-8" and env["PATH"]
        # The sandbox's private home, not the user's.
        sandbox_root = (record.sandbox_id or "").removeprefix("local:")
        assert Path(env["HOME"]).parent.name == sandbox_root and sandbox_root
        if name == "default":
            assert "PIP_INDEX_URL" not in env and "HTTPS_PROXY" not in env
            assert record.secrets_in_changes == ()
        else:
            assert env["PIP_INDEX_URL"] == "https://mirror.example/simple"
            assert env["HTTPS_PROXY"] == "http://proxy.example:3128"
    repo_untouched()


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_secret_written_into_the_changes_is_flagged_and_the_patch_still_applies(
    isolation: str, tmp_path: Path, pcc_repo: Path, repo_untouched: Callable[[], None]
) -> None:
    task_secret = "deploy-token-0123456789abcdef"
    agent_secret = "agent-api-key-9876543210fedcba"
    agent = pcc.Command(
        'printf "%s\\n" "$DEPLOY_TOKEN" > leaked.txt; '
        'echo "key: $SERVICE_API_KEY" >> README.md; '
        "mkdir -p notes && echo harmless > notes/plain.txt",
        env={"SERVICE_API_KEY": agent_secret},
    )
    result = pcc.run(
        [Task("leak it", env={"DEPLOY_TOKEN": task_secret}), Task("stay clean", id="clean")],
        agent=pcc.Command("echo nothing secret > clean.txt"),
        **local_run_options(pcc_repo, tmp_path / "clean-run", backend=backend_for(isolation)),
    )
    assert [t.secrets_in_changes for t in result.tasks] == [(), ()]
    result = pcc.run(
        [Task("leak it", env={"DEPLOY_TOKEN": task_secret})],
        agent=agent,
        **local_run_options(pcc_repo, tmp_path / "results", backend=backend_for(isolation)),
    )
    record = result.tasks[0]
    # The task did what it was told: flagged, not failed.
    assert record.status is TaskStatus.COMPLETED, record.error
    assert record.secrets_in_changes == (
        "changes.patch",
        "changed-files/README.md",
        "changed-files/leaked.txt",
    )
    assert pcc.load_run(result.run_dir).tasks[0].secrets_in_changes == record.secrets_in_changes
    # Only the file paths are recorded: no secret is in any record, log or report.
    written = files_of_run(result.run_dir)
    holding = sorted(
        name for name, text in written.items() if task_secret in text or agent_secret in text
    )
    assert holding == [
        "task-1/changed-files/README.md",
        "task-1/changed-files/leaked.txt",
        "task-1/changes.patch",
    ]
    # The patch is left as it is, so it still applies and gives the task's files back.
    patch = Path(record.output_path or "") / "changes.patch"
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(pcc_repo), str(clone)], check=True)
    git("apply", "--binary", str(patch), cwd=clone)
    assert (clone / "leaked.txt").read_text() == f"{task_secret}\n"
    repo_untouched()
