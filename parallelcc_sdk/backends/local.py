"""The local backend: one isolated workspace per task on this machine, no account needed."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from ..agents.base import AgentContext, Invocation
from ..environment import checked_passthrough, task_environment
from ..errors import BackendUnavailableError, ValidationError
from ..models import ChangeStats
from ..workspace import collect_changes, create_workspace
from ._cgroup import Cgroup
from ._process import SANDBOX_MARKER, kill_marked, run_streaming
from .base import Backend, LineHandler, Sandbox, SandboxSpec
from .isolation import (
    BWRAP,
    PRIVATE_PREFIX,
    Bubblewrap,
    MountPlan,
    bubblewrap_argv,
    find_bubblewrap,
)
from .visibility import checked_paths, default_hidden, executable_toolchain, toolchains

Isolation = Literal["auto", "bubblewrap", "none"]
_ISOLATIONS = ("auto", "bubblewrap", "none")
_warned_fallbacks: set[str | None] = set()


class IsolationWarning(UserWarning):
    """Tasks will run without a sandbox, though the user did not ask for that."""


class LocalBackend(Backend):
    """Runs each task in its own folder on this machine, as a child process.

    ``isolation="bubblewrap"`` runs the task in a bubblewrap sandbox: the host is read-only, the
    task holds no capability (and, where user namespaces work, is not root even when the SDK
    is), it can write only its workspace, a private home and a private /tmp, and it cannot see
    the user's homes, the run's outputs or other sandboxes (see ``visibility`` for the rule;
    ``hide=`` hides more paths, ``expose=`` makes more readable). ``"none"`` runs it as a plain
    child process; ``"auto"`` (the default) uses bubblewrap when it works here, and warns once
    when it does not. ``work_dir`` is where workspaces are made (the system temporary folder by
    default); ``keep_workspaces`` leaves them on disk. A task's environment holds only an
    allow-list of this machine's variables (see ``environment``); ``env_passthrough`` names more
    to let through (``"PIP_*"`` lets through every ``PIP_`` variable).
    """

    name = "local"

    def __init__(
        self,
        isolation: Isolation = "auto",
        *,
        work_dir: str | os.PathLike[str] | None = None,
        keep_workspaces: bool = False,
        hide: Sequence[str | os.PathLike[str]] = (),
        expose: Sequence[str | os.PathLike[str]] = (),
        env_passthrough: Sequence[str] = (),
    ) -> None:
        if isolation not in _ISOLATIONS:
            raise ValidationError(
                f"LocalBackend(isolation={isolation!r}) is not supported; "
                f"use one of {', '.join(repr(i) for i in _ISOLATIONS)}."
            )
        self.isolation: Isolation = isolation
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.keep_workspaces = keep_workspaces
        self.hidden = (*default_hidden(os.environ), *checked_paths("hide", hide))
        self.exposed = checked_paths("expose", expose)
        self.env_passthrough = checked_passthrough(env_passthrough)

    @property
    def runs_on_host(self) -> bool:
        return True

    @property
    def bubblewrap(self) -> Bubblewrap | None:
        """The bubblewrap sandbox tasks will run in, or ``None`` when they run unsandboxed."""
        return None if self.isolation == "none" else find_bubblewrap()

    @property
    def uses_bubblewrap(self) -> bool:
        return self.bubblewrap is not None

    @property
    def isolation_in_force(self) -> str:
        return "bubblewrap" if self.uses_bubblewrap else "none"

    @property
    def isolation_declined(self) -> bool:
        return self.isolation == "none"

    def validate(self) -> None:
        if self.isolation != "none" and self.bubblewrap is None:
            if self.isolation == "bubblewrap":
                raise BackendUnavailableError(
                    "LocalBackend(isolation='bubblewrap') cannot start a sandbox here; install "
                    "it with `apt-get install bubblewrap`, or use isolation='none'."
                )
            _warn_fallback()
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
        return LocalSandbox(root=root, spec=spec, backend=self, bubblewrap=self.bubblewrap)

    def describe(self) -> Mapping[str, Any]:
        bwrap = self.bubblewrap
        return {
            "name": self.name,
            "isolation": self.isolation,
            "isolation_in_force": self.isolation_in_force,
            "bubblewrap": bwrap is not None,
            "sandbox_user": bwrap.describe_user() if bwrap is not None else None,
            # Beside these, a task never sees the run's output folder nor other sandboxes.
            "hidden": [str(p) for p in self.hidden] if bwrap is not None else [],
            "exposed": [str(p) for p in self.exposed_for(os.environ.get("PATH", os.defpath))]
            if bwrap is not None
            else [],
            "env_passthrough": list(self.env_passthrough),
        }

    def exposed_for(self, path_env: str) -> tuple[Path, ...]:
        """What stays readable inside hidden folders, for a command with this PATH."""
        return (*toolchains(path_env, self.hidden), *self.exposed)

    def sandbox_parents(self) -> tuple[Path, ...]:
        """Every folder that holds sandboxes or run snapshots of this SDK."""
        temp = Path(tempfile.gettempdir()).resolve()
        return (self.work_dir.resolve(), temp) if self.work_dir is not None else (temp,)


def _warn_fallback() -> None:
    # Once per process and bubblewrap install: the isolation in force is also in every record.
    executable = shutil.which(BWRAP)
    if executable in _warned_fallbacks:
        return
    _warned_fallbacks.add(executable)
    why = "is not installed" if executable is None else f"({executable}) cannot start a sandbox"
    warnings.warn(
        f"bubblewrap {why}, so LocalBackend(isolation='auto') runs tasks WITHOUT a sandbox, "
        "with full access to this machine; install a working bubblewrap "
        "(`apt-get install bubblewrap`), or pass isolation='none' to choose this on purpose.",
        IsolationWarning,
        stacklevel=4,
    )


class LocalSandbox(Sandbox):
    """A folder holding ``workspace/``, ``home/`` and ``tmp/`` for one task attempt."""

    def __init__(
        self, *, root: Path, spec: SandboxSpec, backend: LocalBackend, bubblewrap: Bubblewrap | None
    ) -> None:
        self.root = root
        self.spec = spec
        self.backend = backend
        self.bubblewrap = bubblewrap
        self.keep = backend.keep_workspaces
        self.sandbox_id = f"local:{root.name}"
        self.isolation = "bubblewrap" if bubblewrap is not None else "none"
        self.workspace = root / "workspace"
        self.home = root / "home"
        self.tmp = root / "tmp"
        self._cgroup: Cgroup | None = None
        self._closed = False

    @property
    def context(self) -> AgentContext:
        # Who the command really runs as: in its own user namespace it is not root, even when
        # the SDK is.
        as_root = self.bubblewrap.runs_as_root if self.bubblewrap else os.geteuid() == 0
        return AgentContext(
            workspace=str(self.workspace), home=str(self.home), runs_as_root=as_root
        )

    async def prepare(self) -> None:
        self.home.mkdir()
        self.tmp.mkdir()
        await create_workspace(self.spec.snapshot, self.workspace)

    async def exec(self, invocation: Invocation, on_line: LineHandler) -> int:
        await asyncio.to_thread(self._write_files, invocation)
        env = task_environment(
            os.environ,
            passthrough=self.backend.env_passthrough,
            explicit=invocation.env,
            fixed={
                "HOME": str(self.home),
                "TMPDIR": str(self.tmp),
                SANDBOX_MARKER: self.sandbox_id,
            },
        )
        argv: list[str] = list(invocation.argv)
        if self.bubblewrap is not None:
            plan = await asyncio.to_thread(self._mount_plan, argv[0], env["PATH"])
            argv = bubblewrap_argv(argv, bwrap=self.bubblewrap, plan=plan, cwd=self.workspace)
        if self._cgroup is None:
            self._cgroup = await asyncio.to_thread(Cgroup.create, self.root.name)
        if self._cgroup is not None:
            argv = self._cgroup.wrap(argv)
        return await run_streaming(
            argv,
            cwd=self.workspace,
            env=env,
            stdin=invocation.stdin,
            on_line=on_line,
            kill_leftovers=self._kill_processes,
        )

    def _mount_plan(self, executable: str, path_env: str) -> MountPlan:
        hidden = self.backend.hidden
        task_dir = self.spec.task_dir
        return MountPlan(
            writable=[self.workspace, self.home, self.tmp],
            # The user's repository is mounted read-only at its own path: under the private
            # /tmp or a hidden home it would otherwise be an empty folder.
            readable=[self.spec.snapshot.repo, *self.spec.snapshot.object_dirs],
            # The run's folder and the output folder that holds it: other tasks' logs and
            # changes, and other runs.
            hidden=[*hidden, task_dir.parent, task_dir.parent.parent],
            exposed=[
                *self.backend.exposed_for(path_env),
                *executable_toolchain(executable, path_env, hidden),
            ],
            sandbox_parents=self.backend.sandbox_parents(),
        )

    async def _kill_processes(self) -> None:
        await asyncio.to_thread(self._kill_processes_now)

    def _kill_processes_now(self) -> None:
        # The cgroup holds everything the command started; the marker finds what escaped it
        # (a task that moved itself out), or everything where no cgroup could be made.
        if self._cgroup is not None:
            self._cgroup.kill()
        kill_marked(self.sandbox_id)

    async def collect(self, dest: Path) -> ChangeStats:
        return await collect_changes(self.workspace, self.spec.snapshot.commit, dest)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Anything the command left running (background jobs, daemons that called setsid).
        await self._kill_processes()
        if self._cgroup is not None:
            await asyncio.to_thread(self._cgroup.remove)
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
