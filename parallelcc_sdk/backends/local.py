"""The local backend: one isolated workspace per task on this machine, no account needed."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from ..agents.base import AgentContext, Invocation
from ..errors import BackendUnavailableError, ValidationError
from ..models import ChangeStats
from ..workspace import collect_changes, create_workspace
from ._process import SANDBOX_MARKER, kill_marked, run_streaming
from .base import Backend, LineHandler, Sandbox, SandboxSpec
from .isolation import PRIVATE_PREFIX, bubblewrap_argv, bubblewrap_works

Isolation = Literal["auto", "bubblewrap", "none"]
_ISOLATIONS = ("auto", "bubblewrap", "none")


class LocalBackend(Backend):
    """Runs each task in its own folder on this machine, as a child process.

    ``isolation="bubblewrap"`` makes the host read-only for the task, which can write only its
    workspace, a private home and a private /tmp; ``"none"`` runs it as a plain child process;
    ``"auto"`` (the default) uses bubblewrap when it works here. ``work_dir`` is where workspaces
    are made (the system temporary folder by default); ``keep_workspaces`` leaves them on disk.
    """

    name = "local"

    def __init__(
        self,
        isolation: Isolation = "auto",
        *,
        work_dir: str | os.PathLike[str] | None = None,
        keep_workspaces: bool = False,
    ) -> None:
        if isolation not in _ISOLATIONS:
            raise ValidationError(
                f"LocalBackend(isolation={isolation!r}) is not supported; "
                f"use one of {', '.join(repr(i) for i in _ISOLATIONS)}."
            )
        self.isolation: Isolation = isolation
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.keep_workspaces = keep_workspaces

    @property
    def runs_on_host(self) -> bool:
        return True

    @property
    def uses_bubblewrap(self) -> bool:
        if self.isolation == "none":
            return False
        return self.isolation == "bubblewrap" or bubblewrap_works()

    def validate(self) -> None:
        if self.isolation == "bubblewrap" and not bubblewrap_works():
            raise BackendUnavailableError(
                "LocalBackend(isolation='bubblewrap') cannot start a sandbox here; install it "
                "with `apt-get install bubblewrap`, or use isolation='none'."
            )
        if self.work_dir is not None and not self.work_dir.is_dir():
            raise ValidationError(
                f"LocalBackend(work_dir={str(self.work_dir)!r}) is not a folder; create it first."
            )

    async def open(self, spec: SandboxSpec) -> Sandbox:
        root = Path(
            await asyncio.to_thread(
                tempfile.mkdtemp,
                prefix=f"{PRIVATE_PREFIX}{spec.task_id}-",
                dir=self.work_dir,
            )
        )
        return LocalSandbox(
            root=root,
            spec=spec,
            bubblewrap=self.uses_bubblewrap,
            keep=self.keep_workspaces,
        )

    def describe(self) -> Mapping[str, Any]:
        return {"name": self.name, "isolation": self.isolation, "bubblewrap": self.uses_bubblewrap}


class LocalSandbox(Sandbox):
    """A folder holding ``workspace/``, ``home/`` and ``tmp/`` for one task attempt."""

    def __init__(self, *, root: Path, spec: SandboxSpec, bubblewrap: bool, keep: bool) -> None:
        self.root = root
        self.spec = spec
        self.bubblewrap = bubblewrap
        self.keep = keep
        self.sandbox_id = f"local:{root.name}"
        self.workspace = root / "workspace"
        self.home = root / "home"
        self.tmp = root / "tmp"
        self._closed = False

    @property
    def context(self) -> AgentContext:
        return AgentContext(
            workspace=str(self.workspace), home=str(self.home), runs_as_root=os.geteuid() == 0
        )

    async def prepare(self) -> None:
        self.home.mkdir()
        self.tmp.mkdir()
        await create_workspace(self.spec.snapshot, self.workspace)

    async def exec(self, invocation: Invocation, on_line: LineHandler) -> int:
        await asyncio.to_thread(self._write_files, invocation)
        env = {
            **os.environ,
            **invocation.env,
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            SANDBOX_MARKER: self.sandbox_id,
        }
        argv: list[str] = list(invocation.argv)
        if self.bubblewrap:
            argv = bubblewrap_argv(
                argv,
                writable=[self.workspace, self.home, self.tmp],
                # The user's repository is mounted read-only at its own path: under the private
                # /tmp it would otherwise be an empty, writable folder where writes vanish silently.
                readable=[self.spec.snapshot.repo, *self.spec.snapshot.object_dirs],
                cwd=self.workspace,
            )
        return await run_streaming(
            argv, cwd=self.workspace, env=env, stdin=invocation.stdin, on_line=on_line
        )

    async def collect(self, dest: Path) -> ChangeStats:
        return await collect_changes(self.workspace, self.spec.snapshot.commit, dest)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Anything the command left running (background jobs, daemons that called setsid).
        await asyncio.to_thread(kill_marked, self.sandbox_id)
        if not self.keep:
            await asyncio.to_thread(shutil.rmtree, self.root, True)

    def _write_files(self, invocation: Invocation) -> None:
        for file in invocation.files:
            path = Path(file.path)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Created with its final mode: a credential is never readable by others, even briefly.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, file.mode)
            with os.fdopen(fd, "wb") as handle:
                handle.write(file.content)
            os.chmod(path, file.mode)
