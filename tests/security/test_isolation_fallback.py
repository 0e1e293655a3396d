"""Isolation never disappears silently.

With a ``bwrap`` that cannot start a sandbox (a broken or blocked install), ``isolation="auto"``
used to run tasks unsandboxed with no word about it: a task's ``touch`` outside its workspace
created the file on the host. Now it warns once, every task's record says ``isolation="none"``,
and an agent that edits files unattended is refused unless the user chose ``isolation="none"``.
"""

from __future__ import annotations

import json
import os
import uuid
import warnings
from pathlib import Path

import pytest
from support.e2e import local_run_options

import parallelcc_sdk as pcc
from parallelcc_sdk import IsolationWarning, TaskStatus


@pytest.fixture
def broken_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``bwrap`` first on PATH that fails as a blocked install does."""
    folder = tmp_path / f"bin-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    fake = folder / "bwrap"
    fake.write_text(
        "#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return fake


def test_auto_warns_once_and_every_record_says_there_was_no_sandbox(
    tmp_path: Path, pcc_repo: Path, broken_bwrap: Path
) -> None:
    outside = tmp_path / "outside-the-workspace"
    agent = pcc.Command(f'touch "{outside}"')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = pcc.run(
            ["a", "b"],
            agent=agent,
            **local_run_options(pcc_repo, tmp_path / "results", backend=pcc.LocalBackend()),
        )
        second = pcc.run(
            ["c"],
            agent=agent,
            **local_run_options(pcc_repo, tmp_path / "results", backend=pcc.LocalBackend()),
        )
    fallbacks = [w for w in caught if issubclass(w.category, IsolationWarning)]
    assert len(fallbacks) == 1, [str(w.message) for w in caught]
    message = str(fallbacks[0].message)
    assert "WITHOUT a sandbox" in message and str(broken_bwrap) in message
    assert "isolation='none'" in message
    # The task did reach the host, and nothing pretends otherwise.
    assert outside.exists()
    for result in (first, second):
        assert [t.status for t in result.tasks] == [TaskStatus.COMPLETED] * len(result.tasks)
        assert [t.isolation for t in result.tasks] == ["none"] * len(result.tasks)
        assert list(result.df["isolation"]) == ["none"] * len(result.tasks)
        backend = json.loads((result.run_dir / "run.json").read_text())["config"]["backend"]
        assert (backend["isolation"], backend["isolation_in_force"]) == ("auto", "none")
        reloaded = pcc.load_run(result.run_dir)
        assert [t.isolation for t in reloaded.tasks] == ["none"] * len(result.tasks)


def test_an_agent_that_edits_unattended_is_refused_without_a_sandbox(
    tmp_path: Path, pcc_repo: Path, broken_bwrap: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api03-not-a-real-key-0123456789")
    out = tmp_path / "results"
    agent = pcc.ClaudeCode()
    assert agent.edits_unattended  # bypassPermissions is its default
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IsolationWarning)
        with pytest.raises(pcc.BackendUnavailableError) as info:
            pcc.run(["fix it"], agent=agent, backend=pcc.LocalBackend(), repo=pcc_repo,
                    output_dir=out, progress="off")
    message = str(info.value)
    assert "isolation='none'" in message and "bubblewrap" in message
    assert "\n" not in message and message.endswith(".")
    assert not out.exists(), "nothing may start before the refusal"
    # Asking for no sandbox explicitly is the user's call: the run starts.
    stand_in = tmp_path / "claude"
    stand_in.write_text("#!/bin/sh\ncat > /dev/null\n")
    stand_in.chmod(0o755)
    result = pcc.run(
        ["fix it"],
        agent=pcc.ClaudeCode(executable=str(stand_in)),
        **local_run_options(pcc_repo, out, backend=pcc.LocalBackend(isolation="none")),
    )
    assert result.tasks[0].isolation == "none"
    assert result.tasks[0].exit_code == 0


def test_asking_for_bubblewrap_when_it_is_broken_is_refused(
    tmp_path: Path, pcc_repo: Path, broken_bwrap: Path
) -> None:
    with pytest.raises(pcc.BackendUnavailableError, match="isolation='bubblewrap'"):
        pcc.run(["x"], agent=pcc.Command("true"),
                **local_run_options(pcc_repo, tmp_path / "results",
                                    backend=pcc.LocalBackend(isolation="bubblewrap")))
