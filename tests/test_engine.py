"""The scheduler end to end: real git repositories, real subprocesses, no mocks.

Concurrency limits, FIFO order, fail-fast, cancellation, timeouts, events, change collection,
secret redaction and the user's repository left untouched, observed from the tasks' own side
(timestamps and pids they record outside their workspace) as well as from the results.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from support.e2e import (
    backend_for,
    diff_states,
    local_run_options,
    marked_processes,
    pid_alive,
    read_pids,
    tree_state,
    wait_for,
    wait_until_gone,
)
from support.gitrepo import git, make_repo, write

import parallelcc_sdk as pcc
from parallelcc_sdk import Event, EventType, Phase, Task, TaskStatus

# -- helpers ----------------------------------------------------------------------------------


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals open at one moment (an end at t closes before a start)."""
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = peak = 0
    for _, step in points:
        running += step
        peak = max(peak, running)
    return peak


def ts(value: datetime | None) -> float:
    assert value is not None
    return value.timestamp()


def sleeper(pids: Path, seconds: int = 30) -> pcc.Command:
    """A task that records its shell's and its sleep's pids in ``pids``, then sleeps."""
    return pcc.Command(
        f'echo "$PARALLELCC_TASK_ID $$" >> "$PIDS"; sleep {seconds} & '
        'echo "$PARALLELCC_TASK_ID $!" >> "$PIDS"; wait',
        env={"PIDS": str(pids)},
    )


def assert_all_gone(pids: list[int], sandbox_ids: list[str]) -> None:
    assert pids, "the tasks recorded no pids: the test did not observe any process"
    assert wait_until_gone(pids) == [], "processes of the run are still alive"
    assert marked_processes(sandbox_ids) == [], "a process with a sandbox marker is still alive"


# -- concurrency and order --------------------------------------------------------------------


def test_concurrency_bound_is_never_exceeded_and_order_is_fifo(
    pcc_opts: dict[str, Any], tmp_path: Path
) -> None:
    timeline = tmp_path / "timeline.log"  # outside every workspace: isolation is off
    agent = pcc.Command(
        'echo "start $PARALLELCC_TASK_ID $(date +%s.%N)" >> "$TIMELINE"; sleep 0.3; '
        'echo "end $PARALLELCC_TASK_ID $(date +%s.%N)" >> "$TIMELINE"',
        env={"TIMELINE": str(timeline)},
    )
    ids = [f"t{i:02d}" for i in range(12)]
    started: list[str] = []
    # When the engine says each task's command ran (its slot), and how tasks were prepared.
    ran: dict[str, dict[Phase, float]] = {i: {} for i in ids}
    preparing_status: dict[str, TaskStatus] = {}

    def on_event(event: Event) -> None:
        if event.type is EventType.TASK_STARTED:
            assert event.task_id is not None
            started.append(event.task_id)
        if event.type is EventType.TASK_PHASE and event.task_id and event.phase is not None:
            ran[event.task_id].setdefault(event.phase, event.time.timestamp())
            if event.phase is Phase.PREPARING and event.task is not None:
                preparing_status[event.task_id] = event.task.status

    result = pcc.run(
        [Task(f"prompt {i}", id=i) for i in ids],
        agent=agent,
        max_concurrent=3,
        listeners=[on_event],
        **pcc_opts,
    )
    assert result.success, result.df[["task_id", "status", "error"]]

    # The tasks' own clocks.
    own: dict[str, dict[str, float]] = {i: {} for i in ids}
    for line in timeline.read_text().splitlines():
        kind, task_id, stamp = line.split()
        own[task_id][kind] = float(stamp)
    assert all(set(v) == {"start", "end"} for v in own.values()), own
    own_intervals = [(own[i]["start"], own[i]["end"]) for i in ids]
    # Never more than 3 at once; at least 2 shows the tasks really ran side by side (3 is usual,
    # but a loaded machine may stagger the workspaces' preparation).
    assert 2 <= max_overlap(own_intervals) <= 3

    # The engine's phases: at most 3 commands in the "running" phase at once (preparing before
    # it, collecting and closing after it, are outside the limit).
    records = {t.task_id: t for t in result.tasks}
    engine_intervals = [(ran[i][Phase.RUNNING], ran[i][Phase.COLLECTING]) for i in ids]
    assert max_overlap(engine_intervals) == 3
    # The next tasks' sandboxes are prepared while the first ones run, and they are pending then.
    assert all(ran[i][Phase.PREPARING] < own["t00"]["end"] for i in ids[3:6])
    assert set(preparing_status.values()) == {TaskStatus.PENDING}

    # FIFO: tasks start in input order...
    assert started == ids
    starts = [ts(records[i].started_at) for i in ids]
    assert starts == sorted(starts)
    # ...and, seen from the tasks, task k only starts once k-2 of the tasks before it have ended
    # (all k before it started first, at most 2 of them may still run).
    for k, task_id in enumerate(ids):
        ended_before = sum(1 for j in ids[:k] if own[j]["end"] <= own[task_id]["start"])
        assert ended_before >= k - 2, f"{task_id} started before enough earlier tasks ended"
        later_started_first = [j for j in ids[k + 1 :] if own[j]["start"] < own[task_id]["end"]]
        assert len(later_started_first) <= 2


