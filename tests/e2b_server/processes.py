"""One command running in a sandbox: its process, its output fanned out to every open stream.

envd lets several streams follow one process (``Start`` and any number of ``Connect``); each gets
the output produced while it is attached, then the end. When the sandbox itself goes away, the
streams get ``LOST`` instead of an end, as a client of the real service sees its connection to a
dead VM break.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

READ_CHUNK = 64 * 1024
DRAIN_AFTER_EXIT_S = 1.0
"""How long output is still read after the process exited (a leftover child may hold the pipe)."""


@dataclass(frozen=True)
class Exit:
    """The end of a process, in the words of Go's ``ProcessState`` (what envd reports)."""

    exit_code: int
    exited: bool
    status: str
    error: str | None


Output = tuple[Literal["stdout", "stderr"], bytes]
End = tuple[Literal["end"], Exit]
Lost = tuple[Literal["lost"], None]
Event = Output | End | Lost


def exit_of(returncode: int, signalled: int | None) -> Exit:
    """Maps a return code to envd's end event; ``signalled`` is the signal this server sent."""
    sig = -returncode if returncode < 0 else None
    if sig is None and signalled is not None and returncode == 128 + signalled:
        # bubblewrap reports a command killed inside it as 128 + signal.
        sig = signalled
    if sig is not None:
        text = f"signal: {(signal.strsignal(sig) or str(sig)).lower()}"
        return Exit(exit_code=-1, exited=False, status=text, error=text)
    status = f"exit status {returncode}"
    return Exit(returncode, True, status, status if returncode else None)


class Command:
    """A started process with its pid (as the sandbox numbers it) and its listeners."""

    def __init__(
        self,
        pid: int,
        process: asyncio.subprocess.Process,
        *,
        cmd: str,
        args: Sequence[str],
        envs: Mapping[str, str],
        cwd: str,
        tag: str | None,
    ) -> None:
        self.pid = pid
        self.process = process
        self.cmd = cmd
        self.args = list(args)
        self.envs = dict(envs)
        self.cwd = cwd
        self.tag = tag
        self.exit: Exit | None = None
        self.lost = False
        self._signalled: int | None = None
        self._listeners: list[asyncio.Queue[Event]] = []
        self._done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        """The output pump; held here because the event loop keeps only weak references."""
        self.on_done: Callable[[], object] | None = None

    @property
    def command_line(self) -> str:
        return " ".join([self.cmd, *self.args])

    @property
    def has_stdin(self) -> bool:
        return self.process.stdin is not None

    def listen(self) -> asyncio.Queue[Event]:
        """A queue that receives everything from now on (or the end, if it is already over)."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        if self._done.is_set():
            queue.put_nowait(self._final())
        else:
            self._listeners.append(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[Event]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(queue)

    def run(self) -> None:
        """Starts reading the output; call after the first listener is attached."""
        self._task = asyncio.create_task(self._pump())

    async def wait(self) -> None:
        await self._done.wait()

    async def write_stdin(self, data: bytes) -> None:
        stdin = self.process.stdin
        if stdin is None or stdin.is_closing():
            raise BrokenPipeError("stdin is closed")
        stdin.write(data)
        await stdin.drain()

    def close_stdin(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()

    def send_signal(self, sig: int) -> None:
        """Signals the whole process group (the jail and everything in it)."""
        if self._done.is_set():
            return
        self._signalled = sig
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def stop(self, sig: int) -> None:
        """Stops or continues the process group (pause / resume of the sandbox)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def lose(self) -> None:
        """The sandbox is gone: kill the process and tell listeners the connection broke."""
        self.lost = True
        self.send_signal(signal.SIGKILL)
        self.stop(signal.SIGCONT)

    def _final(self) -> Event:
        if self.lost or self.exit is None:
            return ("lost", None)
        return ("end", self.exit)

    def _publish(self, event: Event) -> None:
        for queue in list(self._listeners):
            queue.put_nowait(event)

    async def _read(self, stream: asyncio.StreamReader | None, name: str) -> None:
        if stream is None:
            return
        kind: Literal["stdout", "stderr"] = "stdout" if name == "stdout" else "stderr"
        while chunk := await stream.read(READ_CHUNK):
            self._publish((kind, chunk))

    async def _pump(self) -> None:
        readers = [
            asyncio.create_task(self._read(self.process.stdout, "stdout")),
            asyncio.create_task(self._read(self.process.stderr, "stderr")),
        ]
        try:
            returncode = await self.process.wait()
            _, pending = await asyncio.wait(readers, timeout=DRAIN_AFTER_EXIT_S)
            if pending:
                self.send_signal(signal.SIGKILL)
                for reader in pending:
                    reader.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            self.exit = exit_of(returncode, self._signalled)
        finally:
            self.close_stdin()
            self._done.set()
            if self.on_done is not None:
                self.on_done()
            self._publish(self._final())
            self._listeners.clear()


async def spawn(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None, stdin: bool
) -> asyncio.subprocess.Process:
    """Starts ``argv`` in its own session, so a signal reaches everything it starts."""
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
    )
