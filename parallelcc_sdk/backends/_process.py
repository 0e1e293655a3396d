"""Running one command on this machine: streamed lines, and a kill that leaves no process behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..agents.base import Stream
from .base import LineHandler

# Marks every process of a sandbox, so ones that left our process group (setsid, daemons) are
# still found and killed when the sandbox closes.
SANDBOX_MARKER = "PARALLELCC_SANDBOX_ID"
_KILL_GRACE_S = 2.0
_READ_CHUNK = 64 * 1024


async def run_streaming(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin: bytes,
    on_line: LineHandler,
) -> int:
    """Runs ``argv`` in its own session, feeding ``stdin`` and reporting each output line.

    Lines of any length are supported (agent events can be megabytes). On cancellation the whole
    process group gets SIGTERM, then SIGKILL after a grace period, before ``CancelledError``
    propagates.
    """
    proc = await _start(argv, cwd=cwd, env=env)
    assert proc.stdin and proc.stdout and proc.stderr
    try:
        await asyncio.gather(
            _feed(proc.stdin, stdin),
            _pump(proc.stdout, "stdout", on_line),
            _pump(proc.stderr, "stderr", on_line),
        )
        return await proc.wait()
    except BaseException:
        await terminate_group(proc)
        raise


async def _start(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]
) -> asyncio.subprocess.Process:
    """Starts the process; a cancellation while it starts waits for it, then kills it.

    asyncio cannot be cancelled half-way through starting a process: the child is already
    running while its pipes are being connected, and the cleanup asyncio then does waits for
    pipes that never connect, so the task hangs and the child lives on.
    """
    starting = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    )
    try:
        return await asyncio.shield(starting)
    except asyncio.CancelledError:
        # A start that failed left nothing to kill; the cancellation goes on either way.
        with contextlib.suppress(Exception):
            await terminate_group(await starting)
        raise


async def terminate_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM to the process group, SIGKILL after a grace period; waits for the process."""
    if proc.returncode is None:
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.shield(asyncio.wait_for(proc.wait(), _KILL_GRACE_S))
    # Children may outlive the leader; the group is killed whether or not the leader is gone.
    _signal_group(proc.pid, signal.SIGKILL)
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())


def kill_marked(marker_value: str) -> int:
    """SIGKILLs every process whose environment carries this sandbox's marker. Returns how many."""
    needle = f"{SANDBOX_MARKER}={marker_value}".encode()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
    return killed


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _feed(writer: asyncio.StreamWriter, data: bytes) -> None:
    # A command that never reads stdin must not fail the task: a broken pipe is fine.
    try:
        if data:
            writer.write(data)
            await writer.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            writer.close()
            await writer.wait_closed()


async def _pump(reader: asyncio.StreamReader, stream: Stream, on_line: LineHandler) -> None:
    # Only the new chunk is scanned for newlines, so a multi-megabyte line costs linear time.
    pending = bytearray()
    while chunk := await reader.read(_READ_CHUNK):
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            pending += chunk[start:end]
            on_line(stream, _decode(pending))
            pending.clear()
            start = end + 1
        pending += chunk[start:]
    if pending:
        on_line(stream, _decode(pending))


def _decode(line: bytearray) -> str:
    return bytes(line).rstrip(b"\r").decode(errors="replace")
