"""Blocking on a run from inside the event loop that drives it: nest-asyncio2 when it can be used,
SyncCallInRunningLoopError at once (never a hang) when it cannot."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import parallelcc_sdk as pcc
from parallelcc_sdk import _nest


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "-q")
    (path / "notes.txt").write_text("start\n")
    _git(path, "add", ".")
    _git(path, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "init")
    return path


def _submit(repo: Path, tmp_path: Path, command: str = "echo hi") -> pcc.ExecutionHandle:
    return pcc.submit(
        ["a", "b"],
        repo=repo,
        agent=pcc.Command(command),
        backend=pcc.LocalBackend(isolation="none"),
        output_dir=tmp_path / "out",
        progress="off",
    )


def test_blocking_in_own_loop_without_nesting_raises_at_once(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_nest.ENV_VAR, "0")

    async def main() -> None:
        handle = _submit(repo, tmp_path, "sleep 0.3")
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(pcc.SyncCallInRunningLoopError, match="use `await`"):
            handle.result()
        assert loop.time() - started < 0.2
        result = await handle  # the run itself was not disturbed
        assert result.success

    asyncio.run(main())


def test_missing_nest_asyncio2_is_named_in_the_error(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(_nest.ENV_VAR, raising=False)
    monkeypatch.setitem(sys.modules, "nest_asyncio2", None)  # makes the import fail

    async def main() -> None:
        handle = _submit(repo, tmp_path)
        with pytest.raises(pcc.SyncCallInRunningLoopError, match="nest-asyncio2 is not installed"):
            handle.result()
        await handle

    asyncio.run(main())


def test_loops_that_cannot_be_patched_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_nest.ENV_VAR, raising=False)

    class OtherLoop(asyncio.AbstractEventLoop):  # what uvloop.Loop is, as far as nesting goes
        pass

    reason = _nest.refusal(OtherLoop())
    assert reason is not None and "cannot be nested" in reason
    assert _nest.refusal(asyncio.new_event_loop()) is None


def _run_script(code: str, tmp_path: Path, repo: Path) -> str:
    # nest-asyncio2 patches asyncio for the whole process, so these run in a fresh interpreter.
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


def test_blocking_in_own_loop_works_with_nest_asyncio2(repo: Path, tmp_path: Path) -> None:
    stdout = _run_script(
        """
        import asyncio, sys
        import parallelcc_sdk as pcc

        assert not hasattr(asyncio, "_nest_patched")  # importing the SDK patches nothing

        async def main():
            handle = pcc.submit(["a", "b", "c"], repo=sys.argv[1], output_dir=sys.argv[2],
                                agent=pcc.Command("echo $PARALLELCC_TASK_ID > out.txt"),
                                backend=pcc.LocalBackend(isolation="none"), progress="off")
            result = handle.result()          # sync call on the loop that runs the handle
            print("nested", result.success, sorted(result.df.status.astype(str)))
            print("patched", getattr(asyncio, "_nest_patched", False))
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
        """,
        tmp_path,
        repo,
    )
    assert "nested True ['completed', 'completed', 'completed']" in stdout
    assert "patched True" in stdout
    assert "timeout ok" in stdout
    assert "cancelled cancelled" in stdout


def test_sync_and_async_entry_points_in_a_plain_script(repo: Path, tmp_path: Path) -> None:
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
            print("run in loop", pcc.run(["a"], **kw).success)  # blocking call, portal loop

        asyncio.run(main())
        print("patched", hasattr(asyncio, "_nest_patched"))
        """,
        tmp_path,
        repo,
    )
    for line in ("run True", "result True", "run_async True", "await True", "run in loop True"):
        assert line in stdout
    assert "patched False" in stdout  # nothing needed nesting, so nothing was patched
