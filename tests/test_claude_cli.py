"""The Claude Code agent: its command line and environment, then the real ``claude`` CLI.

Tests marked ``claude`` run the installed CLI against the scripted Messages API in
``support/scripted_anthropic.py``: the model's turns are scripted, everything else (tool execution,
retries, limits, cost accounting, the stream-json output) is the CLI's own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.gitrepo import make_repo
from support.scripted_anthropic import (
    ScriptedAnthropic,
    drop,
    error,
    first_user_text,
    hang,
    note_taker,
    text,
    tool_use,
    wait_for,
)

from parallelcc_sdk.agents.base import AgentContext, AgentOutcome, Progress
from parallelcc_sdk.agents.claude import ClaudeCode
from parallelcc_sdk.agents.stream_json import NO_RESULT_ERROR
from parallelcc_sdk.errors import AgentNotFoundError, CredentialsError, ValidationError
from parallelcc_sdk.models import Task, TaskStatus

FAKE_KEY = "sk-ant-api03-FAKE-test-key-0123456789abcdef"
MODEL = "claude-sonnet-4-5"
# Variables on this machine that would change which credentials the CLI picks.
_AUTH_VARS = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN",
              "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CONFIG_DIR",
              "ANTHROPIC_BASE_URL")

# CI installs the CLI (.ci/install-claude.sh): where it is missing these tests fail, and skip only
# when that is asked for explicitly.
needs_claude = pytest.mark.skipif(
    shutil.which("claude") is None and os.environ.get("PARALLELCC_NO_CLAUDE") == "1",
    reason="PARALLELCC_NO_CLAUDE=1 and the claude CLI is not installed",
)


@pytest.fixture(autouse=True)
def _clean_auth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in _AUTH_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {"src/app.py": 'def greet():\n    return "hello"\n', "README.md": "# demo\n"},
    )


def context(repo: Path, home: Path) -> AgentContext:
    home.mkdir(exist_ok=True)
    return AgentContext(workspace=str(repo), home=str(home), runs_as_root=os.geteuid() == 0)


def agent_for(api: ScriptedAnthropic, **options: Any) -> ClaudeCode:
    env = {"ANTHROPIC_API_KEY": FAKE_KEY, "ANTHROPIC_BASE_URL": api.url,
           # The scripts decide when errors happen; the CLI's own retries would only add delay.
           "CLAUDE_CODE_MAX_RETRIES": "0", **options.pop("env", {})}
    return ClaudeCode(model=MODEL, env=env, **options)


@dataclass
class Direct:
    outcome: AgentOutcome
    exit_code: int
    progress: list[Progress] = field(default_factory=list)
    stderr: str = ""

    @property
    def messages(self) -> list[str]:
        return [p.message for p in self.progress if p.message]

    def result_event(self) -> dict[str, Any]:
        results = [p.raw for p in self.progress if p.raw and p.raw.get("type") == "result"]
        assert len(results) == 1
        return dict(results[0])


def run_direct(agent: ClaudeCode, prompt: str, repo: Path, home: Path,
               kill_when: Callable[[], bool] | None = None) -> Direct:
    """Runs one attempt the way a backend does: the invocation's argv, env, files and stdin."""
    ctx = context(repo, home)
    task = Task(prompt, id="task-1")
    inv = agent.invocation(task, ctx)
    for file in inv.files:
        Path(file.path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, file.mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(file.content)
    # Nothing from this machine but PATH: the invocation must carry everything the CLI needs.
    env = {"PATH": os.environ["PATH"], "HOME": ctx.home, **inv.env}
    proc = subprocess.Popen(inv.argv, cwd=ctx.workspace, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin and proc.stdout and proc.stderr
    proc.stdin.write(inv.stdin)
    proc.stdin.close()
    stderr: list[bytes] = []
    reader = threading.Thread(target=lambda: stderr.append(proc.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    if kill_when is not None:
        def killer() -> None:
            if wait_for(kill_when, timeout=30):
                proc.send_signal(signal.SIGTERM)
        threading.Thread(target=killer, daemon=True).start()
    parser = agent.parser(task)
    progress: list[Progress] = []
    for raw in proc.stdout:
        progress.extend(parser.feed("stdout", raw.decode().rstrip("\n")))
    exit_code = proc.wait(timeout=60)
    reader.join()
    return Direct(parser.finish(exit_code), exit_code, progress, b"".join(stderr).decode())


# -- the invocation, without running it ------------------------------------------------------------

def test_invocation_argv_env_and_stdin(tmp_path: Path) -> None:
    agent = ClaudeCode(model="claude-opus-5-5", max_turns=7, max_budget_usd=0.25,
                       allowed_tools=["Read", "Bash(git *)"], disallowed_tools=["WebFetch"],
                       extra_args=["--effort", "high"], env={"ANTHROPIC_API_KEY": FAKE_KEY})
    prompt = "--help; $(touch /tmp/x) `id` \"q\" 'q'\nünï"
    ctx = AgentContext(workspace=str(tmp_path / "w"), home=str(tmp_path / "h"), runs_as_root=True)
    inv = agent.invocation(Task(prompt, id="t", env={"EXTRA": "1"}), ctx)

    assert inv.argv == (
        "claude", "-p", "--output-format", "stream-json", "--verbose",
        "--model", "claude-opus-5-5", "--max-turns", "7", "--max-budget-usd", "0.25",
        "--permission-mode", "bypassPermissions",
        "--allowedTools=Read,Bash(git *)", "--disallowedTools=WebFetch", "--effort", "high",
    )
    assert inv.stdin == prompt.encode()
    assert not any(prompt in arg for arg in inv.argv)
    assert inv.env["ANTHROPIC_API_KEY"] == FAKE_KEY
    assert inv.env["CLAUDE_CODE_OAUTH_TOKEN"] == ""  # cannot override the chosen key
    assert inv.env["CLAUDE_CONFIG_DIR"] == f"{tmp_path / 'h'}/.claude"
    assert inv.env["DISABLE_AUTOUPDATER"] == "1"
    assert int(inv.env["CLAUDE_CODE_MAX_RETRIES"]) <= 2
    assert inv.env["IS_SANDBOX"] == "1"
    assert inv.env["EXTRA"] == "1"
    assert FAKE_KEY in inv.secrets
    assert FAKE_KEY in agent.secrets()


def test_is_sandbox_only_as_root_and_the_config_dir_is_per_task(tmp_path: Path) -> None:
    agent = ClaudeCode(env={"ANTHROPIC_API_KEY": FAKE_KEY})
    one = agent.invocation(Task("p", id="a"), AgentContext("/w1", "/sandbox/one/home"))
    two = agent.invocation(Task("p", id="b"), AgentContext("/w2", "/sandbox/two/home"))
    assert "IS_SANDBOX" not in one.env
    assert one.env["CLAUDE_CONFIG_DIR"] == "/sandbox/one/home/.claude"
    assert two.env["CLAUDE_CONFIG_DIR"] == "/sandbox/two/home/.claude"


def test_env_can_change_the_defaults_but_not_the_config_dir() -> None:
    agent = ClaudeCode(env={"ANTHROPIC_API_KEY": FAKE_KEY, "CLAUDE_CODE_MAX_RETRIES": "5",
                            "CLAUDE_CONFIG_DIR": "/shared", "DISABLE_AUTOUPDATER": "0"})
    inv = agent.invocation(Task("p", id="a"), AgentContext("/w", "/h"))
    assert inv.env["CLAUDE_CODE_MAX_RETRIES"] == "5"
    assert inv.env["CLAUDE_CONFIG_DIR"] == "/h/.claude"
    assert inv.env["DISABLE_AUTOUPDATER"] == "1"


def test_append_system_prompt_goes_in_a_file(tmp_path: Path) -> None:
    agent = ClaudeCode(append_system_prompt="--be careful\n", env={"ANTHROPIC_API_KEY": FAKE_KEY})
    inv = agent.invocation(Task("p", id="a"), AgentContext("/w", "/h"))
    i = inv.argv.index("--append-system-prompt-file")
    (file,) = inv.files
    assert file.path == inv.argv[i + 1] and file.path.startswith("/h/")
    assert file.content == b"--be careful\n"


def test_environment_credentials_are_found_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-token-abcdefgh")
    inv = ClaudeCode().invocation(Task("p", id="a"), AgentContext("/w", "/h"))
    assert inv.env["CLAUDE_CODE_OAUTH_TOKEN"] == "sk-ant-oat01-token-abcdefgh"
    assert inv.env["ANTHROPIC_API_KEY"] == ""
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://gateway.example:8080")
    inv = ClaudeCode().invocation(Task("p", id="a"), AgentContext("/w", "/h"))
    assert inv.env["ANTHROPIC_API_KEY"] == FAKE_KEY
    assert inv.env["ANTHROPIC_BASE_URL"] == "http://gateway.example:8080"
    assert set(ClaudeCode().secrets()) == {FAKE_KEY, "sk-ant-oat01-token-abcdefgh"}


def test_missing_credentials_fail_validation(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(CredentialsError) as caught:
        ClaudeCode().validate(on_host=False)
    assert isinstance(caught.value, ValidationError)
    assert "ANTHROPIC_API_KEY" in str(caught.value)
    with pytest.raises(CredentialsError, match=r"\.credentials\.json"):
        ClaudeCode(auth_method="oauth").validate(on_host=False)
    with pytest.raises(CredentialsError, match="CLAUDE_CODE_OAUTH_TOKEN"):
        ClaudeCode(auth_method="oauth_token", env={"ANTHROPIC_API_KEY": FAKE_KEY}).validate(
            on_host=False)
    assert ClaudeCode().secrets() == ()


def test_missing_executable_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    agent = ClaudeCode(executable="claude-not-installed-here", env={"ANTHROPIC_API_KEY": FAKE_KEY})
    with pytest.raises(AgentNotFoundError, match="npm install -g @anthropic-ai/claude-code") as e:
        agent.validate(on_host=True)
    assert FAKE_KEY not in str(e.value)
    agent.validate(on_host=False)  # a remote sandbox brings its own CLI


def test_an_executable_path_that_cannot_run_is_named_for_what_it_is(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("not a program\n")
    (tmp_path / "plain").chmod(0o644)
    expected = {
        tmp_path / "missing" / "claude": "does not exist",
        tmp_path: "is a folder, not the CLI",
        tmp_path / "plain": "is not an executable file",
    }
    for path, problem in expected.items():
        agent = ClaudeCode(executable=str(path), env={"ANTHROPIC_API_KEY": FAKE_KEY})
        with pytest.raises(AgentNotFoundError) as caught:
            agent.validate(on_host=True)
        message = str(caught.value)
        assert message.startswith(f"ClaudeCode(executable={str(path)!r}) {problem}; ")
        assert "PATH" not in message and "npm install -g @anthropic-ai/claude-code" in message


def test_bedrock_and_vertex_pass_only_their_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value-123456")
    monkeypatch.setenv("ANTHROPIC_VERTEX_PROJECT_ID", "proj-1")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/creds/gcp.json")
    monkeypatch.setenv("CLOUD_ML_REGION", "us-east5")

    monkeypatch.setenv("CLAUDE_CODE_USE_BEDROCK", "1")
    bedrock = ClaudeCode().invocation(Task("p", id="a"), AgentContext("/w", "/h"))
    assert bedrock.env["CLAUDE_CODE_USE_BEDROCK"] == "1"
    assert bedrock.env["AWS_SECRET_ACCESS_KEY"] == "aws-secret-value-123456"
    assert "aws-secret-value-123456" in bedrock.secrets
    assert "ANTHROPIC_VERTEX_PROJECT_ID" not in bedrock.env

    monkeypatch.delenv("CLAUDE_CODE_USE_BEDROCK")
    vertex = ClaudeCode(env={"CLAUDE_CODE_USE_VERTEX": "1"}).invocation(
        Task("p", id="a"), AgentContext("/w", "/h"))
    assert vertex.env["CLAUDE_CODE_USE_VERTEX"] == "1"
    assert vertex.env["ANTHROPIC_VERTEX_PROJECT_ID"] == "proj-1"
    assert vertex.env["CLOUD_ML_REGION"] == "us-east5"
    assert vertex.env["GOOGLE_APPLICATION_CREDENTIALS"] == "/creds/gcp.json"
    assert "AWS_SECRET_ACCESS_KEY" not in vertex.env


@pytest.mark.parametrize(
    "options",
    [{"max_turns": 0}, {"max_turns": 2.5}, {"max_turns": True}, {"max_budget_usd": -1},
     {"max_budget_usd": float("nan")}, {"permission_mode": "yolo"}, {"auth_method": "magic"},
     {"model": ""}, {"extra_args": "--effort high"}, {"allowed_tools": ["Read", ""]}],
)
def test_bad_options_are_validation_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ClaudeCode(**options)


def test_describe_has_no_secret_values() -> None:
    agent = ClaudeCode(model="m", env={"ANTHROPIC_API_KEY": FAKE_KEY})
    described = json.dumps(agent.describe())
    assert FAKE_KEY not in described and "ANTHROPIC_API_KEY" in described


def test_cloud_credentials_are_masked_without_being_named() -> None:
    from parallelcc_sdk.redaction import MASK, Redactor

    redactor = Redactor(include_environment=False)
    text = ("AKIAIOSFODNN7EXAMPLE aws_secret_access_key=wJalrXUtnFEMI/K7MDENG "
            '{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQ\\n-----END PRIVATE KEY-----\\n"}'
            " sk-ant-ort01-refresh-abcdefgh")
    masked = redactor.redact(text)
    for secret in ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI", "MIIEvQ", "refresh-abcdefgh"):
        assert secret not in masked
    assert masked.count(MASK) == 4


# -- the real CLI against the scripted API ---------------------------------------------------------

WRITE_AND_EDIT = [
    tool_use("Write", {"file_path": "src/util.py", "content": "def double(x):\n    return 2 * x\n"},
             "I'll add the helper first."),
    tool_use("Read", {"file_path": "src/app.py"}),
    tool_use("Edit", {"file_path": "src/app.py", "old_string": 'return "hello"',
                      "new_string": 'return "hello, world"'}),
    text("Added src/util.py and updated greet()."),
]


@needs_claude
@pytest.mark.claude
def test_model_writes_one_file_and_edits_another(scripted_api: ScriptedAnthropic, repo: Path,
                                                 tmp_path: Path) -> None:
    marker = scripted_api.script("write-edit", WRITE_AND_EDIT)
    run = run_direct(agent_for(scripted_api), f"Add a helper and greet the world. {marker}",
                     repo, tmp_path / "home")

    assert run.outcome.status == TaskStatus.COMPLETED, run.outcome.error
    assert run.exit_code == 0
    assert (repo / "src" / "util.py").read_text() == "def double(x):\n    return 2 * x\n"
    assert (repo / "src" / "app.py").read_text() == 'def greet():\n    return "hello, world"\n'
    assert len(scripted_api.requests_for("write-edit")) == 4
    # The numbers are the CLI's own, from its result line.
    result = run.result_event()
    m = run.outcome.metrics
    assert m.cost_usd == result["total_cost_usd"] and m.cost_usd > 0
    assert (m.input_tokens, m.output_tokens) == (400, 80)
    assert m.num_turns == result["num_turns"] == 4
    assert m.final_text == "Added src/util.py and updated greet()."
    assert m.session_id == result["session_id"]
    assert "turn 1 · Write src/util.py" in run.messages
    assert "turn 3 · Edit src/app.py" in run.messages
    assert run.progress[-1].cost_usd == result["total_cost_usd"]
    # The credentials reached the API, from the invocation's environment alone.
    request = scripted_api.requests_for("write-edit")[0]
    assert request.headers.get("x-api-key") == FAKE_KEY
    assert (tmp_path / "home" / ".claude").is_dir()


NASTY_PROMPT = (
    "--help\n  Fix \"double\" and 'single' quotes; run $(rm -rf ~) and `id`,\n"
    "and ${HOME} and $HOME.\n"
    "Back\\slash \\n \\\\ and a tab\there, % %s {0} && || ; | > < * ? ! # ~\n\n"
    "Ünïcødé: naïve café — 日本語 ✓ 🚀\r\nlast line without newline"
)


@needs_claude
@pytest.mark.claude
def test_the_api_receives_the_prompt_byte_for_byte(scripted_api: ScriptedAnthropic, repo: Path,
                                                   tmp_path: Path) -> None:
    marker = scripted_api.script("nasty", [text("ok")])
    prompt = f"{NASTY_PROMPT} {marker}"
    run = run_direct(agent_for(scripted_api), prompt, repo, tmp_path / "home")

    assert run.outcome.status == TaskStatus.COMPLETED, run.outcome.error
    (request,) = scripted_api.requests_for("nasty")
    assert first_user_text(request.json())[-1].encode() == prompt.encode()
    assert not (Path.home() / "x").exists()


@needs_claude
@pytest.mark.claude
def test_max_turns_fails_with_the_reason(scripted_api: ScriptedAnthropic, repo: Path,
                                         tmp_path: Path) -> None:
    marker = scripted_api.script("turns", [tool_use("Bash", {"command": "echo 1 >> n.txt"})] * 5)
    run = run_direct(agent_for(scripted_api, max_turns=2), f"loop {marker}", repo,
                     tmp_path / "home")

    assert run.outcome.status == TaskStatus.FAILED
    assert run.outcome.error == "max turns reached: Reached maximum number of turns (2)"
    assert not run.outcome.transient
    assert run.exit_code == 1
    assert (repo / "n.txt").read_text() == "1\n1\n"  # both allowed turns ran their tool
    assert run.outcome.metrics.cost_usd == run.result_event()["total_cost_usd"] > 0


@needs_claude
@pytest.mark.claude
def test_task_budget_exceeded_fails(scripted_api: ScriptedAnthropic, repo: Path,
                                    tmp_path: Path) -> None:
    expensive = tool_use("Bash", {"command": "touch never.txt"}, input_tokens=400_000,
                         output_tokens=20_000)
    marker = scripted_api.script("budget", [expensive, text("unreachable")])
    run = run_direct(agent_for(scripted_api, max_budget_usd=0.05), f"spend {marker}", repo,
                     tmp_path / "home")

    assert run.outcome.status == TaskStatus.FAILED
    assert run.outcome.error == "task budget exceeded: Reached maximum budget ($0.05)"
    assert not run.outcome.transient
    cost = run.outcome.metrics.cost_usd
    assert cost is not None and cost == run.result_event()["total_cost_usd"] > 0.05
    assert run.outcome.metrics.input_tokens == 400_000  # from modelUsage; usage is zeros here
    assert not (repo / "never.txt").exists()  # the CLI stops before running that tool


@needs_claude
@pytest.mark.claude
@pytest.mark.parametrize(
    ("turns", "status", "transient"),
    [
        ([error(401)], "401", False),
        ([error(400)] * 10, "400", False),
        ([error(529)], "529", True),
        ([error(429)], "429", True),
        ([error(500)], "500", True),
        ([drop()], None, True),
    ],
    ids=["401", "400", "529", "429", "500", "connection-drop"],
)
def test_api_errors_fail_and_are_transient_only_when_retrying_can_help(
    scripted_api: ScriptedAnthropic, repo: Path, tmp_path: Path,
    turns: list[Any], status: str | None, transient: bool,
) -> None:
    marker = scripted_api.script("err", turns)
    run = run_direct(agent_for(scripted_api), f"try {marker}", repo, tmp_path / "home")

    assert run.outcome.status == TaskStatus.FAILED
    assert run.outcome.transient is transient
    assert run.outcome.error is not None
    assert run.outcome.error.startswith(f"API error {status}" if status else "API error (")
    assert FAKE_KEY not in run.outcome.error
    assert run.exit_code == 1


@needs_claude
@pytest.mark.claude
def test_cli_retries_are_reported_and_can_recover(scripted_api: ScriptedAnthropic, repo: Path,
                                                  tmp_path: Path) -> None:
    marker = scripted_api.script("flaky", [error(529), error(529), text("made it")])
    # The default in-process retries (a couple, quick) ride out a short overload.
    run = run_direct(agent_for(scripted_api, env={"CLAUDE_CODE_MAX_RETRIES": "2"}),
                     f"go {marker}", repo, tmp_path / "home")

    assert run.outcome.status == TaskStatus.COMPLETED, run.outcome.error
    retries = [p for p in run.progress if "retry" in p.data]
    assert [p.message for p in retries] == ["API retry 1/2 after HTTP 529 (overloaded)",
                                            "API retry 2/2 after HTTP 529 (overloaded)"]
    assert run.outcome.metrics.final_text == "made it"


@needs_claude
@pytest.mark.claude
def test_cli_killed_mid_run_has_no_result(scripted_api: ScriptedAnthropic, repo: Path,
                                          tmp_path: Path) -> None:
    marker = scripted_api.script("killed", [tool_use("Bash", {"command": "echo a > a.txt"}),
                                            hang(30)])
    run = run_direct(agent_for(scripted_api), f"go {marker}", repo, tmp_path / "home",
                     kill_when=lambda: len(scripted_api.requests_for("killed")) == 2)

    assert run.outcome.status == TaskStatus.FAILED
    assert run.outcome.error is not None and run.outcome.error.startswith(NO_RESULT_ERROR)
    assert not run.outcome.transient
    assert run.exit_code != 0
    assert run.outcome.metrics.num_turns == 1
    assert (repo / "a.txt").exists()


@needs_claude
@pytest.mark.claude
def test_oauth_login_is_copied_into_the_private_config_dir(
    scripted_api: ScriptedAnthropic, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_home = tmp_path / "user"
    (user_home / ".claude").mkdir(parents=True)
    access, refresh = "sk-ant-oat01-ACCESS-abcdefgh123", "sk-ant-ort01-REFRESH-abcdefgh456"
    login = {"claudeAiOauth": {"accessToken": access, "refreshToken": refresh,
                               "expiresAt": 4102444800000, "subscriptionType": "max",
                               "scopes": ["user:inference", "user:profile"]}}
    (user_home / ".claude" / ".credentials.json").write_text(json.dumps(login))
    monkeypatch.setenv("HOME", str(user_home))
    # A key on the host must not take precedence over the chosen login.
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    marker = scripted_api.script("oauth", [text("hi")])
    agent = ClaudeCode(model=MODEL, auth_method="oauth",
                       env={"ANTHROPIC_BASE_URL": scripted_api.url})
    assert {access, refresh} <= set(agent.secrets())

    home = tmp_path / "sandbox-home"
    run = run_direct(agent, f"hi {marker}", repo, home)

    assert run.outcome.status == TaskStatus.COMPLETED, run.outcome.error
    (request,) = scripted_api.requests_for("oauth")
    assert request.headers.get("Authorization") == f"Bearer {access}"
    assert "x-api-key" not in {k.lower() for k in request.headers}
    copied = home / ".claude" / ".credentials.json"
    assert stat.S_IMODE(copied.stat().st_mode) == 0o600
    assert json.loads(copied.read_text())["claudeAiOauth"]["accessToken"] == access


@needs_claude
@pytest.mark.claude
def test_oauth_token_from_the_environment(scripted_api: ScriptedAnthropic, repo: Path,
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "sk-ant-oat01-setup-token-abcdefgh"
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", token)
    marker = scripted_api.script("token", [text("hi")])
    agent = ClaudeCode(model=MODEL, env={"ANTHROPIC_BASE_URL": scripted_api.url})
    run = run_direct(agent, f"hi {marker}", repo, tmp_path / "home")

    assert run.outcome.status == TaskStatus.COMPLETED, run.outcome.error
    (request,) = scripted_api.requests_for("token")
    assert request.headers.get("Authorization") == f"Bearer {token}"


# -- through the engine: pcc.run with the local backend ------------------------------------------

def run_tasks(api: ScriptedAnthropic, repo: Path, out: Path, tasks: list[str],
              agent_env: dict[str, str] | None = None, isolation: Any = "none",
              **options: Any) -> Any:
    import parallelcc_sdk as pcc

    agent = agent_for(api, env=agent_env or {})
    return pcc.run(tasks, repo=repo, agent=agent, backend=pcc.LocalBackend(isolation=isolation),
                   output_dir=out, progress=False, **options)


def result_lines(task_dir: Path) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in (task_dir / "events.jsonl").read_text().splitlines()]
    return [e for e in events if e.get("type") == "result"]


@needs_claude
@pytest.mark.claude
@pytest.mark.parametrize(
    "isolation", ["none", pytest.param("bubblewrap", marks=pytest.mark.bwrap)]
)
def test_run_collects_the_files_the_model_wrote_and_edited(
    scripted_api: ScriptedAnthropic, repo: Path, tmp_path: Path, isolation: str
) -> None:
    marker = scripted_api.script("e2e-write-edit", WRITE_AND_EDIT)
    result = run_tasks(scripted_api, repo, tmp_path / "out", [f"Add a helper. {marker}"],
                       isolation=isolation)

    (task,) = result.tasks
    assert task.status == TaskStatus.COMPLETED, task.error
    assert (task.files_changed, task.lines_added, task.lines_removed) == (2, 3, 1)
    task_dir = Path(task.output_path)
    patch = (task_dir / "changes.patch").read_text()
    assert "+++ b/src/util.py" in patch and "+def double(x):" in patch
    assert '-    return "hello"' in patch and '+    return "hello, world"' in patch
    changed = task_dir / "changed-files"
    assert (changed / "src" / "util.py").read_text() == "def double(x):\n    return 2 * x\n"
    assert (changed / "src" / "app.py").read_text().endswith('"hello, world"\n')
    (cli_result,) = result_lines(task_dir)
    assert task.cost_usd == cli_result["total_cost_usd"] > 0
    assert task.num_turns == 4 and (task.input_tokens, task.output_tokens) == (400, 80)
    assert result.df.loc[0, "attempts"] == 1
    # The user's repository is untouched: the work happened in the task's sandbox.
    assert not (repo / "src" / "util.py").exists()


@needs_claude
@pytest.mark.claude
def test_three_tasks_run_in_parallel_with_their_own_scripts(
    scripted_api: ScriptedAnthropic, repo: Path, tmp_path: Path
) -> None:
    prompts = []
    for name in ("alpha", "beta", "gamma"):
        marker = scripted_api.script(name, [
            # The first answer takes a while, so the three conversations must overlap.
            tool_use("Write", {"file_path": f"{name}.txt", "content": f"{name}\n"}, hang_s=1.5),
            text(f"wrote {name}"),
        ])
        prompts.append(f"Write {name}. {marker}")
    result = run_tasks(scripted_api, repo, tmp_path / "out", prompts, max_concurrent=3)

    assert [t.status for t in result.tasks] == [TaskStatus.COMPLETED] * 3
    for task, name in zip(result.tasks, ("alpha", "beta", "gamma"), strict=True):
        assert task.changed_paths == (f"{name}.txt",)
        assert task.final_text == f"wrote {name}"
        assert (Path(task.output_path) / "changed-files" / f"{name}.txt").read_text() == f"{name}\n"
    firsts = [scripted_api.requests_for(n)[0].received_at for n in ("alpha", "beta", "gamma")]
    assert max(firsts) - min(firsts) < 1.5  # all three were waiting on the model at once
    assert result.summary.time_saved_s > 0


@needs_claude
@pytest.mark.claude
def test_run_budget_stops_the_run(scripted_api: ScriptedAnthropic, repo: Path,
                                  tmp_path: Path) -> None:
    # 100k input tokens at the CLI's Sonnet list price: $0.30 a task.
    prompts = []
    for i in range(3):
        marker = scripted_api.script(f"pricey-{i}", [text("done", input_tokens=100_000,
                                                          output_tokens=0)])
        prompts.append(f"task {i} {marker}")
    result = run_tasks(scripted_api, repo, tmp_path / "out", prompts, max_concurrent=1,
                       budget_usd=0.5)

    first, second, third = result.tasks
    assert first.status == TaskStatus.COMPLETED
    # The second task's result line reports the cost that crosses the budget: the run stops, but
    # that task, whose work is done, is not cancelled while its process exits.
    assert second.status == TaskStatus.COMPLETED  # its work was done when its cost crossed
    assert second.cost_usd == pytest.approx(0.3, rel=0.01)
    assert third.status == TaskStatus.CANCELLED
    assert "budget" in (third.error or "")
    assert scripted_api.requests_for("pricey-2") == []
    assert not result.success


@needs_claude
@pytest.mark.claude
def test_overloaded_is_retried_and_then_succeeds(scripted_api: ScriptedAnthropic, repo: Path,
                                                 tmp_path: Path) -> None:
    marker = scripted_api.script("overloaded-once", [
        error(529), tool_use("Write", {"file_path": "ok.txt", "content": "ok\n"}), text("ok")])
    result = run_tasks(scripted_api, repo, tmp_path / "out", [f"go {marker}"], retries=1,
                       retry_backoff_s=0.05)

    (task,) = result.tasks
    assert task.status == TaskStatus.COMPLETED, task.error
    assert result.df.loc[0, "attempts"] == 2
    assert task.changed_paths == ("ok.txt",)
    assert len(result_lines(Path(task.output_path))) == 2  # both attempts' results are kept


@needs_claude
@pytest.mark.claude
def test_authentication_failure_is_not_retried(scripted_api: ScriptedAnthropic, repo: Path,
                                               tmp_path: Path) -> None:
    marker = scripted_api.script("bad-key", [error(401), text("never reached")])
    result = run_tasks(scripted_api, repo, tmp_path / "out", [f"go {marker}"], retries=2,
                       retry_backoff_s=0.05)

    (task,) = result.tasks
    assert task.status == TaskStatus.FAILED
    assert result.df.loc[0, "attempts"] == 1
    assert task.error is not None and task.error.startswith("API error 401")
    assert len(scripted_api.requests_for("bad-key")) == 1


@needs_claude
@pytest.mark.claude
def test_the_api_key_never_reaches_the_run_folder(scripted_api: ScriptedAnthropic, repo: Path,
                                                  tmp_path: Path) -> None:
    # Not shaped like an Anthropic key, so only the agent's own secret list can catch it.
    key = "plain-looking-credential-7f3a9c2b71e4"
    marker = scripted_api.script("leaky", [
        tool_use("Bash", {"command": "echo key=$ANTHROPIC_API_KEY"}),
        text(f"the key is {key}"),
    ])
    result = run_tasks(scripted_api, repo, tmp_path / "out", [f"leak it {marker}"],
                       agent_env={"ANTHROPIC_API_KEY": key})

    (task,) = result.tasks
    assert task.status == TaskStatus.COMPLETED, task.error
    assert scripted_api.requests_for("leaky")[0].headers.get("x-api-key") == key
    task_dir = Path(task.output_path)
    files = [p for p in Path(result.run_dir).rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"execution.log", "events.jsonl", "metadata.json", "run.json"} <= names
    for path in files:
        assert key not in path.read_text(errors="replace"), path
    # It was there to leak: the tool printed it and the model repeated it.
    assert "key=[REDACTED]" in (task_dir / "events.jsonl").read_text()
    assert "the key is [REDACTED]" in (task_dir / "execution.log").read_text()


@needs_claude
@pytest.mark.claude
def test_a_responder_model_makes_a_real_edit_per_task(repo: Path, tmp_path: Path) -> None:
    # The stand-in model the notebooks use: one Bash call that appends the task to the file the
    # prompt names. Checks the whole path a notebook relies on, with unmarked prompts.
    with ScriptedAnthropic(responder=note_taker) as api:
        result = run_tasks(api, repo, tmp_path / "out",
                           ["Document greet in src/app.py", "Write a usage section"])
    first, second = result.tasks
    assert (first.status, second.status) == (TaskStatus.COMPLETED, TaskStatus.COMPLETED)
    assert first.changed_paths == ("src/app.py",) and first.lines_added == 1
    assert second.changed_paths == ("NOTES.md",)
    copied = Path(first.output_path) / "changed-files" / "src" / "app.py"
    assert copied.read_text().endswith("# TODO: Document greet in src/app.py\n")
    assert first.final_text == "Done: I noted the task in the file it names."
    # What views show as the last output is the parser's reading, not a raw JSON line.
    assert (first.last_output or "").startswith("finished · $"), first.last_output
