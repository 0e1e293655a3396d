"""Resume and retry on the local backend: a real run process killed with SIGKILL, real tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.e2e import local_run_options, wait_for

import parallelcc_sdk as pcc
from parallelcc_sdk import RunStatus, TaskStatus

PACKAGE_ROOT = Path(pcc.__file__).resolve().parent.parent
TASKS = 8
QUICK = 4  # tasks 1-4 finish at once; later ones hang until the flag file exists

_RUN_SCRIPT = textwrap.dedent(
    """
    import sys

    import parallelcc_sdk as pcc

    repo, out, agent = sys.argv[1], sys.argv[2], sys.argv[3]
    pcc.run(
        [f"task number {i}" for i in range(1, 9)],
        repo=repo,
        output_dir=out,
        agent=pcc.Command(agent),
        backend=pcc.LocalBackend(isolation="none"),
        max_concurrent=2,
        progress="off",
    )
    """
)


def agent_command(flag: Path) -> str:
    return (
        'echo "$PARALLELCC_TASK_ID" > done.txt; n=${PARALLELCC_TASK_ID#task-}; '
        f'if [ "$n" -gt {QUICK} ] && [ ! -e {flag} ]; then sleep 60; fi; echo finished'
    )


def metadata_files(run_dir: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in run_dir.glob("task-*/metadata.json")}


@pytest.mark.timeout(120)
def test_resume_after_sigkill_keeps_finished_tasks_and_runs_the_rest(
    pcc_repo: Path, tmp_path: Path
) -> None:
    script = tmp_path / "run.py"
    script.write_text(_RUN_SCRIPT)
    out = tmp_path / "results"
    flag = tmp_path / "go-on"
    path = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    proc = subprocess.Popen(
        [sys.executable, str(script), str(pcc_repo), str(out), agent_command(flag)],
        env={**os.environ, "PYTHONPATH": path},
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(
            lambda: (
                (
                    len(list(out.glob("*/task-*/metadata.json"))) >= QUICK
                    and len(list(out.glob("*/task-*/execution.log"))) >= QUICK + 2
                )
                or proc.poll() is not None
            ),
            timeout=60,
            what="the quick tasks to finish and two slow ones to start",
        )
        assert proc.poll() is None, proc.communicate()[1]
        (run_dir,) = out.glob("2*")
        with pytest.raises(pcc.ValidationError, match="is still running"):
            pcc.resume(run_dir, progress="off")
        proc.kill()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    before = metadata_files(run_dir)
    created_at = json.loads((run_dir / "run.json").read_text())["created_at"]
    assert sorted(before) == [f"task-{i}" for i in range(1, QUICK + 1)]
    flag.touch()

    result = pcc.resume(run_dir, progress="off")

    assert result.state is RunStatus.FINISHED and result.success, result.df[["task_id", "error"]]
    assert [t.task_id for t in result.tasks] == [f"task-{i}" for i in range(1, TASKS + 1)]
    after = metadata_files(run_dir)
    for task_id, data in before.items():
        assert after[task_id] == data  # finished tasks untouched
    # The two that were running when the process died ran a second attempt, in the same
    # folder; the ones that had not started ran their first.
    attempts = {t.task_id: t.attempts for t in result.tasks}
    assert attempts == {
        **{f"task-{i}": 1 for i in range(1, QUICK + 1)},
        "task-5": 2,
        "task-6": 2,
        "task-7": 1,
        "task-8": 1,
    }
    log = (run_dir / "task-5" / "execution.log").read_text()
    assert "[parallelcc] attempt 2" in log and log.rstrip().endswith("finished")
    assert "+task-5" in (run_dir / "task-5" / "changes.patch").read_text()
    document = json.loads((run_dir / "run.json").read_text())
    assert document["state"] == "finished" and document["created_at"] == created_at
    assert [r["how"] for r in document["resumed"]] == ["resume"]
    assert document["process"]["pid"] == os.getpid()
    assert not (run_dir / "journal.jsonl").exists()
    loaded = pcc.load_run(run_dir)
    assert loaded.counts["completed"] == TASKS
    # The time the run lay dead is not in its wall clock.
    assert loaded.summary.total_duration_s < 60

    with pytest.raises(pcc.ValidationError, match="finished, so there is nothing to resume"):
        pcc.resume(run_dir, progress="off")


def test_retry_runs_only_the_failed_tasks_again(notes_repo: Path, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    agent = pcc.Command(
        f'echo "try $PARALLELCC_TASK_ID" >> notes.txt; echo attempt-output; '
        f'case "$PARALLELCC_TASK_ID" in task-2|task-4) [ -e {flag} ] || exit 1;; esac'
    )
    first = pcc.run(
        ["one", "two", "three", "four"],
        **local_run_options(notes_repo, tmp_path / "results", agent=agent),
    )
    assert [t.status.value for t in first.tasks] == ["completed", "failed"] * 2
    kept = metadata_files(first.run_dir)
    flag.touch()

    result = pcc.retry(first.run_dir, progress="off")

    assert result.success and result.run_dir == first.run_dir
    assert {t.task_id: t.attempts for t in result.tasks} == {
        "task-1": 1,
        "task-2": 2,
        "task-3": 1,
        "task-4": 2,
    }
    after = metadata_files(first.run_dir)
    assert after["task-1"] == kept["task-1"] and after["task-3"] == kept["task-3"]
    # The failed attempt's output is still in the log; the outputs are the new attempt's.
    log = (first.run_dir / "task-2" / "execution.log").read_text()
    assert log.count("attempt-output") == 2 and "[parallelcc] attempt 2" in log
    assert result["task-2"].error is None and result["task-2"].files_changed == 1
    summary = json.loads((first.run_dir / "summary.json").read_text())
    assert summary["summary"]["success_count"] == 4

    with pytest.raises(pcc.ValidationError, match="no task to retry"):
        pcc.retry(first.run_dir, progress="off")
    with pytest.raises(pcc.ValidationError, match="unknown status"):
        pcc.retry(first.run_dir, status=["broken"], progress="off")
    again = pcc.retry(first.run_dir, task_ids=["task-1"], progress="off")
    assert again["task-1"].attempts == 2 and again["task-1"].status is TaskStatus.COMPLETED
