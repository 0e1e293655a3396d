"""The sandboxes: create, fork, pause, resume, expire and kill them; start their commands.

All of it runs on the server's event loop. What tests read from another thread (records, who is
alive) is guarded by a lock and handed out as immutable :class:`SandboxRecord` copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import shutil
import signal
import string
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .jail import command_env, jail_argv
from .layout import Layout, User
from .processes import Command, spawn

State = Literal["running", "paused", "killed"]
Isolation = Literal["bubblewrap", "none"]

DEFAULT_TIMEOUT_S = 300
"""What E2B applies when ``create`` sends no timeout."""
DEFAULT_FORK_TIMEOUT_S = 15
"""The API's default lifetime of a fork (``SandboxForkRequest.timeout``)."""
_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class SandboxRecord:
    """What tests can see of a sandbox, now or after it ended."""

    sandbox_id: str
    template: str
    metadata: Mapping[str, str]
    parent_id: str | None
    started_at: float
    """Wall-clock time it was created."""
    ended_at: float | None
    end_reason: str | None
    """``killed`` (by the API), ``timeout``, ``fault``, ``server`` or ``shutdown``."""
    state: State
    folder: Path


@dataclass
class Sandbox:
    sandbox_id: str
    template: str
    metadata: dict[str, str]
    envs: dict[str, str]
    token: str
    layout: Layout
    started_at: float
    end_at: float
    auto_pause: bool = False
    parent_id: str | None = None
    state: State = "running"
    ended_at: float | None = None
    end_reason: str | None = None
    commands: dict[int, Command] = field(default_factory=dict)
    next_pid: int = 1000
    timer: asyncio.TimerHandle | None = None

    @property
    def alive(self) -> bool:
        return self.state != "killed"

    def record(self) -> SandboxRecord:
        return SandboxRecord(
            self.sandbox_id,
            self.template,
            dict(self.metadata),
            self.parent_id,
            self.started_at,
            self.ended_at,
            self.end_reason,
            self.state,
            self.layout.folder,
        )


class SandboxGone(Exception):
    """The sandbox does not exist or has ended."""


def new_id(length: int = 20) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def open_counts(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, int]]:
    """How many intervals are open after each start or end, in time order (at a tie, the end
    comes first: a sandbox killed as another starts does not count twice)."""
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    counts: list[tuple[float, int]] = []
    current = 0
    for moment, step in points:
        current += step
        counts.append((moment, current))
    return counts


