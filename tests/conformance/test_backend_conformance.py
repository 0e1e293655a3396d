"""Every check of the suite, on every backend of ``registry.BACKENDS`` (see ``__init__.py``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.e2e import wait_for

import parallelcc_sdk as pcc

from . import checks
from .harness import Harness, make_user_repo, open_harness
from .registry import BACKENDS, BackendUnderTest

pytestmark = pytest.mark.usefixtures("pcc_git_env")

TESTS_DIR = Path(__file__).resolve().parent.parent
PACKAGE_ROOT = TESTS_DIR.parent


@pytest.fixture(params=[pytest.param(b, id=b.id, marks=b.marks) for b in BACKENDS])
def backend_under_test(request: pytest.FixtureRequest) -> BackendUnderTest:
    entry: BackendUnderTest = request.param
    for name in entry.fixtures:
        request.getfixturevalue(name)
    return entry


@pytest.fixture
async def harness(backend_under_test: BackendUnderTest, tmp_path: Path) -> AsyncIterator[Harness]:
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    async with open_harness(backend_under_test.make(work_dir), tmp_path) as h:
        yield h


async def test_prepare_fills_the_workspace_with_the_snapshot(harness: Harness) -> None:
    await checks.check_prepare_fills_the_workspace_with_the_snapshot(harness)


async def test_exec_streams_lines_in_order_with_stdout_and_stderr_apart(harness: Harness) -> None:
    await checks.check_exec_streams_lines_in_order_with_stdout_and_stderr_apart(harness)


async def test_exec_carries_a_ten_megabyte_line_and_invalid_utf8(harness: Harness) -> None:
    await checks.check_exec_carries_a_ten_megabyte_line_and_invalid_utf8(harness)


async def test_exec_passes_stdin_env_files_and_the_exit_code(harness: Harness) -> None:
    await checks.check_exec_passes_stdin_env_files_and_the_exit_code(harness)


async def test_exec_that_ignores_stdin_still_completes(harness: Harness) -> None:
    await checks.check_exec_that_ignores_stdin_still_completes(harness)


@pytest.mark.parametrize("scenario", checks.SCENARIOS, ids=checks.SCENARIO_IDS)
async def test_collect_reproduces_the_workspace(
    harness: Harness, scenario: checks.Scenario
) -> None:
    await checks.check_collect_scenario(harness, scenario)


async def test_collect_leaves_out_what_is_never_source(harness: Harness) -> None:
    await checks.check_collect_leaves_out_what_is_never_source(harness)


async def test_collect_obeys_the_runs_exclude_changes(harness: Harness) -> None:
    await checks.check_collect_obeys_the_runs_exclude_changes(harness)


async def test_collect_twice_replaces_the_earlier_copies(harness: Harness) -> None:
    await checks.check_collect_twice_replaces_the_earlier_copies(harness)


async def test_cancel_kills_everything_the_command_started(harness: Harness) -> None:
    await checks.check_cancel_kills_everything_the_command_started(harness)


async def test_close_is_safe_twice_and_after_async_with(harness: Harness) -> None:
    await checks.check_close_is_safe_twice_and_after_async_with(harness)


async def test_sandboxes_have_distinct_ids_and_describe_themselves(harness: Harness) -> None:
    await checks.check_describe_and_ids(harness)


# -- cleanup after a crash ----------------------------------------------------------------------

# Starts a real run in a child process and reports its sandbox once the command is running.
CHILD = textwrap.dedent(
    """
    import json, sys, threading, time
    from pathlib import Path
    import parallelcc_sdk as pcc
    from conformance.registry import BACKENDS

    backend_id, work_dir, repo, out = sys.argv[1:5]
    entry = next(b for b in BACKENDS if b.id == backend_id)
    ready = threading.Event()

    def listen(event):
        if event.type is pcc.EventType.TASK_OUTPUT and event.message == "ready":
            ready.set()

    handle = pcc.submit(
        ["x"], repo=repo, backend=entry.make(Path(work_dir)), output_dir=out, progress="off",
        agent=pcc.Command("echo ready; sleep 600"), listeners=[listen],
    )
    if not ready.wait(60):
        sys.exit("the task never started")
    task = handle.tasks[0]
    info = {"run_dir": str(handle.run_dir), "sandbox_id": task.sandbox_id,
            "sandbox_info": dict(task.sandbox_info)}
    print(json.dumps(info), flush=True)
    time.sleep(600)
    """
)


def test_cleanup_finds_a_sandbox_whose_run_process_was_killed(
    backend_under_test: BackendUnderTest, tmp_path: Path
) -> None:
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    repo = make_user_repo(tmp_path / "repo")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT), str(TESTS_DIR)])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, backend_under_test.id, str(work_dir), str(repo),
         str(tmp_path / "results")],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        report = _read_line(child, timeout=60)
        info = json.loads(report)
        run_dir, sandbox_id = Path(info["run_dir"]), info["sandbox_id"]
        assert sandbox_id
        before = backend_under_test.leftovers(run_dir, sandbox_id, info["sandbox_info"])
        assert before, "the running sandbox should be visible to the probe"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)

    closed = pcc.cleanup(run_dir)

    assert any(sandbox_id in item for item in closed), closed
    wait_for(
        lambda: not backend_under_test.leftovers(run_dir, sandbox_id, info["sandbox_info"]),
        timeout=10,
        what="the killed run's sandbox to be gone",
    )
    # Nothing is left to find a second time.
    assert not [item for item in pcc.cleanup(run_dir) if sandbox_id in item]


def _read_line(child: subprocess.Popen[bytes], timeout: float) -> str:
    assert child.stdout is not None
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(child.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not line or not line[0]:
        raise AssertionError(f"the child run did not report its sandbox (exit {child.poll()})")
    return line[0].decode()
