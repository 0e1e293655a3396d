"""The local backend: one isolated workspace per task on this machine, no account needed.

Folder names carry the run id, so whatever a run that died left behind can be found again:
``parallelcc-run.<run_id>.*`` is the run's scratch folder (the snapshot), and
``parallelcc-box.<run_id>.<task>.<attempt>.*`` one sandbox.

Workspaces are copy-on-write overlays where this machine can mount them (see ``overlay``): the
run's snapshot is checked out once, into the run's scratch folder, as the read-only lower layer
every task shares, and a task's workspace costs three empty folders, whatever the repository's
size; collecting its changes looks only at what its upper layer holds. Elsewhere each task gets
a git checkout of its own. Both give the same bytes. Both start with
:data:`~parallelcc_sdk.backends.isolation.PRIVATE_PREFIX`, so no sandbox ever shows them to a
task. Each holds an ``owner`` file naming the process that made it, and every process of a
sandbox carries the sandbox's id and that owner in its environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
import time
import warnings
import weakref
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .._quiet import run_quietly
from ..collection import ARCHIVE_NAME, collect_command, unpack_changes, write_no_changes
from ..contract import AgentContext, ChangeStats, Invocation, LineHandler
from ..environment import checked_passthrough, task_environment
from ..errors import (
    BackendUnavailableError,
    ChangeCollectionError,
    ParallelCCError,
    ValidationError,
)
from ..runfolder.reader import read_journal
from ..runfolder.writer import mark_interrupted
from ..workspace import create_workspace
from ._cgroup import Cgroup, own_cgroup
from ._process import (
    OWNER_MARKER,
    SANDBOX_MARKER,
    kill_processes,
    marked_processes,
    owner_alive,
    owner_token,
    run_streaming,
)
from .base import Backend, PreparedRun, RunSpec, Sandbox, SandboxSpec
from .isolation import (
    BWRAP,
    PRIVATE_PREFIX,
    Bubblewrap,
    MountPlan,
    bubblewrap_argv,
    find_bubblewrap,
)
from .overlay import (
    OverlayMode,
    TaskLayers,
    changed_paths_from_upper,
    create_task_layers,
    materialize_lower,
    overlay_command,
    overlay_mode,
    pathspec_list,
    remove_task_layers,
)
from .visibility import checked_paths, default_hidden, executable_toolchain, toolchains

Isolation = Literal["auto", "bubblewrap", "none"]
_ISOLATIONS = ("auto", "bubblewrap", "none")
WorkspaceKind = Literal["auto", "overlay", "checkout"]
_WORKSPACES = ("auto", "overlay", "checkout")
_warned_fallbacks: set[str | None] = set()


class IsolationWarning(UserWarning):
    """Tasks will run without a sandbox, though the user did not ask for that."""


_RUN_PREFIX = f"{PRIVATE_PREFIX}run."
_BOX_PREFIX = f"{PRIVATE_PREFIX}box."
_SANDBOX_ID_PREFIX = "local:"
_OWNER_FILE = "owner"
_RUN_DIR_FILE = "run-dir"
# How long a cleanup waits for the processes it killed to be gone before removing their folders.
_KILLED_GONE_S = 5.0
_TASK_NAME_CHARS = 40
# A folder is made a moment before its owner file is written: a cleanup leaves one that young.
_OWNERLESS_GRACE_S = 60.0
_COLLECT_ERROR_LINES = 5
_SETUP_DIR = "setup"
_LOWER_DIR = "lower"


@dataclass(frozen=True)
class _Overlays:
    """A run's shared lower layer, and how task overlays are mounted over it."""

    mode: OverlayMode
    lower: Path

