"""The backend protocol: isolated workspaces that hold the run's snapshot and run one command each.

A backend knows nothing about agents or scheduling. Its lifecycle has two levels:

- once per run: :meth:`Backend.start_run` takes (and may pack, upload, check) the run's snapshot
  and returns a :class:`PreparedRun`; :meth:`Backend.end_run` releases it;
- once per task attempt: :meth:`Backend.open` returns a :class:`Sandbox`, used as
  ``async with sandbox:`` — ``prepare``, ``exec``, ``collect`` — and always closed;

plus the class-level :meth:`Backend.cleanup`, which finds and closes what a run that died left
behind. A step that fails for a reason worth retrying raises
:class:`~parallelcc_sdk.errors.TransientBackendError`.

A backend is done when it passes the backend conformance suite (``tests/conformance``).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from ..collection import DEFAULT_EXCLUDED_CHANGES
from ..contract import AgentContext, ChangeStats, Invocation, LineHandler
from ..snapshot import Snapshot, take_snapshot

__all__ = [
    "Backend",
    "LineHandler",
    "PreparedRun",
    "RunSpec",
    "Sandbox",
    "SandboxSpec",
]

LABEL_RUN_ID = "parallelcc_run_id"
LABEL_TASK_ID = "parallelcc_task_id"
LABEL_ATTEMPT = "parallelcc_attempt"


@dataclass(frozen=True)
class RunSpec:
    """What a backend gets once per run."""

    run_id: str
    run_dir: Path
    """The run's output folder on this machine (``run.json`` lives there)."""
    repo: Path
    """The user's repository (its top level); only ever read."""
    exclude: tuple[Path, ...] = ()
    """Folders inside the repository whose untracked files stay out of the snapshot."""
    exclude_changes: tuple[str, ...] = DEFAULT_EXCLUDED_CHANGES
    """gitignore patterns of what is never source, left out of every task's changes unless the
    snapshot tracks it: pass them to :func:`~parallelcc_sdk.collection.collect_command`."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """At least ``parallelcc_run_id``: put them on whatever the run creates, to find it again."""


@dataclass(frozen=True)
class PreparedRun:
    """A run the backend has set up: the snapshot, a scratch folder, and its own state."""

    spec: RunSpec
    snapshot: Snapshot
    scratch_dir: Path
    """A folder on this machine for the run's working files; removed by ``end_run``."""
    state: Any = None
    """Whatever else the backend keeps for the run (an uploaded archive, a template id...)."""


