"""``parallelcc retry`` and ``parallelcc resume`` through the installed console script."""

from __future__ import annotations

import json

from support.cli import Cli, task_args

import parallelcc_sdk as pcc


def test_retry_reruns_the_failed_task_and_resume_refuses_a_finished_run(cli: Cli) -> None:
    flag = cli.tmp / "fixed"
    agent = f'[ "$PARALLELCC_TASK_ID" = task-2 ] && [ ! -e {flag} ] && exit 1; echo ok > out.txt'
    first = cli.run(*cli.command_run(agent, *task_args(["one", "two"])))
    assert first.returncode == 1, first.stderr
    run_dir = cli.only_run_dir()
    flag.touch()

    done = cli.run("retry", str(run_dir), "--status", "failed", "--json", "--quiet")

    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["success"] is True
    assert [t["status"] for t in document["tasks"]] == ["completed", "completed"]
    assert [t.attempts for t in pcc.load_run(run_dir).tasks] == [1, 2]

    refused = cli.run("resume", str(run_dir))
    assert refused.returncode == 2
    assert "finished, so there is nothing to resume" in refused.stderr
