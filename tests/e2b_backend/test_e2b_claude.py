"""The real ``claude`` CLI inside sandboxes of the local E2B server, talking to the scripted
Messages API on 127.0.0.1 (the emulated sandboxes share this machine's network)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from e2b_server.server import E2BTestServer
from support.e2b_runs import e2b_options
from support.scripted_anthropic import ScriptedAnthropic, note_taker

import parallelcc_sdk as pcc

pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.claude,
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        shutil.which("claude") is None and os.environ.get("PARALLELCC_NO_CLAUDE") == "1",
        reason="PARALLELCC_NO_CLAUDE=1 and the claude CLI is not installed",
    ),
]

FAKE_KEY = "sk-ant-api03-FAKE-e2b-test-key-0123456789abcdef"
_AUTH_VARS = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN",
              "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CONFIG_DIR",
              "ANTHROPIC_BASE_URL")  # fmt: skip


def test_claude_code_runs_in_e2b_sandboxes_end_to_end(
    server: E2BTestServer, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in _AUTH_VARS:
        monkeypatch.delenv(var, raising=False)
    with ScriptedAnthropic(responder=note_taker) as api:
        agent = pcc.ClaudeCode(
            model="claude-sonnet-4-5",
            env={
                "ANTHROPIC_API_KEY": FAKE_KEY,
                "ANTHROPIC_BASE_URL": api.url,
                "CLAUDE_CODE_MAX_RETRIES": "0",
            },
        )
        result = pcc.run(
            ["Document greet in src/d.py", "Write a usage section"],
            agent=agent,
            **e2b_options(repo, tmp_path / "out"),
        )
        sent = list(api.requests)

    first, second = result.tasks
    assert (first.status, second.status) == ("completed", "completed"), (first.error, second.error)
    assert first.changed_paths == ("src/d.py",) and first.lines_added == 1
    assert second.changed_paths == ("NOTES.md",)
    copied = Path(str(first.output_path)) / "changed-files" / "src" / "d.py"
    assert copied.read_text().endswith("# TODO: Document greet in src/d.py\n")
    assert first.final_text == "Done: I noted the task in the file it names."
    # The CLI ran in the sandboxes (as the sandbox user, in their workspace) with the key it was
    # given in its environment.
    assert sent and all(r.headers.get("x-api-key") == FAKE_KEY for r in sent if r.script)
    assert server.log.count("process.Start") >= 4
    # Both costs: what the model's tokens cost and what the sandbox's seconds cost.
    for task in result.tasks:
        assert task.agent_cost_usd is not None and task.agent_cost_usd > 0
        assert task.sandbox_cost_usd is not None and task.sandbox_cost_usd > 0
        assert task.cost_usd == pytest.approx(task.agent_cost_usd + task.sandbox_cost_usd)
        assert task.num_turns == 2
    for path in Path(result.run_dir).rglob("*"):
        if path.is_file():
            assert FAKE_KEY not in path.read_text(errors="replace"), path
    assert server.alive() == []
