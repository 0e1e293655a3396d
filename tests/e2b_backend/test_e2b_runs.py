"""Whole runs on ``E2BBackend`` against the local E2B server: the same results as the local
backend, sandboxes made and ended as designed (from the server's request log), and faults."""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from pathlib import Path

import pytest
from e2b_server.server import E2BTestServer
from support.e2b_runs import BIG_FILE_BYTES, FAST_RATE, e2b_options, task_sandbox
from support.e2e import local_run_options, wait_for

import parallelcc_sdk as pcc

pytestmark = [pytest.mark.bwrap, pytest.mark.timeout(120)]

# Deterministic work that differs per task: edits, a new file from the prompt, deletions,
# a mode change and a rename, with a pause so that tasks overlap.
EDITS = pcc.Command(
    'n=${PARALLELCC_TASK_ID#task-}; printf "task %s\\n" "$n" >> a.txt && mkdir -p new && '
    'cat > "new/$PARALLELCC_TASK_ID.txt" && '
    'if [ $((n % 2)) = 0 ]; then rm b.txt; fi && '
    'if [ "$n" = 3 ]; then chmod +x c.txt && mv doc.md docs.md; fi && sleep 0.4 && echo done'
)
PROMPTS = [f"prompt {i}: it's \"quoted\" $(not run)\n" for i in range(1, 7)]


def outputs(task: pcc.TaskResult) -> dict[str, bytes]:
    """Every file a task left in its folder (patch and changed files), by relative path."""
    root = Path(str(task.output_path))
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and (p.name == "changes.patch" or "changed-files" in p.parts)
    }


