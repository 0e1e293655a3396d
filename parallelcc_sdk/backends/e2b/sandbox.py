"""One E2B sandbox for one task attempt: prepare, run the agent with streamed output, collect,
and always kill it."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...collection import ARCHIVE_NAME, collect_command, unpack_changes
from ...contract import AgentContext, ChangeStats, Invocation, LineHandler, SandboxFile
from ...errors import ChangeCollectionError, TransientBackendError
from ..base import Sandbox
from .lease import Lease
from .runstate import KILL_TIMEOUT_S, E2BRun, How
from .scripts import (
    EXCLUDE_PATH,
    HOME,
    OBJECTS_DIR,
    PRIVATE_DIR,
    WORKSPACE,
    collect_shell,
    remove_shell,
    run_shell,
)
from .sdk import SandboxLostError, sandbox_error
from .streaming import follow, run_followed

if TYPE_CHECKING:
    from e2b import AsyncSandbox

__all__ = ["E2BSandbox"]

logger = logging.getLogger("parallelcc_sdk")

COLLECT_TIMEOUT_S = 900
REQUEST_TIMEOUT_S = 120
_ERROR_LINES = 5


class E2BSandbox(Sandbox):
    """A running E2B sandbox, made by a fork of the run's base or created and uploaded to."""

    def __init__(
        self,
        *,
        sdk: AsyncSandbox,
        run: E2BRun,
        how: How,
        lifetime_s: int,
        exclude_changes: tuple[str, ...],
        attach_pid: int | None = None,
        base_id: str | None = None,
        base_commit: str | None = None,
    ) -> None:
        self.sdk = sdk
        self.run = run
        self.exclude_changes = exclude_changes
        self.how = how
        self.sandbox_id = sdk.sandbox_id
        self.attach_pid = attach_pid
        """The agent's command already running here, which ``exec`` follows instead of starting
        one (a sandbox re-attached to after its run's process died)."""
        if base_id is None and how == "fork" and run.base is not None:
            base_id = run.base.sandbox_id
        self._base_id = base_id
        self.base_commit = base_commit or run.archive.base
        """What the workspace was checked out at: the run's snapshot, or for a sandbox re-attached
        to, the snapshot of the process that prepared it (changes are measured against it)."""
        self._started = time.monotonic()
        self._ended: float | None = None
        self._per_second: float | None = None
        self._prepared = how == "fork" or attach_pid is not None
        self._written: list[str] = []
        """Files with secrets this sandbox was given; removed before it is killed."""
        self._lease = Lease(sdk.set_timeout, lifetime_s).start()
        self._closing: asyncio.Task[None] | None = None

    @property
    def context(self) -> AgentContext:
        return AgentContext(workspace=WORKSPACE, home=HOME, runs_as_root=False)

    def describe(self) -> Mapping[str, Any]:
        described: dict[str, Any] = {
            "sandbox_id": self.sandbox_id,
            "template": self.run.template,
            "prepared_by": self.how,
        }
        if self._base_id is not None:
            described["base_sandbox_id"] = self._base_id
        if self.attach_pid is not None:
            described["reattached_pid"] = self.attach_pid
        return described

    # -- the protocol ---------------------------------------------------------------------------

    async def prepare(self) -> None:
        if not self._prepared:
            await self.run.upload_and_prepare(self.sdk)
            self._prepared = True

    async def exec(self, invocation: Invocation, on_line: LineHandler) -> int:
        files = list(invocation.files) + list(self.run.private_files)
        if self.attach_pid is not None:
            return await self._follow_running(files, on_line)
        stdin_path = f"{PRIVATE_DIR}/stdin-{uuid.uuid4().hex}" if invocation.stdin else None
        await self._write(files, stdin_path, invocation.stdin)
        text = run_shell(invocation.argv, stdin_path=stdin_path, files=files)

        return await run_followed(
            self.sdk,
            text,
            envs={**invocation.env, "HOME": HOME},
            cwd=WORKSPACE,
            on_line=on_line,
            request_timeout=REQUEST_TIMEOUT_S,
        )

    async def collect(self, dest: Path) -> ChangeStats:
        from e2b import CommandExitException

        out = f"/tmp/parallelcc-collect-{uuid.uuid4().hex}"
        argv = collect_command(
            WORKSPACE,
            self.base_commit,
            out,
            object_dirs=[OBJECTS_DIR],
            exclude_file=EXCLUDE_PATH if self.run.archive.has_exclude else None,
            exclude_changes=self.exclude_changes,
        )
        try:
            await self.sdk.commands.run(collect_shell(argv), timeout=COLLECT_TIMEOUT_S)
            archive = await self.sdk.files.read(
                f"{out}/{ARCHIVE_NAME}", format="bytes", request_timeout=COLLECT_TIMEOUT_S
            )
        except CommandExitException as exc:
            lines = [line for line in (exc.stderr or "").splitlines() if line.strip()]
            detail = " / ".join(lines[-_ERROR_LINES:]) or f"exit code {exc.exit_code}"
            raise ChangeCollectionError(f"change collection failed: {detail}") from None
        except Exception as exc:
            problem = sandbox_error(self.sandbox_id, exc, "collecting the changes")
            if isinstance(problem, TransientBackendError) and not isinstance(
                problem, SandboxLostError
            ):
                raise problem from exc
            raise ChangeCollectionError(f"change collection failed: {problem}") from exc
        return await asyncio.to_thread(unpack_changes, bytes(archive), dest)

    async def close(self) -> None:
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    def cost_usd(self) -> float | None:
        if self._ended is None or self._per_second is None:
            return None
        return (self._ended - self._started) * self._per_second

    # -- helpers --------------------------------------------------------------------------------

    async def _write(
        self, files: list[SandboxFile], stdin_path: str | None, stdin: bytes
    ) -> None:
        """Every file of the attempt in one upload (modes are set by the command itself)."""
        entries: list[Any] = [{"path": f.path, "data": f.content} for f in files]
        if stdin_path is not None:
            entries.append({"path": stdin_path, "data": stdin})
        if not entries:
            return
        # Recorded first: a write that fails half-way may still have left a secret behind.
        self._written += [f.path for f in files]
        try:
            await self.sdk.files.write_files(entries, request_timeout=REQUEST_TIMEOUT_S)
        except Exception as exc:
            raise sandbox_error(self.sandbox_id, exc, "writing the task's files") from exc

    async def _follow_running(self, files: list[SandboxFile], on_line: LineHandler) -> int:
        """The output the running command writes from now on, and its exit code."""
        pid = self.attach_pid
        assert pid is not None
        # The process that died wrote these files: they leave before the sandbox does.
        self._written += [f.path for f in files]

        def connect(on_stdout: Callable[[str], None], on_stderr: Callable[[str], None]) -> Any:
            return self.sdk.commands.connect(
                pid,
                timeout=0,
                request_timeout=REQUEST_TIMEOUT_S,
                on_stdout=on_stdout,
                on_stderr=on_stderr,
                retain_output=False,
            )

        return await follow(self.sandbox_id, connect, on_line)

    async def _close(self) -> None:
        await self._lease.stop()
        try:
            self._per_second = await self.run.price_per_second(self.sdk)
        except Exception as exc:  # a cost is never worth a leaked sandbox
            logger.debug("no price for %s: %s", self.sandbox_id, exc)
        if self._written:
            # Secrets leave before the sandbox does: a killed sandbox's disk is not ours to wipe.
            try:
                written = list(dict.fromkeys(self._written))
                await self.sdk.commands.run(remove_shell(written), timeout=KILL_TIMEOUT_S)
            except Exception as exc:
                logger.debug("could not remove the secret files of %s: %s", self.sandbox_id, exc)
        await self.run.kill(self.sdk)
        self._ended = time.monotonic()
