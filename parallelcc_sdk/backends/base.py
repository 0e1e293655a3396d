"""The backend protocol: isolated workspaces that hold the run's snapshot and run one command each.

A backend knows nothing about agents or scheduling. The engine opens one :class:`Sandbox` per task
attempt, and always closes it, whatever happens.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..agents.base import AgentContext, Invocation, Stream
from ..models import ChangeStats
from ..snapshot import Snapshot

LineHandler = Callable[[Stream, str], None]


@dataclass(frozen=True)
class SandboxSpec:
    """What a backend needs to open a sandbox for one task attempt."""

    run_id: str
    task_id: str
    attempt: int
    snapshot: Snapshot
    task_dir: Path
    """The task's output folder on this machine (the sandbox may keep logs there, nothing more)."""


class Sandbox(ABC):
    """One isolated workspace. Methods are called in order: prepare, exec, collect, close."""

    sandbox_id: str
    isolation: str | None = None
    """What isolates this sandbox's command from the machine running the SDK (``"bubblewrap"``,
    a remote machine's kind), ``"none"``, or ``None`` when the backend does not say."""

    @property
    @abstractmethod
    def context(self) -> AgentContext:
        """The paths the command sees."""

    @abstractmethod
    async def prepare(self) -> None:
        """Fills the workspace with the run's snapshot."""

    @abstractmethod
    async def exec(self, invocation: Invocation, on_line: LineHandler) -> int:
        """Runs the command to its end, calling ``on_line`` for every line of output.

        Returns the exit code. On cancellation the command and everything it started are killed
        before the ``CancelledError`` propagates.
        """

    @abstractmethod
    async def collect(self, dest: Path) -> ChangeStats:
        """Writes ``changes.patch`` and ``changed-files/`` under ``dest`` and returns the counts."""

    @abstractmethod
    async def close(self) -> None:
        """Releases everything (processes, files, remote machines). Safe to call twice."""


class Backend(ABC):
    """Creates sandboxes. One file per backend; no engine changes."""

    name: ClassVar[str]

    def validate(self) -> None:  # noqa: B027 - optional hook
        """Raises a :class:`~parallelcc_sdk.errors.ValidationError` if the backend cannot run."""

    @property
    def runs_on_host(self) -> bool:
        """True when commands run on this machine (so agent executables must exist here)."""
        return False

    @property
    def isolation_in_force(self) -> str:
        """What will isolate tasks from this machine, or ``"none"``: commands that run here are
        not isolated unless the backend says how."""
        return "none" if self.runs_on_host else self.name

    @property
    def isolation_declined(self) -> bool:
        """True when the user asked for no isolation (not when isolation merely is unavailable)."""
        return False

    @abstractmethod
    async def open(self, spec: SandboxSpec) -> Sandbox:
        """Creates a sandbox (not yet prepared). Must not leak anything if it raises."""

    def describe(self) -> Mapping[str, Any]:
        """The backend's configuration for ``run.json``; never includes secrets."""
        return {"name": self.name}
