"""Running one command on this machine: streamed lines, and a kill that leaves no process behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..contract import LineHandler, Stream
from .lines import LineSplitter

# Marks every process of a sandbox, so ones that left our process group (setsid, daemons) are
# still found and killed when the sandbox closes.
SANDBOX_MARKER = "PARALLELCC_SANDBOX_ID"
# Names the process that opened the sandbox, so a cleanup can tell leftovers of a run that died
# from sandboxes of a run that is still going.
OWNER_MARKER = "PARALLELCC_SANDBOX_OWNER"
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
    splitter = LineSplitter()
    while chunk := await reader.read(_READ_CHUNK):
        for line in splitter.feed(chunk):
            on_line(stream, line)
    for line in splitter.finish():
        on_line(stream, line)
