"""Running one command on this machine: streamed lines, and a kill that leaves no process behind.

A command is over when its main process exits, even if something it started in the background
still holds its output open (``setsid daemon &``): whatever is left is killed then, and reading
stops once the output is drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import cast

from ..agents.base import Stream
from .base import LineHandler

# Marks every process of a sandbox, so ones that left our process group (setsid, daemons) are
# still found and killed when the sandbox closes.
SANDBOX_MARKER = "PARALLELCC_SANDBOX_ID"
_KILL_GRACE_S = 2.0
_DRAIN_S = 2.0
"""After the command exits and its leftovers are killed, how long the output may take to end."""
_STREAMS: dict[int, Stream] = {1: "stdout", 2: "stderr"}


async def run_streaming(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin: bytes,
    on_line: LineHandler,
    kill_leftovers: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Runs ``argv`` in its own session, feeding ``stdin`` and reporting each output line.

    Lines of any length are supported (agent events can be megabytes). Once the main process has
    exited, its process group and ``kill_leftovers`` (the sandbox's other ways of finding its
    processes) are killed, so nothing it started outlives it. On cancellation, or when
    ``on_line`` raises, the process group gets SIGTERM, then SIGKILL after a grace period, before
    the exception propagates.
    """
    loop = asyncio.get_running_loop()
    protocol = _LineProtocol(on_line, loop)
    transport, _ = await loop.subprocess_exec(
        lambda: protocol,
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    pid = transport.get_pid()
    try:
        _feed(transport, stdin)
        await asyncio.wait([protocol.exited, protocol.failed], return_when=asyncio.FIRST_COMPLETED)
        protocol.raise_failure()
        # The command is over: what it left running goes now, which also closes the output
        # pipes it kept open.
        _signal_group(pid, signal.SIGKILL)
        if kill_leftovers is not None:
            await kill_leftovers()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(protocol.output_closed), _DRAIN_S)
        protocol.raise_failure()
        code = transport.get_returncode()
        assert code is not None
        return code
    except BaseException:
        await _terminate(pid, protocol)
        if kill_leftovers is not None:
            # Also when cancelled again meanwhile: nothing may stay behind.
            await asyncio.shield(kill_leftovers())
        raise
    finally:
        transport.close()


class _LineProtocol(asyncio.SubprocessProtocol):
    """Splits both output pipes into lines as they arrive; knows when the process exited."""

    def __init__(self, on_line: LineHandler, loop: asyncio.AbstractEventLoop) -> None:
        self._on_line = on_line
        self._pending: dict[int, bytearray] = {fd: bytearray() for fd in _STREAMS}
        self._open = set(_STREAMS)
        self._failure: BaseException | None = None
        self.exited: asyncio.Future[None] = loop.create_future()
        self.output_closed: asyncio.Future[None] = loop.create_future()
        self.failed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd not in _STREAMS or self._failure is not None:
            return
        pending = self._pending[fd]
        # Only the new chunk is scanned for newlines, so a multi-megabyte line costs linear time.
        start = 0
        while (end := data.find(b"\n", start)) != -1:
            pending += data[start:end]
            self._emit(fd, pending)
            pending.clear()
            start = end + 1
        pending += data[start:]

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd not in self._open:
            return
        self._open.discard(fd)
        if self._pending[fd] and self._failure is None:
            self._emit(fd, self._pending[fd])
            self._pending[fd].clear()
        if not self._open and not self.output_closed.done():
            self.output_closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _emit(self, fd: int, line: bytearray) -> None:
        try:
            self._on_line(_STREAMS[fd], _decode(line))
        except Exception as exc:  # the caller's handler failed (a full disk): stop the command
            self._failure = exc
            if not self.failed.done():
                self.failed.set_result(None)


def _feed(transport: asyncio.SubprocessTransport, data: bytes) -> None:
    # Buffered by the transport; a command that never reads stdin must not fail the task, and a
    # broken pipe only closes the stdin transport.
    pipe = cast(asyncio.WriteTransport | None, transport.get_pipe_transport(0))
    if pipe is None:
        return
    if data:
        pipe.write(data)
    pipe.close()


async def _terminate(pid: int, protocol: _LineProtocol) -> None:
    """SIGTERM to the process group, SIGKILL after a grace period; waits for the process."""
    if not protocol.exited.done():
        _signal_group(pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.shield(asyncio.wait_for(asyncio.shield(protocol.exited), _KILL_GRACE_S))
    # Children may outlive the leader; the group is killed whether or not the leader is gone.
    _signal_group(pid, signal.SIGKILL)
    if not protocol.exited.done():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(protocol.exited)


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


def _decode(line: bytearray) -> str:
    return bytes(line).rstrip(b"\r").decode(errors="replace")
