"""Every way of waiting on a run from sync and async code, with asyncio left untouched.

Runs live on the SDK's own loop thread, so nothing ever needs to re-enter a running loop (the
nest-asyncio approach, which crashed a kernel's loop when applied while it ran). The one call
that cannot work, blocking on the SDK's loop thread itself, fails at once instead of hanging.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from support.e2e import local_run_options

import parallelcc_sdk as pcc
from parallelcc_sdk.events import Event, EventType


def _submit(
    repo: Path, tmp_path: Path, command: str = "echo hi", **options: object
) -> pcc.ExecutionHandle:
    return pcc.submit(
        ["a", "b"],
        agent=pcc.Command(command),
        **local_run_options(repo, tmp_path / "out", **options),
    )


def test_blocking_from_a_listener_on_the_runs_own_thread_raises_at_once(
    notes_repo: Path, tmp_path: Path
) -> None:
    outcomes: list[str] = []

    def on_event(event: Event) -> None:
        if event.type is EventType.TASK_STARTED and not outcomes:
            started = time.monotonic()
            try:
                handle.result()
            except pcc.SyncCallInRunningLoopError as exc:
                outcomes.append(f"raised in {time.monotonic() - started:.2f}s: {exc}")

    handle = _submit(notes_repo, tmp_path, "sleep 0.3", listeners=[on_event])
    result = handle.result(timeout=30)  # the run itself was not disturbed
    assert result.success
    assert len(outcomes) == 1 and outcomes[0].startswith("raised in 0.0")
    assert "would hang the run" in outcomes[0] and handle.run_id in outcomes[0]


def test_blocking_inside_a_running_loop_works_without_patching_asyncio(
    notes_repo: Path, tmp_path: Path
) -> None:
    async def main() -> pcc.RunResult:
        handle = _submit(notes_repo, tmp_path, "sleep 0.2")
        assert not handle.done()
        return handle.result(timeout=30)  # blocks this loop's thread; the run is elsewhere

    result = asyncio.run(main())
    assert result.success
    assert not hasattr(asyncio, "_nest_patched")


def _run_script(code: str, tmp_path: Path, repo: Path) -> str:
    # A fresh interpreter: a clean asyncio, and no loop thread left over from other tests.
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    out = subprocess.run(
        [sys.executable, str(script), str(repo), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_submit_then_result_and_timeouts_inside_a_loop(notes_repo: Path, tmp_path: Path) -> None:
    stdout = _run_script(
        """
        import asyncio, sys
        import parallelcc_sdk as pcc

        async def main():
            handle = pcc.submit(["a", "b", "c"], repo=sys.argv[1], output_dir=sys.argv[2],
                                agent=pcc.Command("echo $PARALLELCC_TASK_ID > out.txt"),
                                backend=pcc.LocalBackend(isolation="none"), progress="off")
            result = handle.result()          # sync call inside a running loop
            print("result", result.success, sorted(result.df.status.astype(str)))
            late = pcc.submit(["slow"], repo=sys.argv[1], output_dir=sys.argv[2],
                              agent=pcc.Command("sleep 5"),
                              backend=pcc.LocalBackend(isolation="none"), progress="off")
            try:
                late.result(timeout=0.2)
            except pcc.RunNotFinishedError:
                print("timeout ok")
            late.cancel()
            print("cancelled", (await late).tasks[0].status.value)

        asyncio.run(main())
        print("patched", hasattr(asyncio, "_nest_patched"))
        """,
        tmp_path,
        notes_repo,
    )
    assert "result True ['completed', 'completed', 'completed']" in stdout
    assert "timeout ok" in stdout
    assert "cancelled cancelled" in stdout
    assert "patched False" in stdout


def test_sync_and_async_entry_points_in_a_plain_script(notes_repo: Path, tmp_path: Path) -> None:
    stdout = _run_script(
        """
        import asyncio, sys
        import parallelcc_sdk as pcc

        kw = dict(repo=sys.argv[1], output_dir=sys.argv[2], agent=pcc.Command("echo hi"),
                  backend=pcc.LocalBackend(isolation="none"), progress="off")
        print("run", pcc.run(["a", "b"], **kw).success)
        print("result", pcc.submit(["a"], **kw).result().success)

        async def main():
            print("run_async", (await pcc.run_async(["a"], **kw)).success)
            print("await", (await pcc.submit(["a"], **kw)).success)
            print("run in loop", pcc.run(["a"], **kw).success)  # blocking call inside a loop

        asyncio.run(main())
        print("patched", hasattr(asyncio, "_nest_patched"))
        """,
        tmp_path,
        notes_repo,
    )
    for line in ("run True", "result True", "run_async True", "await True", "run in loop True"):
        assert line in stdout
    assert "patched False" in stdout  # asyncio was never patched