# -- fail-fast --------------------------------------------------------------------------------


def test_fail_fast_cancels_running_and_queued_tasks_and_leaves_no_process(
    pcc_opts: dict[str, Any], tmp_path: Path
) -> None:
    pids = tmp_path / "pids.txt"
    # "boom" waits until the three sleepers have recorded their pids, then fails.
    agent = pcc.Command(
        'if [ "$PARALLELCC_TASK_ID" = boom ]; then '
        '  i=0; while [ "$(cat "$PIDS" 2>/dev/null | wc -l)" -lt 6 ] && [ $i -lt 400 ]; do '
        "    sleep 0.025; i=$((i+1)); done; "
        "  echo 'it broke' >&2; exit 3; "
        "fi; "
        'echo "$PARALLELCC_TASK_ID $$" >> "$PIDS"; sleep 30 & '
        'echo "$PARALLELCC_TASK_ID $!" >> "$PIDS"; wait',
        env={"PIDS": str(pids)},
    )
    ids = ["slow-1", "boom", "slow-2", "slow-3", "queued-1", "queued-2", "queued-3", "queued-4"]
    events: list[Event] = []
    t0 = time.monotonic()
    result = pcc.run(
        [Task("x", id=i) for i in ids],
        agent=agent,
        max_concurrent=4,
        fail_fast=True,
        listeners=[events.append],
        **pcc_opts,
    )
    elapsed = time.monotonic() - t0
    assert elapsed < 15, f"fail-fast took {elapsed:.1f}s; the sleepers were not stopped"

    records = {t.task_id: t for t in result.tasks}
    assert records["boom"].status is TaskStatus.FAILED
    assert records["boom"].exit_code == 3
    for task_id in ids:
        if task_id == "boom":
            continue
        record = records[task_id]
        assert record.status is TaskStatus.CANCELLED, (task_id, record.status, record.error)
        assert record.error is not None and "fail-fast" in record.error, record.error
    for task_id in ("queued-1", "queued-2", "queued-3", "queued-4"):
        assert records[task_id].started_at is None

    # Nothing started after the failure.
    boom_done = next(
        i for i, e in enumerate(events)
        if e.type is EventType.TASK_FINISHED and e.task_id == "boom"
    )
    assert not [e for e in events[boom_done:] if e.type is EventType.TASK_STARTED]
    recorded = pids.read_text().split()
    assert {recorded[i] for i in range(0, len(recorded), 2)} == {"slow-1", "slow-2", "slow-3"}

    assert len([r for r in result.tasks if r.started_at is not None]) == 4
    # The queued tasks' sandboxes may have been prepared ahead: closed all the same.
    sandbox_ids = [r.sandbox_id for r in result.tasks if r.sandbox_id]
    assert len(sandbox_ids) >= 4
    assert_all_gone(read_pids(pids), sandbox_ids)

    summary = result.summary
    assert (summary.failure_count, summary.cancelled_count) == (1, 7)
    assert not result.success


# -- cancellation -----------------------------------------------------------------------------


def test_cancel_whole_run(pcc_opts: dict[str, Any], tmp_path: Path) -> None:
    pids = tmp_path / "pids.txt"
    handle = pcc.submit(
        ["a", "b", "c", "d"], agent=sleeper(pids), max_concurrent=2, **pcc_opts
    )
    try:
        wait_for(lambda: len(read_pids(pids)) == 4, what="two running tasks")
        assert handle.counts["running"] == 2 and handle.counts["pending"] == 2
        t0 = time.monotonic()
        handle.cancel()
        result = handle.result(timeout=20)
    finally:
        handle.cancel()
    assert time.monotonic() - t0 < 10
    assert [t.status for t in result.tasks] == [TaskStatus.CANCELLED] * 4
    assert all(t.error and "cancelled" in t.error for t in result.tasks)
    assert [t.started_at is not None for t in result.tasks] == [True, True, False, False]
    assert handle.status == "cancelled"
    assert_all_gone(read_pids(pids), [t.sandbox_id for t in result.tasks if t.sandbox_id])


