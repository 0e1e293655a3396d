"""Running the server: in a background thread for tests, or in the foreground by hand."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import uvicorn

from .app import E2BApp
from .faults import Faults
from .jail import bubblewrap_works
from .layout import USERS, Layout
from .requestlog import RequestLog
from .sandboxes import Isolation, Registry, SandboxRecord
from .state import ServerState

STARTUP_TIMEOUT_S = 15.0
SHUTDOWN_TIMEOUT_S = 15.0


def resolve_isolation(isolation: Literal["auto", "bubblewrap", "none"]) -> Isolation:
    if isolation == "auto":
        return "bubblewrap" if bubblewrap_works() else "none"
    if isolation == "bubblewrap" and not bubblewrap_works():
        raise RuntimeError(
            "bubblewrap (bwrap) cannot create a sandbox here: install it "
            "(apt-get install bubblewrap) or use isolation='none'"
        )
    return isolation


class E2BTestServer:
    """A local E2B-compatible server on 127.0.0.1 that the real ``e2b`` SDK talks to.

    ``root`` holds one folder per sandbox (a fresh temporary folder if None). ``port=0`` picks a
    free port. ``retain_killed`` keeps the folders of ended sandboxes until the server stops, so a
    test can look at what a sandbox left behind.
    """

    def __init__(
        self,
        root: Path | None = None,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        isolation: Literal["auto", "bubblewrap", "none"] = "auto",
        retain_killed: bool = False,
        templates: Collection[str] | None = None,
    ) -> None:
        self._own_root = root is None
        self.root = root if root is not None else Path(tempfile.mkdtemp(prefix="e2b-server-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.api_key = api_key or f"e2b_local_{secrets.token_hex(16)}"
        self.isolation = resolve_isolation(isolation)
        self.log = RequestLog()
        self.faults = Faults()
        self.registry = Registry(self.root, isolation=self.isolation, retain_killed=retain_killed)
        self.state = ServerState(
            registry=self.registry,
            api_key=self.api_key,
            log=self.log,
            faults=self.faults,
            templates=templates,
        )
        self._socket = socket.create_server((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- how the SDK reaches it -------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point the unmodified ``e2b`` SDK at this server.

        ``E2B_API_URL`` carries the control plane and ``E2B_SANDBOX_URL`` every sandbox's envd
        (the SDK then sends plain HTTP and names the sandbox in the ``E2b-Sandbox-Id`` header).
        ``E2B_DEBUG`` must stay unset: debug mode skips the control plane.
        """
        return {"E2B_API_KEY": self.api_key, "E2B_API_URL": self.url, "E2B_SANDBOX_URL": self.url}

    @property
    def sdk_options(self) -> dict[str, Any]:
        """The same as keyword arguments of any SDK call (``AsyncSandbox.create(**options)``)."""
        return {"api_key": self.api_key, "api_url": self.url, "sandbox_url": self.url}

    # -- what tests read --------------------------------------------------------------------

    def alive(self) -> list[str]:
        """Ids of the sandboxes that exist now (running or paused)."""
        return self.registry.alive_ids()

    def records(self) -> list[SandboxRecord]:
        """Every sandbox this server made, alive or ended, in creation order."""
        return self.registry.records()

    def commands(self, sandbox_id: str | None = None) -> list[str]:
        """The command line of every command started (in one sandbox, or in any), in order."""
        return [
            line
            for started_in, line in self.registry.started_commands()
            if sandbox_id is None or started_in == sandbox_id
        ]

    def record(self, sandbox_id: str) -> SandboxRecord:
        return next(r for r in self.records() if r.sandbox_id == sandbox_id)

    def alive_over_time(
        self, where: Callable[[SandboxRecord], bool] | None = None
    ) -> list[tuple[float, int]]:
        """(time, sandboxes alive from then on) at every start and end of a sandbox."""
        return self.registry.alive_over_time(where)

    def max_alive(self, where: Callable[[SandboxRecord], bool] | None = None) -> int:
        """The most sandboxes (those ``where`` accepts) alive at the same moment."""
        return self.registry.max_alive(where)

    def host_path(self, sandbox_id: str, path: str, user: str = "user") -> Path | None:
        """Where a sandbox path lives on this machine (None if the sandbox cannot see it)."""
        record = self.record(sandbox_id)
        return Layout(record.folder, hidden=[self.root]).resolve(path, USERS[user]).host

    def kill_sandbox(self, sandbox_id: str) -> bool:
        """Kills a sandbox from the server's side, as if its VM died (any thread)."""
        sandbox = self.registry.find(sandbox_id)
        if sandbox is None:
            return False
        return bool(self._on_loop(self.registry.kill(sandbox, reason="server")))

    def _on_loop(self, coro: Any) -> Any:
        if self._loop is None:
            raise RuntimeError("the server is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(SHUTDOWN_TIMEOUT_S)

    # -- running ----------------------------------------------------------------------------

    def _config(self, log_level: str, *, configure_logging: bool) -> uvicorn.Config:
        extra: dict[str, Any] = {} if configure_logging else {"log_config": None}
        return uvicorn.Config(
            E2BApp(self.state),
            http="h11",
            ws="none",
            lifespan="on",
            log_level=log_level,
            access_log=False,
            # The SDK pools connections for minutes; closing them sooner races its reuse.
            timeout_keep_alive=600,
            timeout_graceful_shutdown=2,
            **extra,
        )

    def start(self) -> Self:
        """Serves in a background thread; returns once it accepts connections."""
        # In a test process, leave the host's logging alone (uvicorn's loggers propagate).
        server = uvicorn.Server(self._config("warning", configure_logging=False))
        self._uvicorn = server

        def run() -> None:
            asyncio.run(self._serve(server))

        self._thread = threading.Thread(target=run, name="e2b-test-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the local E2B server did not start")
            time.sleep(0.01)
        return self

    async def _serve(self, server: uvicorn.Server) -> None:
        self._loop = asyncio.get_running_loop()
        await server.serve(sockets=[self._socket])

    def serve_forever(self) -> None:
        """Serves in this thread until interrupted (Ctrl-C)."""
        server = uvicorn.Server(self._config("info", configure_logging=True))
        self._uvicorn = server
        try:
            asyncio.run(self._serve(server))
        finally:
            self._cleanup()

    def stop(self) -> None:
        """Kills every sandbox and stops serving."""
        if self._uvicorn is None or self._thread is None:
            return
        if self._loop is not None and self._thread.is_alive():
            self._on_loop(self.registry.shutdown())
        self._uvicorn.should_exit = True
        self._thread.join(SHUTDOWN_TIMEOUT_S)
        self._thread = None
        self._cleanup()

    def _cleanup(self) -> None:
        self._socket.close()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
