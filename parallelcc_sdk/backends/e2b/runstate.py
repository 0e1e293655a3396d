"""One run on E2B: its archive, its base sandbox, how its task sandboxes are made, its rate.

With ``prepare="fork"`` a base sandbox receives the run's archive once and unpacks it; each task
sandbox is a fork of it, already prepared. With ``"upload"`` each task sandbox is created from
the template and receives the one prebuilt archive in one upload. ``"auto"`` forks unless E2B
refuses to, then uploads for the rest of the run; a fork that fails for one task only makes that
task fall back to an upload.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ...contract import Invocation, LineHandler, SandboxFile
from ...errors import CredentialsError, TransientBackendError, ValidationError
from ..base import LABEL_RUN_ID
from .archive import RunArchive
from .forks import ForkBatcher, ForkChildFailed, ForkRefused
from .lease import Lease
from .pricing import DEFAULT_MEMORY_GIB, DEFAULT_VCPUS, E2BRates
from .ratelimit import CreationRate
from .scripts import ARCHIVE_PATH, HOME, WORKSPACE, prepare_shell, remove_shell, run_shell
from .sdk import (
    KEY_HINT,
    Connection,
    E2BError,
    is_gone,
    is_transient,
    sandbox_error,
    start_error,
)

if TYPE_CHECKING:
    from e2b import AsyncSandbox

__all__ = ["E2BRun", "PrepareMode"]

logger = logging.getLogger("parallelcc_sdk")

PrepareMode = Literal["auto", "fork", "upload"]
How = Literal["fork", "upload"]

PREPARE_TIMEOUT_S = 900
UPLOAD_TIMEOUT_S = 900
KILL_TIMEOUT_S = 30
_CHUNK = 1024 * 1024
_BASE_TRIES = 3


class E2BRun:
    """The state a run shares between its sandboxes (``PreparedRun.state``)."""

    def __init__(
        self,
        *,
        connection: Connection,
        template: str,
        envs: Mapping[str, str],
        labels: Mapping[str, str],
        prepare: PrepareMode,
        archive: RunArchive,
        private_files: tuple[SandboxFile, ...],
        rates: E2BRates,
        rate: CreationRate,
        base_lifetime_s: int,
        scratch_dir: Path,
    ) -> None:
        self.connection = connection
        self.template = template
        self.envs = dict(envs)
        self.labels = dict(labels)
        """Labels of every sandbox of the run (a fork inherits its base's)."""
        self.requested: PrepareMode = prepare
        self.mode: How = "upload" if prepare == "upload" else "fork"
        self.archive = archive
        self.private_files = private_files
        self.rates = rates
        self.rate = rate
        self.base_lifetime_s = base_lifetime_s
        self.scratch_dir = scratch_dir
        self.base: AsyncSandbox | None = None
        self._base_lease: Lease | None = None
        self._forks: ForkBatcher[AsyncSandbox] | None = None
        self._size: tuple[float, float] | None = None
        self._size_lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()
        self.holds_setup = False
        """True once a set-up ran in the base sandbox: a task sandbox must then be a fork of it
        (an upload would lack what set-up made)."""

    # -- once per run ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Checks the key (a 401 stops the run here, before any task) and, to fork, makes the
        base sandbox and prepares it."""
        if self.mode == "upload":
            await self._check_key()
            return
        self.base = await self._base_with_retries()
        self._base_lease = Lease(self.base.set_timeout, self.base_lifetime_s).start()
        self._forks = ForkBatcher(self._fork_call, self.kill, self.rate)
        await self.upload_and_prepare(self.base)
        await self.price_per_second(self.base)

    async def _base_with_retries(self) -> AsyncSandbox:
        # The whole run hangs on this one sandbox: a passing rate limit or 503 must not stop it.
        for attempt in range(1, _BASE_TRIES + 1):
            try:
                return await self.create(self.labels, self.base_lifetime_s)
            except TransientBackendError as exc:
                if attempt == _BASE_TRIES:
                    raise
                logger.warning("creating the run's base sandbox failed (%s); trying again", exc)
                await asyncio.sleep(2 ** (attempt - 1))
        raise AssertionError("unreachable")

    async def _check_key(self) -> None:
        from e2b import AsyncSandbox, AuthenticationException, SandboxQuery

        query = SandboxQuery(metadata={LABEL_RUN_ID: self.labels[LABEL_RUN_ID]})
        try:
            await AsyncSandbox.list(query=query, limit=1, **self.connection.options()).next_items()
        except AuthenticationException:
            raise CredentialsError(
                f"E2B rejected the API key (401 Unauthorized); {KEY_HINT}."
            ) from None
        except Exception as exc:
            raise start_error(exc, "list sandboxes") from exc

    async def close(self) -> None:
        """Ends what the run made: forks on their way, the base sandbox. Safe to call twice."""
        if self._forks is not None:
            await self._forks.close()
        if self._base_lease is not None:
            await self._base_lease.stop()
        base, self.base = self.base, None
        if base is not None:
            await self.kill(base)
        while self._background:
            await asyncio.wait(list(self._background))

    # -- sandboxes ------------------------------------------------------------------------------

    async def create(self, labels: Mapping[str, str], lifetime_s: int) -> AsyncSandbox:
        """A new sandbox of the run's template (waits for the creation rate)."""
        from e2b import AsyncSandbox

        await self.rate.acquire()
        creating = asyncio.ensure_future(
            AsyncSandbox.create(
                template=self.template,
                timeout=lifetime_s,
                metadata=dict(labels),
                envs=dict(self.envs) or None,
                **self.connection.options(),
            )
        )
        try:
            return await asyncio.shield(creating)
        except asyncio.CancelledError:
            # The request is on its way: the sandbox may exist in a moment, owned by nobody.
            self._spawn(self._end_abandoned(creating))
            raise
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                raise ValidationError(
                    f"E2B has no template {self.template!r} ({exc}); pass "
                    "E2BBackend(template=...) with a template your team can use, or set "
                    "E2B_TEMPLATE."
                ) from None
            raise start_error(exc, "create a sandbox") from exc

    async def _end_abandoned(self, creating: asyncio.Future[AsyncSandbox]) -> None:
        try:
            sandbox = await creating
        except Exception:
            return  # never made
        await self.kill(sandbox)

    async def task_sandbox(self, labels: Mapping[str, str], lifetime_s: int) -> tuple[
        AsyncSandbox, How
    ]:
        """A sandbox for one task attempt, and how it gets the snapshot (forks have it)."""
        if self.mode == "fork" and self._forks is not None:
            try:
                return await self._forks.fork(lifetime_s), "fork"
            except ForkChildFailed as exc:
                if self.holds_setup:
                    raise TransientBackendError(
                        f"a fork of the run's base sandbox failed ({exc}); it holds the set-up's "
                        "result, so no upload can stand in for it"
                    ) from exc
                logger.warning("a fork failed (%s); this task's sandbox gets an upload", exc)
            except ForkRefused as exc:
                cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
                if is_transient(cause):
                    raise start_error(cause, "fork the run's base sandbox") from cause
                if self.holds_setup:
                    raise E2BError(
                        f"E2B refused to fork the run's base sandbox ({cause}), which holds the "
                        "set-up's result, so no upload can stand in for it"
                    ) from cause
                self._fork_refused(cause)
        return await self.create(labels, lifetime_s), "upload"

    def _fork_refused(self, cause: BaseException) -> None:
        if self.requested == "auto" or is_gone(cause):
            if self.mode == "fork":
                logger.warning(
                    "E2B refused to fork the run's base sandbox (%s); every sandbox of this run "
                    "from now on gets the archive uploaded",
                    cause,
                )
                self.mode = "upload"
                self._spawn(self._retire_base())
        else:
            logger.warning("E2B refused a fork (%s); this task's sandbox gets an upload", cause)

    async def _retire_base(self) -> None:
        if self._base_lease is not None:
            await self._base_lease.stop()
        base, self.base = self.base, None
        if base is not None:
            await self.kill(base)

    async def _fork_call(self, count: int, lifetime_s: int) -> list[AsyncSandbox | Exception]:
        base = self.base
        if base is None:
            raise E2BError("the run's base sandbox is gone")
        forks: list[AsyncSandbox | Exception] = await base.fork(
            timeout=lifetime_s, count=count, **self.connection.options()
        )
        return forks

    async def upload_and_prepare(self, sandbox: AsyncSandbox) -> None:
        """One upload of the run's archive, then one command that checks the workspace out."""
        from e2b import CommandExitException

        try:
            await sandbox.files.write(
                ARCHIVE_PATH, _chunks(self.archive.path), request_timeout=UPLOAD_TIMEOUT_S
            )
        except Exception as exc:
            raise sandbox_error(sandbox.sandbox_id, exc, "uploading the run's archive") from exc
        try:
            await sandbox.commands.run(prepare_shell(self.archive.base), timeout=PREPARE_TIMEOUT_S)
        except CommandExitException as exc:
            detail = (exc.stderr or "").strip().splitlines()[-3:]
            raise E2BError(
                f"preparing the workspace in E2B sandbox {sandbox.sandbox_id} failed: "
                f"{' / '.join(detail) or exc.error or f'exit code {exc.exit_code}'}"
            ) from None
        except Exception as exc:
            raise sandbox_error(sandbox.sandbox_id, exc, "preparing the workspace") from exc

    async def run_setup(self, invocation: Invocation, on_line: LineHandler) -> int:
        """Runs a set-up command in the base sandbox, before any fork: every fork inherits its
        result. The private files (SSH key, npm token) are there while it runs, not after."""
        from .streaming import run_followed  # it imports this module

        base = self.base
        if base is None:
            raise E2BError("the run has no base sandbox to run its set-up in (prepare='upload')")
        self.holds_setup = True
        files = list(invocation.files) + list(self.private_files)
        if files:
            try:
                await base.files.write_files(
                    [{"path": f.path, "data": f.content} for f in files],
                    request_timeout=UPLOAD_TIMEOUT_S,
                )
            except Exception as exc:
                raise sandbox_error(base.sandbox_id, exc, "writing the set-up's files") from exc
        text = run_shell(invocation.argv, stdin_path=None, files=files, mark=False)

        try:
            return await run_followed(
                base,
                text,
                envs={**invocation.env, "HOME": HOME},
                cwd=WORKSPACE,
                on_line=on_line,
                request_timeout=UPLOAD_TIMEOUT_S,
            )
        finally:
            if files:
                # Forks copy the base's disk: what is secret must be gone before the first one.
                await asyncio.shield(
                    base.commands.run(remove_shell([f.path for f in files]), timeout=KILL_TIMEOUT_S)
                )

    async def kill(self, sandbox: AsyncSandbox) -> None:
        """Kills a sandbox; a failure is logged (its lifetime ends it, ``cleanup`` finds it)."""
        try:
            await asyncio.wait_for(sandbox.kill(), KILL_TIMEOUT_S)
        except Exception as exc:
            logger.warning("could not kill E2B sandbox %s: %s", sandbox.sandbox_id, exc)

    async def price_per_second(self, sandbox: AsyncSandbox | None) -> float:
        """USD per second of the run's sandboxes; their size is asked once per run."""
        if not self.rates.needs_size:
            return self.rates.per_second(0, 0)
        async with self._size_lock:
            if self._size is None and sandbox is not None:
                try:
                    info = await sandbox.get_info()
                    self._size = (float(info.cpu_count), info.memory_mb / 1024)
                except Exception as exc:  # gone already: E2B's default size stands in
                    logger.debug("could not ask the size of sandbox %s: %s", sandbox, exc)
            vcpus, memory = self._size or (DEFAULT_VCPUS, DEFAULT_MEMORY_GIB)
        return self.rates.per_second(vcpus, memory)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"prepare": self.mode, "archive_bytes": self.archive.size}
        if self.base is not None:
            described["base_sandbox_id"] = self.base.sandbox_id
        if self.archive.omitted:
            described["omitted_secret_files"] = len(self.archive.omitted)
        return described


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    """The file in chunks, read off the event loop (the archive may be large)."""
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, _CHUNK):
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)