def test_cancel_one_queued_and_one_running_task(pcc_opts: dict[str, Any], tmp_path: Path) -> None:
    pids = tmp_path / "pids.txt"
    agent = pcc.Command(
        'if [ "$PARALLELCC_TASK_ID" = after ]; then echo finished > after.txt; exit 0; fi; '
        'echo "$PARALLELCC_TASK_ID $$" >> "$PIDS"; sleep 30 & '
        'echo "$PARALLELCC_TASK_ID $!" >> "$PIDS"; wait',
        env={"PIDS": str(pids)},
    )
    handle = pcc.submit(
        [Task("x", id="long"), Task("x", id="queued"), Task("x", id="after")],
        agent=agent,
        max_concurrent=1,
        **pcc_opts,
    )
    try:
        wait_for(lambda: len(read_pids(pids)) == 2, what="the long task to run")
        with pytest.raises(KeyError):
            handle.cancel("no-such-task")
        handle.cancel("queued")
        wait_for(lambda: handle.tasks[1].status is TaskStatus.CANCELLED, what="queued cancelled")
        assert handle.tasks[0].status is TaskStatus.RUNNING
        handle.cancel("long")
        result = handle.result(timeout=20)
    finally:
        handle.cancel()
    long, queued, after = result.tasks
    assert long.status is TaskStatus.CANCELLED and long.error == "cancelled by the user"
    assert long.started_at is not None and long.exit_code is None
    assert queued.status is TaskStatus.CANCELLED and queued.error == "cancelled by the user"
    # Its sandbox may have been prepared ahead; its command never ran.
    assert queued.started_at is None and queued.exit_code is None
    assert not queued.sandbox_info or not Path(str(queued.sandbox_info["root"])).exists()
    assert after.status is TaskStatus.COMPLETED and after.files_changed == 1
    assert handle.status == "finished"  # the run itself was not stopped
    assert not result.success
    assert_all_gone(read_pids(pids), [long.sandbox_id or ""])


# -- timeouts ---------------------------------------------------------------------------------


def test_task_timeout_marks_timed_out_and_kills_the_process(
    pcc_opts: dict[str, Any], tmp_path: Path
) -> None:
    pids = tmp_path / "pids.txt"
    t0 = time.monotonic()
    result = pcc.run(["a", "b"], agent=sleeper(pids), task_timeout=0.5, **pcc_opts)
    assert time.monotonic() - t0 < 10
    for record in result.tasks:
        assert record.status is TaskStatus.TIMED_OUT
        assert record.error == "timed out after 0.5s"
        assert record.duration_s is not None and record.duration_s < 5
    assert result.summary.timed_out_count == 2
    assert_all_gone(read_pids(pids), [t.sandbox_id or "" for t in result.tasks])


def test_a_task_timeout_overrides_the_run_timeout(pcc_opts: dict[str, Any]) -> None:
    agent = pcc.Command('sleep "$NAP"')
    tasks = [
        Task("x", id="longer-limit", env={"NAP": "1.2"}, timeout=10),
        Task("x", id="shorter-limit", env={"NAP": "30"}, timeout=0.3),
        Task("x", id="run-limit", env={"NAP": "30"}),
    ]
    result = pcc.run(tasks, agent=agent, task_timeout=0.7, max_concurrent=3, **pcc_opts)
    records = {t.task_id: t for t in result.tasks}
    assert records["longer-limit"].status is TaskStatus.COMPLETED
    assert records["shorter-limit"].status is TaskStatus.TIMED_OUT
    assert records["shorter-limit"].error == "timed out after 0.3s"
    assert records["run-limit"].status is TaskStatus.TIMED_OUT
    assert records["run-limit"].error == "timed out after 0.7s"


# -- events -----------------------------------------------------------------------------------


