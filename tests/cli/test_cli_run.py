"""``parallelcc run`` end to end through the installed console script: the --json document field
by field, task files, prompts arriving byte for byte, fail-fast, exit codes, ``python -m``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.cli import Cli, task_args

# Each task writes one file named after itself, so every task changes exactly one file.
WRITE_ONE_FILE = 'printf %s "$PARALLELCC_PROMPT" > "out-$PARALLELCC_TASK_ID.txt"; echo written'


def run_json(cli: Cli, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = cli.run(*args, "--json")
    try:
        document = json.loads(done.stdout)  # the whole of stdout is one JSON document
    except ValueError as exc:
        raise AssertionError(f"stdout is not one JSON document: {done.stdout!r}") from exc
    return done, document


def test_three_tasks_json_field_by_field(cli: Cli) -> None:
    prompts = ["add a README section", "fix the typo", "write a test"]
    done, doc = run_json(cli, *cli.command_run(WRITE_ONE_FILE, *task_args(prompts)))
    assert done.returncode == 0, done.stderr
    run_dir = cli.only_run_dir()

    assert list(doc)[:4] == ["success", "tasks", "summary", "reportPath"]
    assert doc["success"] is True
    assert doc["reportPath"] == str(run_dir / "summary-report.md")
    assert Path(doc["reportPath"]).is_file()
    assert doc["runDir"] == str(run_dir)

    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert [t["taskId"] for t in doc["tasks"]] == ["task-1", "task-2", "task-3"]
    for n, (task, prompt) in enumerate(zip(doc["tasks"], prompts, strict=True), start=1):
        record = on_disk["tasks"][n - 1]
        assert list(task)[:8] == [
            "taskId",
            "description",
            "status",
            "duration",
            "filesChanged",
            "outputPath",
            "error",
            "costEstimate",
        ]
        assert task["description"] == prompt
        assert task["status"] == "completed"
        assert isinstance(task["duration"], int) and task["duration"] > 0
        assert task["duration"] == round(record["duration_s"] * 1000)
        assert task["filesChanged"] == 1
        assert task["outputPath"] == str(run_dir / f"task-{n}")
        assert (run_dir / f"task-{n}" / "changed-files" / f"out-task-{n}.txt").read_text() == prompt
        assert task["error"] is None
        assert task["costEstimate"] is None  # a plain command reports no cost: null, never 0
        assert task["exitCode"] == 0

    summary = doc["summary"]
    assert list(summary)[:9] == [
        "totalDuration",
        "sequentialDuration",
        "timeSaved",
        "successCount",
        "failureCount",
        "cancelledCount",
        "totalFilesChanged",
        "totalCost",
        "batchId",
    ]
    assert summary["successCount"] == 3
    assert summary["failureCount"] == 0
    assert summary["cancelledCount"] == 0
    assert summary["totalFilesChanged"] == 3
    assert summary["totalCost"] is None
    assert summary["batchId"] == run_dir.name == on_disk["run_id"]
    # Each duration is rounded to the millisecond on its own.
    assert abs(summary["sequentialDuration"] - sum(t["duration"] for t in doc["tasks"])) <= 3
    assert summary["totalDuration"] == round(on_disk["summary"]["total_duration_s"] * 1000)
    expected_saved = max(0, summary["sequentialDuration"] - summary["totalDuration"])
    assert abs(summary["timeSaved"] - expected_saved) <= 1

    # Progress and the human summary went to stderr, with the run folder at start and end.
    assert done.stderr.count(str(run_dir)) >= 2
    assert "finished: 3 tasks" in done.stderr


def test_task_file_with_crlf_bom_comments_and_blank_lines(cli: Cli, tmp_path: Path) -> None:
    task_file = tmp_path / "tasks.txt"
    task_file.write_bytes(
        b"\xef\xbb\xbf# tasks for the sprint\r\n"
        b"first from the file\r\n"
        b"\r\n"
        b"   \r\n"
        b"  second from the file  \r\n"
        b"# a comment between\r\n"
        b"third from the file"  # no line end at the end of the file
    )
    args = cli.command_run(WRITE_ONE_FILE, "--task", "from the flag", "--task-file", str(task_file))
    done, doc = run_json(cli, *args)
    assert done.returncode == 0, done.stderr
    assert [(t["taskId"], t["description"]) for t in doc["tasks"]] == [
        ("task-1", "from the flag"),
        ("task-2", "first from the file"),
        ("task-3", "second from the file"),
        ("task-4", "third from the file"),
    ]
    run_dir = cli.only_run_dir()
    written = (run_dir / "task-2" / "changed-files" / "out-task-2.txt").read_bytes()
    assert written == b"first from the file"  # no BOM, no carriage return


def test_task_file_of_any_name_is_one_task_per_line(cli: Cli, tmp_path: Path) -> None:
    task_file = tmp_path / "my-tasks"
    task_file.write_text("one\ntwo\n")
    done, doc = run_json(cli, *cli.command_run("true", "--task-file", str(task_file)))
    assert done.returncode == 0, done.stderr
    assert [t["description"] for t in doc["tasks"]] == ["one", "two"]


def test_variadic_task_flag_and_multi_are_accepted(cli: Cli) -> None:
    done, doc = run_json(
        cli, *cli.command_run("true", "--multi", "--task", "a", "b", "--task", "c")
    )
    assert done.returncode == 0, done.stderr
    assert [t["description"] for t in doc["tasks"]] == ["a", "b", "c"]


PROMPTS = [
    "say \"hi\" and 'bye'",
    "$(touch pwned) `touch pwned2` ${HOME} $PATH ; rm -rf / && echo | cat",
    "line one\nline two\n\n  indented line three\n",
    "non-ASCII: héllo wörld — 日本語 🚀",
    "back\\slashes \\n \\t \\\\ and a % percent %s",
    "-starts with a dash",
]


def test_prompts_arrive_byte_for_byte(cli: Cli) -> None:
    command = 'printf %s "$PARALLELCC_PROMPT" > from-env.bin; cat > from-stdin.bin'
    # A value starting with a dash must be attached with '=' (as for any argparse option).
    args = [f"--task={prompt}" for prompt in PROMPTS]
    done, doc = run_json(cli, *cli.command_run(command, *args))
    assert done.returncode == 0, done.stderr
    run_dir = cli.only_run_dir()
    for n, prompt in enumerate(PROMPTS, start=1):
        files = run_dir / f"task-{n}" / "changed-files"
        assert (files / "from-env.bin").read_bytes() == prompt.encode(), n
        assert (files / "from-stdin.bin").read_bytes() == prompt.encode(), n
        assert doc["tasks"][n - 1]["description"] == prompt
        assert not (files / "pwned").exists() and not (files / "pwned2").exists()
    assert not (cli.repo / "pwned").exists()


def test_fail_fast_cancels_running_and_queued_tasks(cli: Cli) -> None:
    # task-1 fails at once; task-2 is running then (it would sleep 30 s); task-3 is queued.
    command = '[ "$PARALLELCC_TASK_ID" = task-1 ] && { echo broken >&2; exit 7; }; sleep 30'
    args = cli.command_run(
        command, *task_args(["a", "b", "c"]), "--max-concurrent", "2", "--fail-fast"
    )
    done, doc = run_json(cli, *args)
    assert done.returncode == 1
    statuses = {t["taskId"]: (t["status"], t["error"]) for t in doc["tasks"]}
    assert statuses["task-1"] == ("failed", "command exited with code 7: broken")
    assert statuses["task-2"] == ("cancelled", "fail-fast: task task-1 failed")
    assert statuses["task-3"] == ("cancelled", "fail-fast: task task-1 failed")
    assert doc["summary"]["failureCount"] == 1
    assert doc["summary"]["cancelledCount"] == 2
    assert doc["success"] is False
    # The running task was stopped, not waited for.
    assert doc["summary"]["totalDuration"] < 20_000
    processes, folders = cli.leftovers(cli.only_run_dir())
    assert processes == [] and folders == []


def test_exit_code_1_when_a_task_fails_and_the_summary_names_it(cli: Cli) -> None:
    command = (
        '[ "$PARALLELCC_TASK_ID" = task-2 ] && { echo "step one"; echo "bad thing" >&2; '
        "exit 3; }; true"
    )
    done = cli.run(*cli.command_run(command, *task_args(["a", "b"])))
    assert done.returncode == 1
    out = done.stdout
    assert "finished: 2 tasks" in out and "1 completed" in out and "1 failed" in out
    assert "task-2 failed" in out and "command exited with code 3: bad thing" in out
    assert "│ step one" in out and "│ [stderr] bad thing" in out  # the log's last lines
    assert "Cost" in out and "not reported" in out
    assert f"Report               {cli.only_run_dir() / 'summary-report.md'}" in out


def test_git_identity_reaches_the_task(cli: Cli) -> None:
    command = 'printf "%s <%s>" "$GIT_AUTHOR_NAME" "$GIT_COMMITTER_EMAIL" > who.txt'
    args = cli.command_run(
        command, "--task", "t", "--git-user", "Ann Lee", "--git-email", "ann@example.com"
    )
    done = cli.run(*args)
    assert done.returncode == 0, done.stderr
    who = cli.only_run_dir() / "task-1" / "changed-files" / "who.txt"
    assert who.read_text() == "Ann Lee <ann@example.com>"


def test_timeout_is_honoured(cli: Cli) -> None:
    done, doc = run_json(cli, *cli.command_run("sleep 30", "--task", "t", "--timeout", "0.5"))
    assert done.returncode == 1
    assert doc["tasks"][0]["status"] == "timed_out"
    assert doc["summary"]["failureCount"] == 1 and doc["summary"]["timedOutCount"] == 1


def test_python_dash_m_is_the_same_command(cli: Cli) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "parallelcc_sdk", *cli.command_run("true", "--task", "t"), "--json"],
        cwd=cli.repo,
        env=cli.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["success"] is True


def test_version(cli: Cli) -> None:
    done = cli.run("--version")
    assert done.returncode == 0 and done.stdout.startswith("parallelcc ")