@dataclass(frozen=True)
class SandboxSpec:
    """What a backend needs to open a sandbox for one task attempt."""

    run: PreparedRun
    task_id: str
    attempt: int
    task_dir: Path
    """The task's output folder on this machine (the sandbox may keep logs there, nothing more)."""
    time_limit_s: float | None = None
    """The task's time limit, so a remote sandbox can be given a lifetime to match."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """At least ``parallelcc_run_id``, ``parallelcc_task_id`` and ``parallelcc_attempt``."""

    @property
    def run_id(self) -> str:
        return self.run.spec.run_id

    @property
    def snapshot(self) -> Snapshot:
        return self.run.snapshot

    @property
    def exclude_changes(self) -> tuple[str, ...]:
        return self.run.spec.exclude_changes


class Sandbox(ABC):
    """One isolated workspace for one task attempt.

    Use it as ``async with sandbox:``; inside, call ``prepare``, ``exec``, ``collect`` in that
    order. Leaving the block closes it, whatever happened.
    """

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
        """Writes ``changes.patch`` and ``changed-files/`` under ``dest`` and returns the counts.

        An earlier attempt's outputs in ``dest`` are replaced. Use the shared collection command
        (with the spec's ``exclude_changes``) and
        :func:`~parallelcc_sdk.collection.unpack_changes`, so every backend writes the same bytes.
        """

    @abstractmethod
    async def close(self) -> None:
        """Releases everything (processes, files, remote machines). Safe to call twice."""

    def describe(self) -> Mapping[str, Any]:
        """Where this sandbox lives (a folder, a remote id), for the run's journal; no secrets."""
        return {}

    def cost_usd(self) -> float | None:
        """What this sandbox cost, read once it is closed; ``None`` where nothing is billed."""
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await close_to_the_end(self)


async def close_to_the_end(sandbox: Sandbox) -> None:
    """Closes ``sandbox``, and does not return before it is closed, even if cancelled meanwhile.

    A cancellation that arrives while closing is re-raised once the sandbox is closed.
    """
    closing = asyncio.ensure_future(sandbox.close())
    cancelled = False
    while not closing.done():
        try:
            await asyncio.shield(closing)
        except asyncio.CancelledError:
            if closing.cancelled():
                raise
            cancelled = True
    closing.result()
    if cancelled:
        raise asyncio.CancelledError


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

    def scratch_parent(self) -> Path | None:
        """Where :meth:`start_run` makes the run's scratch folder; ``None``: the system's temp."""
        return None

    async def make_scratch_dir(self, run: RunSpec) -> Path:
        """A new, empty scratch folder for the run, in :meth:`scratch_parent`."""
        return Path(
            await asyncio.to_thread(
                tempfile.mkdtemp, prefix=f"parallelcc-run.{run.run_id}.", dir=self.scratch_parent()
            )
        )

    async def start_run(self, run: RunSpec) -> PreparedRun:
        """Once per run, before any sandbox: makes a scratch folder and takes the snapshot there.

        Work every sandbox of the run shares (packing or uploading the snapshot, checking a
        template) belongs in an override, which usually calls this first.
        """
        scratch = await self.make_scratch_dir(run)
        try:
            snapshot = await take_snapshot(run.repo, scratch / "snapshot.git", exclude=run.exclude)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, scratch, True))
            raise
        return PreparedRun(spec=run, snapshot=snapshot, scratch_dir=scratch)

    prepares_ahead: ClassVar[bool] = False
    """True when opening and preparing sandboxes ahead of a free ``max_concurrent`` slot is
    cheap: up to ``max_concurrent`` more sandboxes then exist at once, waiting. False where a
    sandbox is billed while it exists or counts against an account's limit on live sandboxes:
    then at most ``max_concurrent`` exist at once."""

    supports_setup: ClassVar[bool] = False
    """True when :meth:`run_setup` is implemented (checked before a run with ``setup=`` starts)."""

    def check_setup(self) -> None:  # noqa: B027 - optional hook
        """Raises a :class:`~parallelcc_sdk.errors.ValidationError` when this backend, as
        configured, cannot run a set-up command (checked before the run starts)."""

    async def run_setup(
        self, run: PreparedRun, invocation: Invocation, on_line: LineHandler
    ) -> int:
        """Runs a set-up command once per run, after :meth:`start_run` and before any sandbox,
        in the workspace state every sandbox of the run will start from; returns its exit code.

        Called once per command, in order, in the same state (the engine also runs a
        ``git status`` this way, to check that set-up left tracked files alone). Where that
        state lives is the backend's: the local backend keeps a template workspace in the
        run's scratch folder that each sandbox's workspace is copied from (with overlays: the
        lower layer); a remote backend runs it in the base sandbox it forks the others from.
        """
        raise NotImplementedError(f"the {self.name} backend cannot run a set-up command")

    supports_reattach: ClassVar[bool] = False
    """True when :meth:`reattach` can take over a sandbox that outlived its run's process: a
    resume then spares the sandboxes of the tasks that were running when it died."""

    async def reattach(self, spec: SandboxSpec, described: Mapping[str, Any]) -> Sandbox | None:
        """Takes over the sandbox of an attempt that was running when its run's process died.

        ``described`` is what that sandbox's :meth:`Sandbox.describe` journaled (with its
        ``sandbox_id``); ``spec`` is the same attempt's. Returns a sandbox already prepared whose
        ``exec`` follows the command still running there to its end (its invocation is the
        agent's, for its files and parser, not to be started again), or ``None`` when there is
        nothing to take over (the sandbox or its command is gone): the task is then restarted,
        and whatever is left of that sandbox must have been ended here. Called after
        :meth:`start_run` and the set-up, in place of :meth:`open`.
        """
        return None

    async def end_run(self, run: PreparedRun) -> None:
        """Once per run, after every sandbox is closed: releases what ``start_run`` made."""
        await asyncio.to_thread(shutil.rmtree, run.scratch_dir, True)

    @abstractmethod
    async def open(self, spec: SandboxSpec) -> Sandbox:
        """Creates a sandbox (not yet prepared). Must not leak anything if it raises."""

    def describe(self) -> Mapping[str, Any]:
        """The backend's configuration for ``run.json``; never includes secrets."""
        return {"name": self.name}

    def describe_run(self, run: PreparedRun) -> Mapping[str, Any]:
        """What :meth:`start_run` made that outlives a crash (a base sandbox's id...), for the
        run's journal, so :meth:`cleanup` can find it; no secrets."""
        return {}

    def secrets(self) -> tuple[str, ...]:
        """Secret values this backend holds (keys, tokens), redacted from everything written."""
        return ()

    @classmethod
    async def cleanup(
        cls, run_dir: Path | None = None, *, spare: Collection[str] = ()
    ) -> list[str]:
        """Closes what runs that died left behind; returns a description of each thing closed.

        ``run_dir`` limits it to one run (its journal says how the backend was configured);
        ``None`` looks for every run's leftovers. What belongs to a run that is still going is
        left alone, and so are the sandboxes whose ids are in ``spare`` (a resume re-attaches to
        them; only passed to a backend that ``supports_reattach``).
        """
        return []