def test_every_state_change_reaches_listeners_in_order(pcc_opts: dict[str, Any]) -> None:
    events: list[Event] = []
    result = pcc.run(
        ["a", "b"],
        agent=pcc.Command('echo "hello $PARALLELCC_TASK_ID"; echo warn >&2'),
        max_concurrent=2,
        listeners=[events.append],
        **pcc_opts,
    )
    assert result.success
    assert events[0].type is EventType.RUN_STARTED
    assert events[-1].type is EventType.RUN_FINISHED
    assert events[-1].data["state"] == "finished"
    assert sum(e.type is EventType.RUN_FINISHED for e in events) == 1
    first_start = next(i for i, e in enumerate(events) if e.type is EventType.TASK_STARTED)
    assert {e.task_id for e in events[:first_start] if e.type is EventType.TASK_QUEUED} == {
        "task-1",
        "task-2",
    }

    for task_id in ("task-1", "task-2"):
        mine = [e for e in events if e.task_id == task_id]
        steps = [
            (e.type.value, e.phase.value if e.phase else None)
            for e in mine
            if e.type is not EventType.TASK_OUTPUT
        ]
        assert steps == [
            ("task_queued", None),
            # Prepared while still pending; started when its command gets a slot.
            ("task_phase", "preparing"),
            ("task_started", None),
            ("task_phase", "running"),
            ("task_phase", "collecting"),
            ("task_phase", "closing"),
            ("task_finished", None),
        ]
        outputs = [e for e in mine if e.type is EventType.TASK_OUTPUT]
        assert sorted((e.data["stream"], e.message) for e in outputs) == [
            ("stderr", "warn"),
            ("stdout", f"hello {task_id}"),
        ]
        running_at = next(i for i, e in enumerate(mine) if e.phase is Phase.RUNNING)
        collecting_at = next(i for i, e in enumerate(mine) if e.phase is Phase.COLLECTING)
        assert all(
            running_at < i < collecting_at
            for i, e in enumerate(mine)
            if e.type is EventType.TASK_OUTPUT
        )
        # Each event carries the task's record after the change.
        assert mine[0].task is not None and mine[0].task.status is TaskStatus.PENDING
        assert mine[1].task is not None and mine[1].task.status is TaskStatus.PENDING
        assert mine[2].task is not None and mine[2].task.status is TaskStatus.RUNNING
        assert mine[-1].task is not None and mine[-1].task.status is TaskStatus.COMPLETED


def test_a_listener_that_raises_is_logged_and_the_run_completes(
    pcc_opts: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError(f"listener bug on {event.type}")

    seen: list[Event] = []
    with caplog.at_level(logging.ERROR, logger="parallelcc_sdk"):
        result = pcc.run(
            ["a", "b"], agent=pcc.Command("echo hi"), listeners=[broken, seen.append], **pcc_opts
        )
    assert result.success
    assert [t.status for t in result.tasks] == [TaskStatus.COMPLETED] * 2
    # The listener after the broken one still got everything.
    assert seen[-1].type is EventType.RUN_FINISHED
    raised = [r for r in caplog.records if r.name == "parallelcc_sdk" and r.exc_info]
    assert len(raised) == len(seen)
    assert "listener" in raised[0].getMessage()
    assert isinstance(raised[0].exc_info[1], RuntimeError)  # type: ignore[index]


# -- change collection ------------------------------------------------------------------------


def test_changes_are_collected_for_edits_new_folders_deletions_renames_and_binaries(
    tmp_path: Path, pcc_git_env: Path
) -> None:
    old_text = "".join(f"line {i} of a file that is moved\n" for i in range(10))
    repo = make_repo(
        tmp_path / "repo",
        {
            "edit.txt": "first\nsecond\nthird\n",
            "gone.txt": "bye\nbye\n",
            "old/place.txt": old_text,
            "keep.txt": "unchanged\n",
        },
    )
    blob = bytes(range(256)) * 4
    (tmp_path / "blob.bin").write_bytes(blob)
    agent = pcc.Command(
        "set -e; "
        "printf 'first\\nSECOND\\nthird\\n' > edit.txt; "
        "rm gone.txt; "
        "mkdir -p moved && mv old/place.txt moved/renamed.txt; "
        "mkdir -p deep/new/dir && printf 'a\\nb\\nc\\n' > deep/new/dir/file.txt; "
        'cp "$BLOB" image.bin',
        env={"BLOB": str(tmp_path / "blob.bin")},
    )
    result = pcc.run(
        ["change things"],
        agent=agent,
        **local_run_options(repo, tmp_path / "results"),
    )
    record = result.tasks[0]
    assert record.status is TaskStatus.COMPLETED, record.error
    assert record.files_changed == 5
    assert record.lines_added == 1 + 3  # edit.txt, file.txt (renames and binaries add no lines)
    assert record.lines_removed == 1 + 2  # edit.txt, gone.txt
    assert sorted(record.changed_paths) == [
        "deep/new/dir/file.txt",
        "edit.txt",
        "image.bin",
        "moved/renamed.txt",
    ]
    df = result.df
    assert (df.loc[0, "files_changed"], df.loc[0, "lines_added"], df.loc[0, "lines_removed"]) == (
        5,
        4,
        3,
    )

    task_dir = Path(record.output_path or "")
    copies = task_dir / "changed-files"
    assert (copies / "edit.txt").read_text() == "first\nSECOND\nthird\n"
    assert (copies / "deep/new/dir/file.txt").read_text() == "a\nb\nc\n"
    assert (copies / "moved/renamed.txt").read_text() == old_text
    assert (copies / "image.bin").read_bytes() == blob
    assert not (copies / "gone.txt").exists() and not (copies / "old").exists()

    patch = (task_dir / "changes.patch").read_text()
    assert "rename from old/place.txt" in patch and "rename to moved/renamed.txt" in patch
    assert "deleted file mode" in patch and "GIT binary patch" in patch

    # The patch replays the task's work exactly on a clone of the repository.
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(repo), str(clone), cwd=tmp_path)
    git("apply", "--index", str(task_dir / "changes.patch"), cwd=clone)
    assert (clone / "edit.txt").read_text() == "first\nSECOND\nthird\n"
    assert (clone / "moved/renamed.txt").read_text() == old_text
    assert (clone / "deep/new/dir/file.txt").read_text() == "a\nb\nc\n"
    assert (clone / "image.bin").read_bytes() == blob
    assert not (clone / "gone.txt").exists() and not (clone / "old/place.txt").exists()
    assert (clone / "keep.txt").read_text() == "unchanged\n"