def test_six_tasks_match_the_local_backend_with_three_sandboxes_at_most(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    local = pcc.run(PROMPTS, agent=EDITS, **local_run_options(repo, tmp_path / "local"))
    remote = pcc.run(PROMPTS, agent=EDITS, **e2b_options(repo, tmp_path / "e2b"))

    assert remote.success, [t.error for t in remote.tasks]
    for mine, theirs in zip(remote.tasks, local.tasks, strict=True):
        assert outputs(mine) == outputs(theirs), mine.task_id
        assert outputs(mine)["changes.patch"]
        for field in ("status", "files_changed", "lines_added", "lines_removed", "exit_code"):
            assert getattr(mine, field) == getattr(theirs, field), (mine.task_id, field)
        assert (mine.changed_paths, mine.deleted_paths) == (
            theirs.changed_paths,
            theirs.deleted_paths,
        )
        assert mine.last_output == "done"
    # The prompt reached the command byte for byte.
    assert outputs(remote.tasks[0])["changed-files/new/task-1.txt"] == PROMPTS[0].encode()

    # Never more than max_concurrent task sandboxes at once; every sandbox ended.
    assert server.max_alive(task_sandbox) == 3
    assert server.alive() == []
    log = server.log
    # The snapshot went up once, to the base sandbox; tasks are forks of it.
    archive_uploads = [r for r in log.entries("files.upload") if r.bytes_in >= BIG_FILE_BYTES]
    (base,) = [r for r in server.records() if not task_sandbox(r)]
    assert [r.sandbox_id for r in archive_uploads] == [base.sandbox_id]
    forks = [r for r in server.records() if r.parent_id == base.sandbox_id]
    assert sorted(t.sandbox_id for t in remote.tasks) == sorted(r.sandbox_id for r in forks)
    assert log.count("create") == 1
    # Per task: one upload (the prompt), two commands (the agent, the collection), one download,
    # one kill. No polling.
    for task in remote.tasks:
        ops = Counter(r.op for r in log.entries(sandbox_id=task.sandbox_id))
        assert ops == {
            "files.upload": 1,
            "process.Start": 2,
            "files.download": 1,
            "kill": 1,
        }, (task.task_id, ops)
        assert task.sandbox_info["prepared_by"] == "fork"
        assert task.sandbox_info["base_sandbox_id"] == base.sandbox_id


def test_every_task_is_charged_for_its_sandbox_seconds(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    result = pcc.run(PROMPTS[:2], agent=EDITS, **e2b_options(repo, tmp_path / "out"))
    df = result.df
    # The server's sandboxes have 2 vCPU and 512 MiB; E2B's published prices per second.
    per_second = 2 * 0.000014 + 0.5 * 0.0000045
    for task in result.tasks:
        assert task.sandbox_cost_usd is not None
        assert 0.4 * per_second < task.sandbox_cost_usd < 30 * per_second
        # A plain command reports no agent cost: the task's cost is its sandbox's.
        assert task.agent_cost_usd is None
        assert task.cost_usd == pytest.approx(task.sandbox_cost_usd)
    assert df["sandbox_cost_usd"].dtype == "float64" and df["agent_cost_usd"].isna().all()
    assert result.summary.total_cost_usd == pytest.approx(df["sandbox_cost_usd"].sum())


def test_upload_mode_sends_the_archive_once_to_each_sandbox(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    result = pcc.run(
        PROMPTS[:3], agent=EDITS, **e2b_options(repo, tmp_path / "out", prepare="upload")
    )
    assert result.success, [t.error for t in result.tasks]
    log = server.log
    archive_uploads = [r for r in log.entries("files.upload") if r.bytes_in >= BIG_FILE_BYTES]
    assert sorted(r.sandbox_id or "" for r in archive_uploads) == sorted(
        t.sandbox_id or "" for t in result.tasks
    )
    assert len({r.bytes_in for r in archive_uploads}) == 1, "one archive, built once"
    assert log.count("fork") == 0 and log.count("create") == 3
    assert all(t.sandbox_info["prepared_by"] == "upload" for t in result.tasks)
    assert server.max_alive() <= 3 and server.alive() == []


def test_a_fork_that_fails_falls_back_to_an_upload_for_that_task_only(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    server.faults.fail_fork_child(1, 500)
    result = pcc.run(PROMPTS[:3], agent=EDITS, **e2b_options(repo, tmp_path / "out"))

    assert result.success, [t.error for t in result.tasks]
    how = Counter(t.sandbox_info["prepared_by"] for t in result.tasks)
    assert how == {"fork": 2, "upload": 1}
    (fallback,) = [t for t in result.tasks if t.sandbox_info["prepared_by"] == "upload"]
    assert server.record(str(fallback.sandbox_id)).metadata["parallelcc_task_id"] == (
        fallback.task_id
    )
    archive_uploads = [
        r.sandbox_id for r in server.log.entries("files.upload") if r.bytes_in >= BIG_FILE_BYTES
    ]
    assert len(archive_uploads) == 2 and fallback.sandbox_id in archive_uploads
    # The first three tasks asked at the same moment: one fork call for all of them.
    assert server.log.count("fork") == 1
    assert server.alive() == []


def test_auto_uploads_for_the_rest_of_the_run_when_forks_are_refused(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    server.faults.refuse_fork()
    result = pcc.run(
        PROMPTS[:4],
        agent=EDITS,
        **e2b_options(repo, tmp_path / "out", prepare="auto", max_concurrent=2),
    )
    assert result.success, [t.error for t in result.tasks]
    assert all(t.sandbox_info["prepared_by"] == "upload" for t in result.tasks)
    # Refused once; after that no task asks again, and the base sandbox was ended early.
    assert server.log.count("fork") == 1
    (base,) = [r for r in server.records() if not task_sandbox(r)]
    last_task_end = max(r.ended_at or math.inf for r in server.records() if task_sandbox(r))
    assert base.ended_at is not None and base.ended_at < last_task_end
    assert server.alive() == []


def test_fail_fast_kills_the_running_sandboxes(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    agent = pcc.Command(
        'if [ "$PARALLELCC_PROMPT" = fail ]; then sleep 0.5; exit 3; fi; echo started; sleep 60'
    )
    result = pcc.run(
        ["wait", "fail", "wait", "wait"],
        agent=agent,
        **e2b_options(repo, tmp_path / "out", fail_fast=True),
    )
    statuses = [t.status for t in result.tasks]
    assert statuses == ["cancelled", "failed", "cancelled", "cancelled"]
    assert result.tasks[1].exit_code == 3
    assert server.alive() == []
    ended = [r.end_reason for r in server.records()]
    assert ended and set(ended) == {"killed"}, ended
    # The tasks that never started made no sandbox.
    assert server.log.count("fork") <= 1 and len(server.records()) == 4


def test_a_sandbox_killed_under_its_task_fails_that_task_only(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    killed: list[str] = []

    def listen(event: pcc.Event) -> None:
        task = event.task
        if (
            event.type is pcc.EventType.TASK_OUTPUT
            and event.message == "started"
            and task is not None
            and task.task_id == "task-2"
            and not killed
        ):
            killed.append(str(task.sandbox_id))
            # As if its VM died: from the server's side, not through the SDK.
            threading.Thread(target=server.kill_sandbox, args=(killed[0],)).start()

    agent = pcc.Command('echo started; sleep 1.5; printf "x\\n" >> a.txt')
    result = pcc.run(
        ["a", "b", "c"], agent=agent, listeners=[listen], **e2b_options(repo, tmp_path / "out")
    )
    one, two, three = result.tasks
    assert (one.status, three.status) == ("completed", "completed")
    assert two.status == "failed"
    assert "SandboxLostError" in str(two.error) and killed[0] in str(two.error)
    assert "stopped while running the command" in str(two.error)
    assert one.changed_paths == ("a.txt",) and two.files_changed is None
    assert server.alive() == []


@pytest.mark.parametrize("status", [429, 503])
def test_a_refused_create_is_retried(
    server: E2BTestServer, repo: Path, tmp_path: Path, status: int
) -> None:
    # Should-Retry: false, so the SDK does not retry by itself: the backend reports a transient
    # failure, and the run's retries make a new attempt.
    server.faults.fail("create", status, retry=False)
    result = pcc.run(
        ["a"],
        agent=EDITS,
        **e2b_options(
            repo, tmp_path / "out", prepare="upload", retries=2, retry_backoff_s=0.01
        ),
    )
    (task,) = result.tasks
    assert task.status == "completed", task.error
    assert task.attempts == 2
    assert [r.status for r in server.log.entries("create")] == [status, 201]


def test_the_sdk_retries_a_rate_limit_on_its_own(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    server.faults.fail("create", 429, times=2)
    result = pcc.run(["a"], agent=EDITS, **e2b_options(repo, tmp_path / "out", prepare="upload"))
    assert result.tasks[0].status == "completed" and result.tasks[0].attempts == 1
    assert [r.status for r in server.log.entries("create")] == [429, 429, 201]


def test_a_busy_service_does_not_stop_the_base_sandbox(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    server.faults.fail("create", 503, retry=False)
    result = pcc.run(["a"], agent=EDITS, **e2b_options(repo, tmp_path / "out"))
    assert result.success
    assert [r.status for r in server.log.entries("create")] == [503, 201]
    assert result.tasks[0].sandbox_info["prepared_by"] == "fork"


def test_a_rate_limited_fork_is_retried(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    server.faults.fail("fork", 429, retry=False)
    result = pcc.run(
        ["a"], agent=EDITS, **e2b_options(repo, tmp_path / "out", retries=1, retry_backoff_s=0.01)
    )
    (task,) = result.tasks
    assert (task.status, task.attempts) == ("completed", 2)
    assert task.sandbox_info["prepared_by"] == "fork"


@pytest.mark.parametrize("prepare", ["fork", "upload"])
def test_a_rejected_key_stops_the_run_before_any_task(
    server: E2BTestServer, repo: Path, tmp_path: Path, prepare: str
) -> None:
    backend = pcc.E2BBackend(
        api_key="not-the-key",
        prepare=prepare,  # type: ignore[arg-type]
        create_rate=FAST_RATE,
    )
    with pytest.raises(pcc.CredentialsError, match=r"E2B rejected the API key \(401"):
        pcc.run(["a", "b"], agent=EDITS, **e2b_options(repo, tmp_path / "out", backend=backend))
    assert server.log.count("process.Start") == 0 and server.records() == []
    (run_dir,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    run = pcc.load_run(run_dir)
    assert [t.status for t in run.tasks] == ["cancelled", "cancelled"]
    for task in run.tasks:
        assert "the run could not start: E2B rejected the API key" in str(task.error)
    assert "not-the-key" not in (run_dir / "run.json").read_text()


def test_a_task_longer_than_the_sandbox_lifetime_is_kept_alive(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    backend = pcc.E2BBackend(sandbox_timeout=2, create_rate=FAST_RATE)
    agent = pcc.Command("sleep 3; echo survived")
    result = pcc.run(["a"], agent=agent, **e2b_options(repo, tmp_path / "out", backend=backend))
    (task,) = result.tasks
    assert task.status == "completed" and task.last_output == "survived", task.error
    renewals = server.log.entries("set_timeout", sandbox_id=task.sandbox_id)
    assert len(renewals) >= 2 and all(r.status == 204 for r in renewals)
    assert server.record(str(task.sandbox_id)).end_reason == "killed"


def test_the_base_sandbox_is_in_the_journal(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    result = pcc.run(["a"], agent=EDITS, **e2b_options(repo, tmp_path / "out"))
    journal = json.loads((Path(result.run_dir) / "run.json").read_text())
    base_id = journal["backend_run"]["base_sandbox_id"]
    record = server.record(base_id)
    assert record.parent_id is None and record.end_reason == "killed"
    assert record.metadata["parallelcc_run_id"] == result.run_id
    assert journal["backend_run"]["archive_bytes"] > BIG_FILE_BYTES
    assert journal["config"]["backend"]["name"] == "e2b"


@pytest.mark.parametrize(("prepare", "op"), [("upload", "create"), ("fork", "fork")])
def test_cancelling_while_sandboxes_are_being_made_leaves_none(
    server: E2BTestServer, repo: Path, tmp_path: Path, prepare: str, op: str
) -> None:
    # The sandboxes come into being after the run gave up on them: they must still be ended.
    server.faults.delay(op, 1.0)
    handle = pcc.submit(
        ["a", "b", "c"], agent=EDITS, **e2b_options(repo, tmp_path / "out", prepare=prepare)
    )
    wait_for(lambda: server.log.count(op) >= 1, what=f"a {op} request on its way")
    handle.cancel()
    result = handle.result(timeout=60)
    assert [t.status for t in result.tasks] == ["cancelled"] * 3
    assert server.alive() == []
    assert len(server.records()) >= 2, "the delayed sandboxes were made"


def test_a_task_out_of_time_is_stopped_and_its_work_still_collected(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    agent = pcc.Command("printf 'x\\n' >> a.txt; echo started; sleep 60")
    result = pcc.run(
        ["a"], agent=agent, **e2b_options(repo, tmp_path / "out", task_timeout=1.5)
    )
    (task,) = result.tasks
    assert task.status == "timed_out" and task.error == "timed out after 1.5s"
    assert task.changed_paths == ("a.txt",)
    # The command was killed in its sandbox before the sandbox went.
    sandbox_id = str(task.sandbox_id)
    signals = server.log.entries("process.SendSignal", sandbox_id=sandbox_id)
    assert len(signals) == 1 and signals[0].status == 200
    assert server.record(sandbox_id).end_reason == "killed" and server.alive() == []