class Registry:
    def __init__(self, root: Path, *, isolation: Isolation, retain_killed: bool) -> None:
        self.root = root
        self.isolation = isolation
        self.retain_killed = retain_killed
        self._lock = threading.Lock()
        self._sandboxes: dict[str, Sandbox] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._closed = False
        self._started: list[tuple[str, str]] = []
        """(sandbox id, command line) of every command started, in order."""

    # -- reading (any thread) ---------------------------------------------------------------

    def records(self) -> list[SandboxRecord]:
        with self._lock:
            return [s.record() for s in self._sandboxes.values()]

    def started_commands(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._started)

    def alive_ids(self) -> list[str]:
        with self._lock:
            return [s.sandbox_id for s in self._sandboxes.values() if s.alive]

    def alive_over_time(
        self, where: Callable[[SandboxRecord], bool] | None = None
    ) -> list[tuple[float, int]]:
        """(wall-clock time, sandboxes alive from then on), at every start and end of a sandbox
        that ``where`` accepts."""
        records = [r for r in self.records() if where is None or where(r)]
        intervals = [(r.started_at, r.ended_at or math.inf) for r in records]
        return [(t, n) for t, n in open_counts(intervals) if t != math.inf]

    def max_alive(self, where: Callable[[SandboxRecord], bool] | None = None) -> int:
        """The most sandboxes (matching ``where``) that were alive at the same moment."""
        return max((n for _, n in self.alive_over_time(where)), default=0)

    # -- lookup (server loop) ---------------------------------------------------------------

    def find(self, sandbox_id: str | None) -> Sandbox | None:
        """A sandbox that exists or existed (killed ones stay known)."""
        if sandbox_id is None:
            return None
        with self._lock:
            return self._sandboxes.get(sandbox_id)

    def running(self, sandbox_id: str | None) -> Sandbox:
        sandbox = self.find(sandbox_id)
        if sandbox is None or sandbox.state != "running":
            raise SandboxGone(sandbox_id)
        return sandbox

    def listed(self) -> list[Sandbox]:
        with self._lock:
            return [s for s in self._sandboxes.values() if s.alive]

    # -- lifecycle --------------------------------------------------------------------------

    def create(
        self,
        *,
        template: str,
        timeout: int,
        metadata: Mapping[str, str],
        envs: Mapping[str, str],
        auto_pause: bool = False,
    ) -> Sandbox:
        sandbox = self._new(template, timeout, metadata, envs, auto_pause, parent=None)
        sandbox.layout.create()
        self._register(sandbox)
        return sandbox

    async def fork(self, parent: Sandbox, lifetime: int) -> Sandbox:
        """A new sandbox holding a copy of ``parent``'s files (not its running processes)."""
        child = self._new(
            parent.template, lifetime, parent.metadata, parent.envs, False, parent=parent
        )
        copy = await asyncio.create_subprocess_exec(
            "cp",
            "-a",
            "--reflink=auto",
            str(parent.layout.folder),
            str(child.layout.folder),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await copy.communicate()
        if copy.returncode != 0:
            raise OSError(f"copying sandbox {parent.sandbox_id} failed: {err.decode().strip()}")
        if self._closed:
            await asyncio.to_thread(shutil.rmtree, child.layout.folder, True)
            raise OSError("the server is stopping")
        self._register(child)
        return child

    def _new(
        self,
        template: str,
        timeout: int,
        metadata: Mapping[str, str],
        envs: Mapping[str, str],
        auto_pause: bool,
        parent: Sandbox | None,
    ) -> Sandbox:
        sandbox_id = new_id()
        now = time.time()
        return Sandbox(
            sandbox_id=sandbox_id,
            template=template,
            metadata=dict(metadata),
            envs=dict(envs),
            token=secrets.token_urlsafe(24),
            layout=Layout(self.root / sandbox_id, hidden=[self.root]),
            started_at=now,
            end_at=now + timeout,
            auto_pause=auto_pause,
            parent_id=parent.sandbox_id if parent else None,
        )

    def _register(self, sandbox: Sandbox) -> None:
        with self._lock:
            self._sandboxes[sandbox.sandbox_id] = sandbox
        self._arm(sandbox)

    def _arm(self, sandbox: Sandbox) -> None:
        """(Re)schedules the end of the sandbox's lifetime."""
        if sandbox.timer is not None:
            sandbox.timer.cancel()
        delay = max(0.0, sandbox.end_at - time.time())
        loop = asyncio.get_running_loop()
        # The coroutine is made when the timer fires: a cancelled timer leaves none un-awaited.
        sandbox.timer = loop.call_later(delay, lambda: self._spawn_task(self._expire(sandbox)))

    def _spawn_task(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _expire(self, sandbox: Sandbox) -> None:
        if sandbox.state != "running":
            return
        if sandbox.auto_pause:
            self.pause(sandbox, keep_memory=True)
        else:
            await self.kill(sandbox, reason="timeout")

    def set_timeout(self, sandbox: Sandbox, seconds: int) -> None:
        """The sandbox ends ``seconds`` from now (longer or shorter than before)."""
        sandbox.end_at = time.time() + seconds
        if sandbox.state == "running":
            self._arm(sandbox)

    def extend(self, sandbox: Sandbox, seconds: int) -> None:
        """The lifetime only grows (``connect`` on a running sandbox)."""
        sandbox.end_at = max(sandbox.end_at, time.time() + seconds)
        self._arm(sandbox)

    def schedule_kill(self, sandbox: Sandbox, after: float, reason: str) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(after, lambda: self._spawn_task(self.kill(sandbox, reason=reason)))

    async def kill(self, sandbox: Sandbox, *, reason: str) -> bool:
        """Ends the sandbox: its commands die, its streams break, its folder goes."""
        with self._lock:
            if not sandbox.alive:
                return False
            sandbox.state = "killed"
            sandbox.ended_at = time.time()
            sandbox.end_reason = reason
        if sandbox.timer is not None:
            sandbox.timer.cancel()
        commands = list(sandbox.commands.values())
        for command in commands:
            command.lose()
        if commands:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(c.wait() for c in commands)), 10)
        sandbox.commands.clear()
        if not self.retain_killed:
            await asyncio.to_thread(shutil.rmtree, sandbox.layout.folder, True)
        return True

    def pause(self, sandbox: Sandbox, *, keep_memory: bool) -> None:
        """Paused: commands are frozen (or, without memory, gone); no lifetime runs."""
        sandbox.state = "paused"
        if sandbox.timer is not None:
            sandbox.timer.cancel()
        for command in list(sandbox.commands.values()):
            if keep_memory:
                command.stop(signal.SIGSTOP)
            else:
                command.lose()
        if not keep_memory:
            sandbox.commands.clear()

    def resume(self, sandbox: Sandbox, timeout: int) -> None:
        sandbox.state = "running"
        for command in sandbox.commands.values():
            command.stop(signal.SIGCONT)
        sandbox.end_at = time.time() + timeout
        self._arm(sandbox)

    async def shutdown(self) -> None:
        """Kills every sandbox (the server is stopping); forks still copying are dropped."""
        self._closed = True
        await asyncio.gather(*(self.kill(s, reason="shutdown") for s in self.listed()))
        for task in list(self._background):
            task.cancel()

    # -- commands ---------------------------------------------------------------------------

    async def start_command(
        self,
        sandbox: Sandbox,
        *,
        user: User,
        cmd: str,
        args: Sequence[str],
        envs: Mapping[str, str],
        cwd: str,
        host_cwd: Path,
        stdin: bool,
        tag: str | None,
    ) -> Command:
        """Starts a command in ``cwd`` (a sandbox path; ``host_cwd`` is where it lives here)."""
        env = command_env(user, sandbox.sandbox_id, sandbox.envs, envs)
        if self.isolation == "bubblewrap":
            argv = jail_argv(sandbox.layout, user, cwd, [cmd, *args], hostname="e2b")
            process = await spawn(argv, env=env, cwd=None, stdin=stdin)
        else:
            home = sandbox.layout.resolve(user.home, user).host
            env = command_env(
                user, sandbox.sandbox_id, sandbox.envs, envs, home=str(home or user.home)
            )
            process = await spawn([cmd, *args], env=env, cwd=str(host_cwd), stdin=stdin)
        pid = sandbox.next_pid
        sandbox.next_pid += 1
        command = Command(pid, process, cmd=cmd, args=args, envs=envs, cwd=cwd, tag=tag)
        sandbox.commands[pid] = command
        with self._lock:
            self._started.append((sandbox.sandbox_id, command.command_line))
        # envd lists running processes only: a finished one leaves the table.
        command.on_done = lambda: sandbox.commands.pop(pid, None)
        if sandbox.state != "running":
            # The sandbox ended or paused while the process was starting: it must not outlive it.
            command.lose()
        return command

    def find_command(self, sandbox: Sandbox, pid: int | None, tag: str | None) -> Command | None:
        if pid is not None:
            return sandbox.commands.get(pid)
        return next((c for c in sandbox.commands.values() if tag and c.tag == tag), None)
