"""Bad input to ``parallelcc run``: exit code 2, one sentence on stderr naming the flag, nothing
started (no run folder). Each case is run through the installed console script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.cli import Cli


def assert_refused(cli: Cli, args: list[str], *expected: str) -> str:
    done = cli.run(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    message = done.stderr.strip()
    assert "\n" not in message, f"more than one line on stderr: {message!r}"
    assert message.startswith("parallelcc"), message
    for text in expected:
        assert text in message, message
    assert done.stdout == ""
    assert not cli.output_dir.exists(), "a run folder was made for a refused run"
    return message


@pytest.mark.parametrize("value", ["0", "-1", "2.5", "3abc", "nan", "inf", ""])
def test_max_concurrent_must_be_a_positive_whole_number(cli: Cli, value: str) -> None:
    args = cli.command_run("true", "--task", "t", f"--max-concurrent={value}")
    assert_refused(cli, args, "--max-concurrent must be a whole number of at least 1")


def test_missing_task_file(cli: Cli) -> None:
    args = cli.command_run("true", "--task-file", "nope.txt")
    assert_refused(cli, args, "task file 'nope.txt' does not exist")


def test_task_file_without_tasks(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "tasks.txt"
    path.write_text("# only a comment\n\n   \n")
    assert_refused(cli, cli.command_run("true", "--task-file", str(path)), "holds no tasks")


def test_empty_task_file(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "tasks"
    path.write_bytes(b"")
    assert_refused(cli, cli.command_run("true", "--task-file", str(path)), "holds no tasks")


def test_undecodable_task_file(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "tasks.txt"
    path.write_bytes(b"first task\nsecond \xff\xfe task\n")
    message = assert_refused(cli, cli.command_run("true", "--task-file", str(path)))
    assert "is not valid UTF-8 at line 2" in message


def test_task_file_that_is_a_folder(cli: Cli, tmp_path: Path) -> None:
    assert_refused(cli, cli.command_run("true", "--task-file", str(tmp_path)), "is a directory")


def test_no_tasks(cli: Cli) -> None:
    assert_refused(cli, cli.command_run("true"), "no tasks to run", "--task", "--task-file")


def test_empty_prompt(cli: Cli) -> None:
    assert_refused(cli, cli.command_run("true", "--task", "ok", "--task", "  "), "empty prompt")


def test_repo_that_is_not_a_git_repository(cli: Cli, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    args = cli.command_run("true", "--task", "t", "--repo", str(plain))
    assert_refused(cli, args, "not a git repository")


def test_repo_that_does_not_exist(cli: Cli, tmp_path: Path) -> None:
    args = cli.command_run("true", "--task", "t", "--repo", str(tmp_path / "missing"))
    assert_refused(cli, args, str(tmp_path / "missing"))


@pytest.mark.parametrize("value", ["0", "-2", "abc", "nan", "inf"])
def test_bad_budget(cli: Cli, value: str) -> None:
    args = ["run", "--task", "t", f"--budget={value}", "--output-dir", str(cli.output_dir)]
    assert_refused(cli, args, "--budget must be a finite number above 0")


@pytest.mark.parametrize("value", ["0", "-5", "soon", "nan", "inf"])
def test_bad_timeout(cli: Cli, value: str) -> None:
    args = cli.command_run("true", "--task", "t", f"--timeout={value}")
    assert_refused(cli, args, "--timeout must be a finite number above 0")


def test_bad_max_turns(cli: Cli) -> None:
    args = ["run", "--task", "t", "--max-turns", "1.5", "--output-dir", str(cli.output_dir)]
    assert_refused(cli, args, "--max-turns must be a whole number")


@pytest.mark.parametrize(
    ("flag", "value"), [("--backend", "docker"), ("--agent", "codex"), ("--isolation", "vm")]
)
def test_unknown_choices(cli: Cli, flag: str, value: str) -> None:
    args = cli.command_run("true", "--task", "t")
    args = [a for a in args if a not in ("--isolation", "none")] + [flag, value]
    assert_refused(cli, args, f"invalid choice: '{value}'", "--help")


def test_unknown_flag(cli: Cli) -> None:
    assert_refused(cli, cli.command_run("true", "--task", "t", "--paralel"), "--paralel")


def test_missing_claude_credentials(cli: Cli) -> None:
    # No ANTHROPIC_*/CLAUDE_* variable (the fixture drops them) and a HOME without a login.
    args = ["run", "--task", "t", "--output-dir", str(cli.output_dir)]
    message = assert_refused(cli, args)
    assert "ANTHROPIC_API_KEY" in message


def test_e2b_without_its_requirements(cli: Cli) -> None:
    # Without E2B_API_KEY (or, before the E2B backend exists, at all): refused before starting.
    args = [
        "run",
        "--task",
        "t",
        "--backend",
        "e2b",
        "--agent",
        "command",
        "--command",
        "true",
        "--output-dir",
        str(cli.output_dir),
    ]
    assert_refused(cli, args, "e2b")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--model", "sonnet"], "--model only applies to --agent claude"),
        (["--max-turns", "3"], "--max-turns only applies to --agent claude"),
        (["--budget", "1"], "--budget only applies to --agent claude"),
        (["--auth-method", "oauth"], "--auth-method only applies to --agent claude"),
        (["--template", "base"], "--template only applies to --backend e2b"),
        (["--ssh-key", "id_ed25519"], "--ssh-key only applies to --backend e2b"),
        (["--npm-token", "tok"], "--npm-token only applies to --backend e2b"),
        (["--npm-registry", "https://r.example"], "--npm-registry only applies to --backend e2b"),
        (["--git-user", "Ann"], "--git-user and --git-email go together"),
        (["--git-email", "ann@example.com"], "--git-user and --git-email go together"),
        (["--confirm-ssh-key"], "--confirm-ssh-key only applies with --ssh-key"),
        (["--git-live"], "--git-live is a parallel-cc option that parallelcc does not have"),
        (["--branch", "auto"], "--branch is a parallel-cc option"),
        (["--dry-run"], "--dry-run is a parallel-cc option"),
        (["--prompt", "x"], "pass the prompt with --task"),
        (["--use-template", "node"], "--use-template is a parallel-cc option"),
    ],
)
def test_options_that_do_not_apply_are_errors(cli: Cli, extra: list[str], expected: str) -> None:
    assert_refused(cli, [*cli.command_run("true", "--task", "t"), *extra], expected)


def test_command_only_applies_to_the_command_agent(cli: Cli) -> None:
    args = ["run", "--task", "t", "--command", "true", "--output-dir", str(cli.output_dir)]
    assert_refused(cli, args, "--command only applies to --agent command")


def test_command_agent_needs_a_command(cli: Cli) -> None:
    args = ["run", "--task", "t", "--agent", "command", "--output-dir", str(cli.output_dir)]
    assert_refused(cli, args, "--agent command needs --command")


def test_isolation_does_not_apply_to_e2b(cli: Cli) -> None:
    args = [*cli.command_run("true", "--task", "t"), "--backend", "e2b"]
    assert_refused(cli, args, "--isolation only applies to --backend local")


def test_output_dir_that_is_a_file(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    args = cli.command_run("true", "--task", "t")
    args[args.index("--output-dir") + 1] = str(blocker)
    done = cli.run(*args)
    assert done.returncode == 2 and "is a file" in done.stderr
    assert blocker.read_text() == ""


def test_json_mode_also_reports_the_error_as_json(cli: Cli) -> None:
    done = cli.run(*cli.command_run("true", "--task", "t", "--max-concurrent", "nan", "--json"))
    assert done.returncode == 2
    assert json.loads(done.stdout) == {
        "success": False,
        "error": done.stderr.strip().split(": ", 1)[1],
    }
    assert not cli.output_dir.exists()