logger = logging.getLogger("parallelcc_sdk")


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

    ``workspace="overlay"`` gives each task a copy-on-write overlay of the run's snapshot
    (checked out once per run); ``"checkout"`` a git checkout of its own; ``"auto"`` (the
    default) overlays where they can be mounted in ``work_dir``, checkouts elsewhere. The kind in
    force is in ``run.json`` and in each task's ``sandbox_info``.
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
        workspace: WorkspaceKind = "auto",
    ) -> None:
        if workspace not in _WORKSPACES:
            raise ValidationError(
                f"LocalBackend(workspace={workspace!r}) is not supported; "
                f"use one of {', '.join(repr(w) for w in _WORKSPACES)}."
            )
        if isolation not in _ISOLATIONS:
            raise ValidationError(
                f"LocalBackend(isolation={isolation!r}) is not supported; "
                f"use one of {', '.join(repr(i) for i in _ISOLATIONS)}."
            )
        self.isolation: Isolation = isolation
        self.workspace: WorkspaceKind = workspace
        self.work_dir = Path(work_dir).resolve() if work_dir is not None else None
        self.keep_workspaces = keep_workspaces
        self.hide = checked_paths("hide", hide)
        self.hidden = (*default_hidden(os.environ), *self.hide)
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

    @property
    def overlay_mode(self) -> OverlayMode | None:
        """How task overlays are mounted, or ``None`` when tasks get checkouts.

        The first call probes ``work_dir``'s filesystem (a tiny overlay, some 60 ms); later
        ones are answered from a cache.
        """
        if self.workspace == "checkout":
            return None
        return overlay_mode(self.work_dir or Path(tempfile.gettempdir()))

    @property
    def workspace_in_force(self) -> Literal["overlay", "checkout"]:
        return "overlay" if self.overlay_mode is not None else "checkout"

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
        if self.workspace == "overlay" and self.overlay_mode is None:
            raise _no_overlays(self.work_dir)

    def scratch_parent(self) -> Path | None:
        return self.work_dir

    async def make_scratch_dir(self, run: RunSpec) -> Path:
        # PRIVATE_PREFIX: bubblewrap never shows the snapshot's folder to a task.
        return await _make_owned_dir(
            self.work_dir, f"{_RUN_PREFIX}{run.run_id}.", run_dir=run.run_dir.resolve()
        )

    async def start_run(self, run: RunSpec) -> PreparedRun:
        prepared = await super().start_run(run)
        try:
            mode = await asyncio.to_thread(lambda: self.overlay_mode)
            if mode is None:
                if self.workspace == "overlay":
                    raise _no_overlays(self.work_dir)
                return prepared
            # Once per run: the checkout every task's overlay shares, read-only.
            lower = prepared.scratch_dir / _LOWER_DIR
            await materialize_lower(prepared.snapshot, lower)
        except BaseException:
            await asyncio.shield(self.end_run(prepared))
            raise
        return PreparedRun(
            spec=prepared.spec,
            snapshot=prepared.snapshot,
            scratch_dir=prepared.scratch_dir,
            state=_Overlays(mode=mode, lower=lower),
        )

    supports_setup = True
    # Folders on this machine: a task prepared ahead costs nothing while it waits.
    prepares_ahead = True

    async def run_setup(
        self, run: PreparedRun, invocation: Invocation, on_line: LineHandler
    ) -> int:
        # A sandbox like a task's, kept in the run's scratch folder: its workspace becomes the
        # template every task's workspace is copied from, or the lower layer of every task's
        # overlay (see setup_template).
        root = run.scratch_dir / _SETUP_DIR
        first = not root.exists()
        if first:
            await asyncio.to_thread(root.mkdir)
            (root / _OWNER_FILE).write_text(owner_token() + "\n", encoding="utf-8")
        spec = SandboxSpec(run=run, task_id="setup", attempt=1, task_dir=run.spec.run_dir)
        # Set-up runs in a checkout, never in an overlay: with overlays, that checkout is the
        # run's lower layer itself (moved, not copied), so every task's overlay starts from it.
        sandbox = LocalSandbox(root=root, spec=spec, backend=self, bubblewrap=self.bubblewrap)
        sandbox.keep = True  # closing kills what it left running, and keeps the template
        overlays = run.state if isinstance(run.state, _Overlays) else None
        async with sandbox:
            if first:
                if overlays is not None:
                    await asyncio.to_thread(sandbox.adopt_workspace, overlays.lower)
                else:
                    await sandbox.prepare()
                # The ignore rules the snapshot was taken with, so `git status` there (and in
                # the tasks' copies) sees what the change collection will see.
                if run.snapshot.exclude_file.is_file():
                    info = sandbox.workspace / ".git" / "info"
                    await asyncio.to_thread(info.mkdir, parents=True, exist_ok=True)
                    await asyncio.to_thread(
                        shutil.copyfile, run.snapshot.exclude_file, info / "exclude"
                    )
            return await sandbox.exec(invocation, on_line)

    async def open(self, spec: SandboxSpec) -> Sandbox:
        task = spec.task_id[:_TASK_NAME_CHARS]
        root = await _make_owned_dir(
            self.work_dir, f"{_BOX_PREFIX}{spec.run_id}.{task}.{spec.attempt}."
        )
        overlays = spec.run.state if isinstance(spec.run.state, _Overlays) else None
        if overlays is not None:
            # After a set-up, its workspace (the checkout moved there) is the lower layer.
            template = await asyncio.to_thread(setup_template, spec.run)
            if template is not None:
                # It differs from the snapshot in ignored files only (the set-up step checks), so
                # an empty upper layer still means no change.
                overlays = dataclasses.replace(overlays, lower=template)
        return LocalSandbox(
            root=root, spec=spec, backend=self, bubblewrap=self.bubblewrap, overlays=overlays
        )

    def describe(self) -> Mapping[str, Any]:
        bwrap = self.bubblewrap
        described: dict[str, Any] = {
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
            # The constructor's own arguments, so a resumed run can build this backend again.
            "hide": [str(p) for p in self.hide],
            "expose": [str(p) for p in self.exposed],
            "workspace": self.workspace,
            "workspace_in_force": self.workspace_in_force,
            "overlay_mode": self.overlay_mode,
        }
        if self.work_dir is not None:
            described["work_dir"] = str(self.work_dir)
        return described

    def exposed_for(self, path_env: str) -> tuple[Path, ...]:
        """What stays readable inside hidden folders, for a command with this PATH."""
        return (*toolchains(path_env, self.hidden), *self.exposed)

    def sandbox_parents(self) -> tuple[Path, ...]:
        """Every folder that holds sandboxes or run snapshots of this SDK."""
        temp = Path(tempfile.gettempdir()).resolve()
        return (self.work_dir.resolve(), temp) if self.work_dir is not None else (temp,)

    @classmethod
    async def cleanup(
        cls,
        run_dir: Path | None = None,
        *,
        spare: Collection[str] = (),  # nothing local outlives its run's process
    ) -> list[str]:
        """Kills leftover sandbox processes and removes leftover folders of runs that died.

        With ``run_dir``, only that run's (in the ``work_dir`` its journal names); without, every
        run's in the system's temporary folder. A run whose process is still alive is left alone.
        """
        if run_dir is None:
            return await asyncio.to_thread(_cleanup, None, Path(tempfile.gettempdir()))
        journal = await asyncio.to_thread(read_journal, run_dir)
        backend = journal.config.get("backend")
        work_dir = backend.get("work_dir") if isinstance(backend, dict) else None
        parent = Path(work_dir) if isinstance(work_dir, str) else Path(tempfile.gettempdir())
        run_over = journal.recorded_state.is_final or journal.process_alive is False
        return await asyncio.to_thread(_cleanup, journal.run_id, parent, run_over=run_over)


