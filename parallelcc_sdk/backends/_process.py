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
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from ..contract import LineHandler, Stream
from .lines import LineSplitter

# Marks every process of a sandbox, so ones that left our process group (setsid, daemons) are
# still found and killed when the sandbox closes.
SANDBOX_MARKER = "PARALLELCC_SANDBOX_ID"
# Names the process that opened the sandbox, so a cleanup can tell leftovers of a run that died
# from sandboxes of a run that is still going.
OWNER_MARKER = "PARALLELCC_SANDBOX_OWNER"
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
    transport, protocol = await _start(argv, cwd=cwd, env=env, on_line=on_line)
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


async def _start(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], on_line: LineHandler
) -> tuple[asyncio.SubprocessTransport, _LineProtocol]:
    """Starts the process; a cancellation while it starts waits for it, then kills it.

    asyncio cannot be cancelled half-way through starting a process: the child is already
    running while its pipes are being connected, and the cleanup asyncio then does waits for
    pipes that never connect, so the task hangs and the child lives on.
    """
    loop = asyncio.get_running_loop()
    protocol = _LineProtocol(on_line, loop)
    starting = asyncio.ensure_future(
        loop.subprocess_exec(
            lambda: protocol,
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
        transport, _ = await asyncio.shield(starting)
    except asyncio.CancelledError:
        # A start that failed left nothing to kill; the cancellation goes on either way.
        with contextlib.suppress(Exception):
            started, _ = await starting
            try:
                await _terminate(started.get_pid(), protocol)
            finally:
                started.close()
        raise
    return transport, protocol


class _LineProtocol(asyncio.SubprocessProtocol):
    """Splits both output pipes into lines as they arrive; knows when the process exited."""

    def __init__(self, on_line: LineHandler, loop: asyncio.AbstractEventLoop) -> None:
        self._on_line = on_line
        self._splitters = {fd: LineSplitter() for fd in _STREAMS}
        self._open = set(_STREAMS)
        self._failure: BaseException | None = None
        self.exited: asyncio.Future[None] = loop.create_future()
        self.output_closed: asyncio.Future[None] = loop.create_future()
        self.failed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd not in _STREAMS or self._failure is not None:
            return
        self._emit(fd, self._splitters[fd].feed(data))

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd not in self._open:
            return
        self._open.discard(fd)
        if self._failure is None:
            self._emit(fd, self._splitters[fd].finish())
        if not self._open and not self.output_closed.done():
            self.output_closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _emit(self, fd: int, lines: list[str]) -> None:
        try:
            for line in lines:
                self._on_line(_STREAMS[fd], line)
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
    return kill_processes(p.pid for p in marked_processes(lambda value: value == marker_value))


@dataclass(frozen=True)
class MarkedProcess:
    pid: int
    marker: str
    owner: str | None


def marked_processes(match: Callable[[str], bool]) -> list[MarkedProcess]:
    """Processes whose sandbox marker value ``match`` accepts, with the owner they carry."""
    prefix = f"{SANDBOX_MARKER}=".encode()
    owner_prefix = f"{OWNER_MARKER}=".encode()
    found: list[MarkedProcess] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        marker = owner = None
        for item in environ.split(b"\0"):
            if item.startswith(prefix):
                marker = os.fsdecode(item[len(prefix) :])
            elif item.startswith(owner_prefix):
                owner = os.fsdecode(item[len(owner_prefix) :])
        if marker is not None and match(marker):
            found.append(MarkedProcess(int(entry.name), marker, owner))
    return found


def kill_processes(pids: Iterable[int]) -> int:
    killed = 0
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed


def owner_token(pid: int | None = None) -> str:
    """Names a live process for as long as it lives: its pid and its start time.

    The start time tells a pid that was reused by another process from the one that was here.
    """
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_time(pid)}"


def owner_alive(token: str | None) -> bool:
    """True while the process that ``owner_token`` named is still running."""
    if not token:
        return False
    pid_text, _, started = token.partition(":")
    if not pid_text.isdigit():
        return False
    return _start_time(int(pid_text)) == started != ""


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: count fields after its end.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else ""


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
