"""``parallelcc show --conflicts``, ``show --task``, ``apply`` and ``push`` through the installed
console script, on a real repository and a run of four plain-command tasks: two that change
different files and two that change the same line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from support.cli import PARALLELCC, Cli, cli_env, kill_sandboxes_under, task_args
from support.e2e import diff_states, tree_state
from support.gitrepo import git, make_repo
from support.landing import NUMBERS, set_line

# Each prompt is the shell command the task runs (the agent evaluates its prompt).
EDITS = [
    "echo changed > a.txt",  # task-1
    "echo changed > b.txt",  # task-2
    set_line(5, "three"),  # task-3
    set_line(5, "four"),  # task-4: the same line as task-3
]


@pytest.fixture
def cli(tmp_path: Path, pcc_git_env: Path) -> Iterator[Cli]:
    files = {"a.txt": "a\n", "b.txt": "b\n", "numbers.txt": NUMBERS}
    repo = make_repo(tmp_path / "repo", files)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    yield Cli(repo=repo, output_dir=tmp_path / "results", env=cli_env(tmp), tmp=tmp)
    kill_sandboxes_under(tmp)


@pytest.fixture
def run_dir(cli: Cli) -> Path:
    done = cli.run(*cli.command_run('eval "$PARALLELCC_PROMPT"', "--quiet", *task_args(EDITS)))
    assert done.returncode == 0, done.stderr
    return cli.only_run_dir()


def test_show_conflicts_prints_the_map_as_text_and_as_json(cli: Cli, run_dir: Path) -> None:
    text = cli.run("show", str(run_dir), "--conflicts")

    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines() == [
        "3 of 4 tasks with changes apply cleanly together (in a trial merge).",
        "",
        "Suggested order (fewest conflicts first):",
        "  ✓ task-1  applies",
        "  ✓ task-2  applies",
        "  ✓ task-3  applies",
        "  ✗ task-4  does not apply: numbers.txt: both changed the same lines (with task-3)",
        "",
        "Files changed by more than one task:",
        "  task-3 & task-4  numbers.txt  same lines: line 5 / line 5",
    ]

    as_json = cli.run("show", str(run_dir), "--conflicts", "--json")

    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["runId"] == run_dir.name and document["trialMerged"] is True
    assert document["order"] == ["task-1", "task-2", "task-3", "task-4"]
    assert document["cleanSet"] == ["task-1", "task-2", "task-3"]
    assert document["conflicting"] == {
        "task-4": "numbers.txt: both changed the same lines (with task-3)"
    }
    assert document["matrix"]["task-3"] == {"task-1": 0, "task-2": 0, "task-3": 0, "task-4": 1}
    assert document["matrix"]["task-1"]["task-2"] == 0
    assert document["files"]["task-1"] == {"task-1": 1, "task-2": 0, "task-3": 0, "task-4": 0}
    assert document["overlaps"] == [{
        "task": "task-3", "other": "task-4", "path": "numbers.txt", "conflicts": 1,
        "detail": "same lines: line 5 / line 5",
    }]


def test_show_task_prints_its_log_and_diff(cli: Cli, run_dir: Path) -> None:
    shown = cli.run("show", str(run_dir), "--task", "task-3")

    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert out.startswith("task-3  ✓ completed")
    assert "\x1b" not in out  # off a terminal: plain text
    assert "Diff (changes.patch):" in out
    assert "--- a/numbers.txt\n+++ b/numbers.txt\n" in out
    assert "\n-5\n+three\n" in out

    refused = cli.run("show", str(run_dir), "--task", "task-9")
    assert refused.returncode == 2
    assert refused.stderr == (
        f"parallelcc show: run {run_dir.name} has no task 'task-9'; its tasks are task-1, "
        "task-2, task-3, task-4.\n"
    )
    both = cli.run("show", str(run_dir), "--task", "task-3", "--json")
    assert both.returncode == 2
    assert both.stderr == "parallelcc show: --json does not apply to --task; remove one of them.\n"


def test_show_task_on_a_terminal_is_coloured(cli: Cli, run_dir: Path) -> None:
    child = pexpect.spawn(str(PARALLELCC), ["show", str(run_dir), "--task", "task-4"],
                          cwd=str(cli.repo), env={**cli.env, "TERM": "xterm-256color"},
                          dimensions=(40, 120), timeout=30)
    child.expect(pexpect.EOF)
    child.close()
    out = child.before.decode()

    assert child.exitstatus == 0, out
    assert "\x1b[" in out
    assert "+four" in out and "numbers.txt" in out


def test_apply_puts_the_clean_set_on_a_new_branch(cli: Cli, run_dir: Path) -> None:
    head = git("rev-parse", "HEAD", cwd=cli.repo).strip()

    done = cli.run("apply", str(run_dir), "task-1", "task-2", "task-3", "--branch", "agents")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"Created branch agents in {cli.repo}: 3 commits on {head[:12]}"
    commits = git("log", "--format=%H %s", "agents", cwd=cli.repo).splitlines()
    assert [c.split(" ", 1)[1] for c in commits] == [
        f"parallelcc: task-3: {EDITS[2]}",
        f"parallelcc: task-2: {EDITS[1]}",
        f"parallelcc: task-1: {EDITS[0]}",
        "initial",
    ]
    assert lines[1:] == [
        f"  {commits[2 - i][:12]}  task-{i + 1}  {EDITS[i]}" for i in range(3)
    ]
    assert git("show", "agents:numbers.txt", cwd=cli.repo).splitlines()[4] == "three"
    assert git("show", "agents:a.txt", cwd=cli.repo) == "changed\n"
    # The checked-out branch and the files did not move.
    assert git("rev-parse", "HEAD", cwd=cli.repo).strip() == head
    assert git("status", "--porcelain", cwd=cli.repo) == ""


def test_apply_of_a_conflicting_pair_is_refused_and_changes_nothing(
    cli: Cli, run_dir: Path
) -> None:
    before = tree_state(cli.repo)

    refused = cli.run("apply", str(run_dir), "task-3", "task-4")

    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr == (
        "parallelcc apply: task 'task-4' does not apply in numbers.txt after task-3: both changed "
        f"the same lines; nothing was changed; `parallelcc show {run_dir} --conflicts` suggests "
        "an order that applies.\n"
    )
    # Work tree and .git byte for byte: no branch, object, reflog entry or index change.
    assert diff_states(before, tree_state(cli.repo)) == []


def test_apply_refuses_bad_usage_with_exit_code_2(cli: Cli, run_dir: Path) -> None:
    before = tree_state(cli.repo)

    unknown = cli.run("apply", str(run_dir), "task-1", "task-9")
    not_a_run = cli.run("apply", str(cli.repo), "task-1")
    exists = cli.run("apply", str(run_dir), "task-1", "--branch", "main")
    no_task = cli.run("apply", str(run_dir))

    assert [r.returncode for r in (unknown, not_a_run, exists, no_task)] == [2, 2, 2, 2]
    assert unknown.stderr.startswith(
        f"parallelcc apply: run {run_dir.name} has no task 'task-9'; its tasks are"
    )
    assert not_a_run.stderr.startswith("parallelcc apply: ")
    assert str(cli.repo) in not_a_run.stderr
    assert exists.stderr.startswith("parallelcc apply: branch 'main' already exists")
    assert "the following arguments are required: TASK" in no_task.stderr
    assert all(len(r.stderr.splitlines()) == 1 for r in (unknown, not_a_run, exists, no_task))
    assert diff_states(before, tree_state(cli.repo)) == []


def test_push_sends_a_task_and_an_applied_branch_to_a_bare_remote(
    cli: Cli, run_dir: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "remote.git"
    git("init", "--quiet", "--bare", str(remote), cwd=tmp_path)
    git("remote", "add", "origin", str(remote), cwd=cli.repo)
    task_branch = f"parallelcc/{run_dir.name}-task-2"

    one = cli.run("push", str(run_dir), "task-2")

    assert one.returncode == 0, one.stderr
    commit = git("rev-parse", f"refs/heads/{task_branch}", cwd=remote).strip()
    assert one.stdout == f"Pushed {task_branch} ({commit[:12]}) to origin as {task_branch}\n"
    assert git("log", "-1", "--format=%s", task_branch, cwd=remote) == (
        f"parallelcc: task-2: {EDITS[1]}\n"
    )

    assert cli.run("apply", str(run_dir), "task-1", "task-3", "--branch", "both").returncode == 0
    assert cli.run("apply", str(run_dir), "task-4", "--branch", "other").returncode == 0
    two = cli.run("push", str(run_dir), "both", "--branch", "feature/agents")

    assert two.returncode == 0, two.stderr
    assert git("rev-parse", "refs/heads/feature/agents", cwd=remote) == git(
        "rev-parse", "both", cwd=cli.repo
    )

    # Not a fast-forward of what the remote has: refused (never forced), exit code 1.
    rejected = cli.run("push", str(run_dir), "other", "--branch", "feature/agents")
    assert rejected.returncode == 1
    assert rejected.stderr.startswith("parallelcc push: could not push other to origin")
    # Bad usage: no such remote, neither a task nor a branch.
    no_remote = cli.run("push", str(run_dir), "both", "--remote", "upstream")
    neither = cli.run("push", str(run_dir), "nothing-here")
    assert (no_remote.returncode, neither.returncode) == (2, 2)
    assert "remote='upstream' is not a remote of" in no_remote.stderr
    assert "'nothing-here' is neither a task of run" in neither.stderr