def _no_overlays(work_dir: Path | None) -> BackendUnavailableError:
    where = str(work_dir) if work_dir is not None else "the temporary folder"
    return BackendUnavailableError(
        f"LocalBackend(workspace='overlay') cannot mount overlays in {where} here (it needs "
        "Linux overlayfs and `unshare`, as root or in a user namespace); use "
        "workspace='checkout', or a work_dir on another filesystem."
    )


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
        self,
        *,
        root: Path,
        spec: SandboxSpec,
        backend: LocalBackend,
        bubblewrap: Bubblewrap | None,
        overlays: _Overlays | None = None,
    ) -> None:
        self.root = root
        self.spec = spec
        self.backend = backend
        self.bubblewrap = bubblewrap
        self.keep = backend.keep_workspaces
        self.sandbox_id = f"{_SANDBOX_ID_PREFIX}{root.name}"
        self.isolation = "bubblewrap" if bubblewrap is not None else "none"
        # With overlays, the workspace is the mount point: empty on the host, the snapshot
        # plus the task's changes inside the task's own mount namespace.
        self.workspace = root / "workspace"
        self.overlays = overlays
        self._layers: TaskLayers | None = None
        self.home = root / "home"
        self.tmp = root / "tmp"
        self._owner = owner_token()
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

    def describe(self) -> Mapping[str, Any]:
        described: dict[str, Any] = {"root": str(self.root), "isolation": self.isolation}
        if self.overlays is not None:
            described.update(workspace="overlay", overlay_mode=self.overlays.mode)
        else:
            described["workspace"] = "checkout"
        return described

    async def prepare(self) -> None:
        if self.overlays is not None:
            self._layers = await asyncio.to_thread(self._make_folders)
            return
        await asyncio.to_thread(self._make_folders)
        template = setup_template(self.spec.run)
        if template is not None:
            await copy_tree(template, self.workspace)
        else:
            await create_workspace(self.spec.snapshot, self.workspace)

    def _make_folders(self) -> TaskLayers | None:
        self.home.mkdir(exist_ok=True)
        self.tmp.mkdir(exist_ok=True)
        # O(1): the overlay's folders (upper, work, the mount point); nothing is copied.
        return create_task_layers(self.root) if self.overlays is not None else None

    def adopt_workspace(self, checkout: Path) -> None:
        """Makes the folders, with the existing ``checkout`` moved in as the workspace."""
        self._make_folders()
        checkout.rename(self.workspace)

    def _in_overlay(self, argv: list[str]) -> list[str]:
        """``argv`` run with the task's overlay mounted at its workspace, where it has one."""
        if self.overlays is None or self._layers is None:
            return argv
        layers = self._layers
        return overlay_command(
            argv,
            self.overlays.lower,
            layers.upper,
            layers.work,
            layers.mountpoint,
            mode=self.overlays.mode,
        )

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
                OWNER_MARKER: self._owner,
            },
        )
        argv: list[str] = list(invocation.argv)
        if self.bubblewrap is not None:
            plan = await asyncio.to_thread(
                self._mount_plan,
                writable=[self.workspace, self.home, self.tmp],
                # The user's repository is mounted read-only at its own path: under the private
                # /tmp or a hidden home it would otherwise be an empty folder.
                readable=[self.spec.snapshot.repo, *self.spec.snapshot.object_dirs],
                executable=argv[0],
                path_env=env["PATH"],
            )
            argv = bubblewrap_argv(argv, bwrap=self.bubblewrap, plan=plan, cwd=self.workspace)
        argv = await asyncio.to_thread(self._in_overlay, argv)
        return await self._run(argv, env=env, stdin=invocation.stdin, on_line=on_line)

    def _mount_plan(
        self,
        *,
        writable: Sequence[Path],
        readable: Sequence[Path],
        executable: str,
        path_env: str,
    ) -> MountPlan:
        hidden = self.backend.hidden
        run_dir = self.spec.run.spec.run_dir
        return MountPlan(
            writable=writable,
            readable=readable,
            # The run's folder and the output folder that holds it: other tasks' logs and
            # changes, and other runs. Other sandboxes and runs' scratch folders are hidden by
            # their name (``sandbox_parents``); what this sandbox needs of its own and of its
            # run's snapshot is mounted back by ``writable`` and ``readable``.
            hidden=[*hidden, run_dir, run_dir.parent],
            exposed=[
                *self.backend.exposed_for(path_env),
                *executable_toolchain(executable, path_env, hidden),
            ],
            sandbox_parents=self.backend.sandbox_parents(),
        )

    async def _kill_processes(self) -> None:
        # The cgroup holds everything the command started; the marker finds what escaped it
        # (a task that moved itself out), or everything where no cgroup could be made.
        if self._cgroup is not None:
            await asyncio.to_thread(self._cgroup.kill)
        await _kill_marked_soon(self.sandbox_id)

    async def collect(self, dest: Path) -> ChangeStats:
        snapshot = self.spec.snapshot
        stage_lists: tuple[str, str] | None = None
        if self.overlays is not None and self._layers is not None:
            # The task's processes are gone (exec kills them all before it returns): its upper
            # layer holds every path it changed, and nothing else can differ from the snapshot.
            changed, deleted = await asyncio.to_thread(
                changed_paths_from_upper, self._layers.upper, self.overlays.lower
            )
            if not changed and not deleted:
                return await asyncio.to_thread(write_no_changes, dest)
        # A fresh folder per collection that no task process can reach: bubblewrap binds it only
        # into the collecting command's own sandbox.
        out = self.root / "collect"
        await asyncio.to_thread(_fresh_dir, out)
        if self.overlays is not None and self._layers is not None:
            stage_lists = (str(out / "deleted"), str(out / "changed"))
            await asyncio.to_thread((out / "deleted").write_bytes, pathspec_list(deleted))
            await asyncio.to_thread((out / "changed").write_bytes, pathspec_list(changed))
        exclude: Path | None = None
        if snapshot.exclude_file.is_file():
            exclude = out / "exclude"
            await asyncio.to_thread(shutil.copyfile, snapshot.exclude_file, exclude)
        object_dirs = [str(d) for d in snapshot.object_dirs]
        argv = list(
            collect_command(
                str(self.workspace),
                snapshot.commit,
                str(out),
                object_dirs=object_dirs,
                exclude_file=str(exclude) if exclude is not None else None,
                exclude_changes=self.spec.exclude_changes,
                stage_lists=stage_lists,
            )
        )
        # The task's allow-list without its passthrough: git needs nothing the user lets through.
        env = task_environment(
            os.environ,
            explicit={},
            fixed={
                "HOME": str(out),
                "TMPDIR": str(out),
                SANDBOX_MARKER: self.sandbox_id,
                OWNER_MARKER: self._owner,
            },
        )
        if self.bubblewrap is not None:
            # The same sandbox as the task's (same user, same hidden paths), but the workspace
            # is only read and the archive is written to this sandbox's own folder: the task's
            # output folder is hidden, and the host unpacks the archive from here.
            plan = await asyncio.to_thread(
                self._mount_plan,
                writable=[out],
                readable=[self.workspace, *snapshot.object_dirs],
                executable="git",
                path_env=env["PATH"],
            )
            argv = bubblewrap_argv(argv, bwrap=self.bubblewrap, plan=plan, cwd=out)
        # The overlay exists only in a mount namespace: collecting mounts it again.
        argv = await asyncio.to_thread(self._in_overlay, argv)
        errors: list[str] = []

        def on_line(stream: str, line: str) -> None:
            if stream == "stderr":
                errors.append(line)
                del errors[:-_COLLECT_ERROR_LINES]

        code = await self._run(argv, env=env, stdin=b"", on_line=on_line, cwd=out)
        if code != 0:
            detail = " / ".join(errors) or f"exit code {code}"
            raise ChangeCollectionError(f"change collection failed: {detail}")
        return await asyncio.to_thread(unpack_changes, out / ARCHIVE_NAME, dest)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Anything the command left running (background jobs, daemons that called setsid).
        await self._kill_processes()
        if self._cgroup is not None:
            await asyncio.to_thread(self._cgroup.remove)
        if not self.keep:
            # The overlay's work folder holds folders of mode 000 (see remove_task_layers).
            await asyncio.to_thread(remove_task_layers, self.root)

    async def _run(
        self,
        argv: list[str],
        *,
        env: Mapping[str, str],
        stdin: bytes,
        on_line: LineHandler,
        cwd: Path | None = None,
    ) -> int:
        if self._cgroup is None:
            self._cgroup = await asyncio.to_thread(Cgroup.create, self.root.name)
        if self._cgroup is not None:
            argv = self._cgroup.wrap(argv)
        # Once the command exits, or if it is cancelled or fails, what left its process group
        # (setsid, daemons) goes too.
        return await run_streaming(
            argv,
            cwd=cwd or self.workspace,
            env=env,
            stdin=stdin,
            on_line=on_line,
            kill_leftovers=self._kill_processes,
        )

    def _write_files(self, invocation: Invocation) -> None:
        for file in invocation.files:
            path = self._host_path(Path(file.path))
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Created with its final mode: a credential is never readable by others, even briefly.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, file.mode)
            with os.fdopen(fd, "wb") as handle:
                handle.write(file.content)
            os.chmod(path, file.mode)

    def _host_path(self, path: Path) -> Path:
        """Where to write, on the host, a file the command will see at ``path``."""
        if self._layers is not None and path.is_relative_to(self._layers.mountpoint):
            # On the host the mount point is an empty folder: the upper layer is what the
            # command will see there.
            return self._layers.upper / path.relative_to(self._layers.mountpoint)
        return path