def test_changes_are_collected_when_the_agent_fails(pcc_opts: dict[str, Any]) -> None:
    result = pcc.run(
        ["x"],
        agent=pcc.Command("echo partial > work.txt; echo oops >&2; exit 1"),
        **pcc_opts,
    )
    record = result.tasks[0]
    assert record.status is TaskStatus.FAILED
    assert record.exit_code == 1
    assert record.error == "command exited with code 1: oops"
    assert record.files_changed == 1 and record.lines_added == 1
    task_dir = Path(record.output_path or "")
    assert (task_dir / "changed-files" / "work.txt").read_text() == "partial\n"
    assert "+partial" in (task_dir / "changes.patch").read_text()


# -- the user's repository --------------------------------------------------------------------


@pytest.mark.parametrize(
    "isolation", ["none", pytest.param("bubblewrap", marks=pytest.mark.bwrap)]
)
def test_the_users_repository_is_byte_identical_after_a_run(
    tmp_path: Path, pcc_git_env: Path, isolation: str
) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {"a.txt": "alpha\n", "b.txt": "beta\n", "src/c.py": "x = 1\n", ".gitignore": "*.log\n"},
    )
    git("checkout", "--quiet", "-b", "feature", cwd=repo)
    write(repo, "a.txt", "alpha on feature\n")
    git("commit", "--quiet", "-am", "feature work", cwd=repo)
    git("checkout", "--quiet", "main", cwd=repo)
    write(repo, "b.txt", "stashed\n")
    git("stash", "--quiet", cwd=repo)
    git("tag", "v1", cwd=repo)
    # Uncommitted, staged, untracked and ignored files too.
    write(repo, "a.txt", "alpha, edited\n")
    write(repo, "src/c.py", "x = 2\n")
    git("add", "src/c.py", cwd=repo)
    write(repo, "untracked.txt", "new\n")
    write(repo, "debug.log", "ignored\n")
    before = tree_state(repo)

    identity = {
        "GIT_AUTHOR_NAME": "Agent",
        "GIT_AUTHOR_EMAIL": "agent@example.com",
        "GIT_COMMITTER_NAME": "Agent",
        "GIT_COMMITTER_EMAIL": "agent@example.com",
    }
    scripts = {
        "commit": "echo more >> a.txt; rm b.txt; mkdir -p new && echo n > new/n.txt; "
        "git add -A; git commit -qm 'agent commit'; git branch agent-branch; git tag agent-tag; "
        "git checkout -q main 2>/dev/null || true",
        "stash": "echo changed > src/c.py; git stash; git stash list | grep -q stash; "
        "git checkout -q -b other; git config user.name changed; git gc --quiet",
        "wipe": "git rm -rq .; git commit -qm wipe; git reflog expire --expire=now --all; "
        "git update-ref refs/heads/main HEAD",
    }
    agent = pcc.Command(
        'set -e; case "$PARALLELCC_TASK_ID" in '
        + " ".join(f"{k}) {v};;" for k, v in scripts.items())
        + " esac",
        env=identity,
    )
    result = pcc.run(
        [Task("x", id=k) for k in scripts],
        agent=agent,
        max_concurrent=3,
        **local_run_options(repo, tmp_path / "results", backend=backend_for(isolation)),
    )
    assert result.success, result.df[["task_id", "status", "error"]].to_string()
    records = {t.task_id: t for t in result.tasks}
    # The workspaces held the snapshot (uncommitted edits included) and the agents' work counts.
    assert records["commit"].files_changed == 3  # a.txt, b.txt, new/n.txt
    assert records["wipe"].files_changed == 5  # .gitignore, a, b, src/c.py, untracked.txt
    assert records["stash"].files_changed == 0
    assert diff_states(before, tree_state(repo)) == []