def setup_template(run: PreparedRun) -> Path | None:
    """The workspace the run's set-up ran in, which tasks start from; ``None`` without set-up."""
    template = run.scratch_dir / _SETUP_DIR / "workspace"
    return template if template.is_dir() else None


async def copy_tree(source: Path, dest: Path) -> None:
    """``source`` copied to the new folder ``dest``: modes, times and links as they are, blocks
    shared where the filesystem can (reflinks)."""
    argv = ("cp", "-a", "--reflink=auto", "--", str(source), str(dest))
    code, err = await run_quietly(argv)
    if code != 0:
        raise OSError(f"could not copy the set-up workspace: {err}")


class _Sweeper:
    """Kills the marked processes of sandboxes being closed, one ``/proc`` scan for all of them.

    Reading every process's environment costs as much as there are processes on the machine;
    when a run of 50 sandboxes is stopped, each would read it twice. Here the sandboxes that ask
    while a scan runs share the next one, so a stop reads ``/proc`` a few times whatever the
    number of sandboxes. (A scan that had already begun may have missed a newer request's
    processes, hence the next one, never the current one.)
    """

    def __init__(self) -> None:
        self._markers: set[str] = set()
        self._next: asyncio.Future[None] | None = None
        self._sweeping: asyncio.Task[None] | None = None

    async def kill(self, marker: str) -> None:
        loop = asyncio.get_running_loop()
        if self._next is None:
            self._next = loop.create_future()
            # Retrieved here, so a sweep whose callers all left is not reported as lost.
            self._next.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._markers.add(marker)
        sweep = self._next
        if self._sweeping is None or self._sweeping.done():
            self._sweeping = loop.create_task(self._sweep_while_asked())
        await asyncio.shield(sweep)

    async def _sweep_while_asked(self) -> None:
        while self._next is not None:
            done, markers = self._next, frozenset(self._markers)
            self._next, self._markers = None, set()
            try:
                await asyncio.to_thread(_kill_marked_all, markers)
            except asyncio.CancelledError:  # the loop is shutting down: nobody waits any more
                for pending in (done, self._next):
                    if pending is not None and not pending.done():
                        pending.cancel()
                self._next, self._markers = None, set()
                raise
            except Exception as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)


def _kill_marked_all(markers: frozenset[str]) -> int:
    return kill_processes(p.pid for p in marked_processes(lambda value: value in markers))


_sweepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Sweeper] = (
    weakref.WeakKeyDictionary()
)


async def _kill_marked_soon(marker: str) -> None:
    """SIGKILLs every process carrying this sandbox marker (see :class:`_Sweeper`)."""
    loop = asyncio.get_running_loop()
    sweeper = _sweepers.get(loop)
    if sweeper is None:
        sweeper = _sweepers[loop] = _Sweeper()
    await sweeper.kill(marker)


async def _make_owned_dir(parent: Path | None, prefix: str, run_dir: Path | None = None) -> Path:
    """:func:`_owned_dir` in a worker thread; cancelled meanwhile, it leaves no folder behind.

    The thread cannot be stopped half-way: a cancellation waits for it (one mkdir) and removes
    what it made before going on, so a run stopped while sandboxes open leaves no empty folder.
    """
    making = asyncio.ensure_future(asyncio.to_thread(_owned_dir, parent, prefix, run_dir))
    try:
        return await asyncio.shield(making)
    except asyncio.CancelledError:
        while not making.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([making])
        if not making.cancelled() and making.exception() is None:
            shutil.rmtree(making.result(), ignore_errors=True)  # a folder and its owner file
        raise