# -- secrets ----------------------------------------------------------------------------------


def test_a_secret_task_env_var_never_reaches_logs_metadata_or_summaries(
    pcc_opts: dict[str, Any],
) -> None:
    secret = "tok-3f9a2c-very-secret-value"
    other = "another-secret-from-the-agent-env"
    events: list[Event] = []
    result = pcc.run(
        [
            Task("print it", env={"MY_API_TOKEN": secret}),
            Task("print it and fail", env={"MY_API_TOKEN": secret, "FAIL": "1"}),
        ],
        agent=pcc.Command(
            'echo "token is $MY_API_TOKEN"; echo "$MY_API_TOKEN" >&2; echo "$DB_PASSWORD"; '
            'if [ -n "$FAIL" ]; then echo "bad token $MY_API_TOKEN" >&2; exit 1; fi',
            env={"DB_PASSWORD": other},
        ),
        listeners=[events.append],
        **pcc_opts,
    )
    assert [t.status for t in result.tasks] == [TaskStatus.COMPLETED, TaskStatus.FAILED]
    written = [p for p in result.run_dir.rglob("*") if p.is_file()]
    names = {p.name for p in written}
    assert {"execution.log", "metadata.json", "run.json", "summary.json", "results.csv"} <= names
    assert "summary-report.md" in names
    for path in written:
        content = path.read_bytes()
        assert secret.encode() not in content, f"the secret leaked into {path}"
        assert other.encode() not in content, f"the agent's secret leaked into {path}"
    log = (Path(result.tasks[0].output_path or "") / "execution.log").read_text()
    assert "token is [REDACTED]" in log  # the line was logged, masked
    for event in events:
        assert secret not in repr(event) and other not in repr(event)
    assert result.tasks[1].error is not None and secret not in result.tasks[1].error
    assert secret not in result.df.to_csv()


def test_processes_left_behind_by_a_finished_task_are_killed(
    pcc_opts: dict[str, Any], tmp_path: Path
) -> None:
    pidfile = tmp_path / "daemon.pid"
    result = pcc.run(
        ["x"],
        agent=pcc.Command(
            'setsid sleep 30 >/dev/null 2>&1 < /dev/null & echo $! > "$PIDFILE"; echo started',
            env={"PIDFILE": str(pidfile)},
        ),
        **pcc_opts,
    )
    assert result.success
    (pid,) = read_pids(pidfile)
    assert wait_until_gone([pid]) == []
    assert not pid_alive(pid)


def test_output_lines_of_any_length_are_delivered(pcc_opts: dict[str, Any]) -> None:
    lines: list[str] = []

    def on_event(event: Event) -> None:
        if event.type is EventType.TASK_OUTPUT and event.message is not None:
            lines.append(event.message)

    result = pcc.run(
        ["x"],
        agent=pcc.Command("head -c 3000000 /dev/zero | tr '\\0' 'x'; echo; echo tail"),
        listeners=[on_event],
        **pcc_opts,
    )
    assert result.success
    assert [len(line) for line in lines] == [3_000_000, 4]