def _owned_dir(parent: Path | None, prefix: str, run_dir: Path | None = None) -> Path:
    """A new folder whose ``owner`` file names this process (and, for a run's scratch folder,
    whose ``run-dir`` file names the run's folder, so a cleanup can close its journal)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        (path / _OWNER_FILE).write_text(owner_token() + "\n", encoding="utf-8")
        if run_dir is not None:
            (path / _RUN_DIR_FILE).write_text(f"{run_dir}\n", encoding="utf-8")
    except BaseException:  # a full disk: no ownerless folder is left for cleanup to guess about
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path


def _fresh_dir(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
    path.mkdir()


def _cleanup(run_id: str | None, parent: Path, *, run_over: bool = False) -> list[str]:
    closed: list[str] = []
    run_part = f"{run_id}." if run_id is not None else ""
    box_marker = f"{_SANDBOX_ID_PREFIX}{_BOX_PREFIX}{run_part}"
    leftovers = [
        p
        for p in marked_processes(lambda value: value.startswith(box_marker))
        if not owner_alive(p.owner)
    ]
    kill_processes(p.pid for p in leftovers)
    closed += [f"{p.marker} (process {p.pid})" for p in leftovers]
    # Before the folders: whether a cgroup is abandoned is read from its sandbox's folder.
    closed += _cleanup_cgroups(run_id, parent, run_over=run_over)
    # A killed process may still be finishing a write: its folder goes once it is gone.
    _wait_until_gone([p.pid for p in leftovers], _KILLED_GONE_S)
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return closed
    run_dirs: list[Path] = []
    for path in entries:
        is_box = path.name.startswith(f"{_BOX_PREFIX}{run_part}")
        if not (is_box or path.name.startswith(f"{_RUN_PREFIX}{run_part}")):
            continue
        if path.is_symlink() or not path.is_dir() or not _abandoned(path):
            continue
        if not is_box:
            run_dirs += _recorded_run_dir(path)
        remove_task_layers(path)
        what = f"{_SANDBOX_ID_PREFIX}{path.name}" if is_box else "run scratch folder"
        closed.append(f"{what} (folder {path})")
    # Only once its leftovers are gone does a dead run read as over.
    for run_dir in run_dirs:
        closed += _close_journal(run_dir)
    return closed


def _cleanup_cgroups(run_id: str | None, parent: Path, *, run_over: bool) -> list[str]:
    """Kills the processes of, and removes, the cgroups of sandboxes of runs that died.

    A sandbox's cgroup is named like its folder and lives below this process's own cgroup (where
    the SDK makes them when it runs in the same one, as a cleanup command usually does).
    """
    home = own_cgroup()
    if home is None:
        return []
    prefix = f"{_BOX_PREFIX}{run_id}." if run_id is not None else _BOX_PREFIX
    try:
        names = sorted(p.name for p in home.iterdir() if p.name.startswith(prefix) and p.is_dir())
    except OSError:
        return []
    closed: list[str] = []
    for name in names:
        cgroup = Cgroup(home / name)
        if _cgroup_abandoned(cgroup, parent / name, run_over=run_over):
            cgroup.remove()
            closed.append(f"{_SANDBOX_ID_PREFIX}{name} (cgroup {cgroup.path})")
    return closed


def _cgroup_abandoned(cgroup: Cgroup, folder: Path, *, run_over: bool) -> bool:
    """Whether ``cgroup`` belongs to a sandbox whose run died.

    Its sandbox's folder says, by its owner, when it is here; otherwise (a folder removed
    already, or in another ``work_dir``) the processes in the cgroup say, by theirs, and an
    empty one goes only when its run is known to be over.
    """
    if folder.is_dir() and not folder.is_symlink():
        return _abandoned(folder)
    if not cgroup.pids():
        return run_over
    marker = f"{_SANDBOX_ID_PREFIX}{folder.name}"
    return not any(owner_alive(p.owner) for p in marked_processes(lambda value: value == marker))


def _recorded_run_dir(scratch: Path) -> list[Path]:
    """The run folder a run's scratch folder names (none if it names none)."""
    try:
        text = (scratch / _RUN_DIR_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return []
    return [Path(text)] if text else []


def _close_journal(run_dir: Path) -> list[str]:
    """Marks the journal of a run whose process died ``interrupted``, if it still says running."""
    try:
        marked = mark_interrupted(run_dir)
    except (ParallelCCError, OSError) as exc:  # moved, deleted or damaged: nothing to mark
        logger.debug("cannot mark the journal in %s: %s", run_dir, exc)
        return []
    return [f"run {run_dir.name}: journal marked interrupted"] if marked else []


def _wait_until_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _running(pid)]
        if pids:
            time.sleep(0.02)


def _running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, waiting for its parent, has stopped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :][:1] not in ("Z", "X")


def _abandoned(folder: Path) -> bool:
    try:
        owner = (folder / _OWNER_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        try:
            age = time.time() - folder.stat().st_mtime
        except OSError:
            return False
        return age > _OWNERLESS_GRACE_S
    return not owner_alive(owner)
