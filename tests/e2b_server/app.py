"""The ASGI application: one port serves the control plane, every sandbox's envd, and /_debug.

Each request is named (``ops.py``), logged, offered to the fault rules, authenticated (API key for
the control plane; the sandbox's access token for envd, whose target sandbox is named by the
``E2b-Sandbox-Id`` header the SDK sends, as E2B's shared edge routes it), then dispatched.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable

from e2b.envd.filesystem.filesystem_connect import FilesystemASGIApplication
from e2b.envd.process.process_connect import ProcessASGIApplication
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import debug, files_http, rest
from .envd_common import sandbox_id_from
from .envd_filesystem import FilesystemService
from .envd_process import ProcessService
from .faults import Rule
from .ops import Op, classify
from .state import ServerState

_DROPPED_BODY_PROMISE = 4096
"""Content-Length announced before a dropped connection, so the client sees a cut-off answer."""


class _Meter:
    """Counts the bytes a request brings and its answer takes, and remembers the status.

    ``on_complete`` runs just before the last piece of the answer leaves, so a client that has
    its answer always finds the request complete in the log.
    """

    def __init__(self, receive: Receive, send: Send, on_complete: Callable[[], None]) -> None:
        self._receive = receive
        self._send = send
        self._on_complete = on_complete
        self.completed = False
        self.status = 0
        self.bytes_in = 0
        self.bytes_out = 0

    def complete(self) -> None:
        if not self.completed:
            self.completed = True
            self._on_complete()

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.bytes_in += len(message.get("body", b""))
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.bytes_out += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.complete()
        await self._send(message)


async def _json(
    send: Send, status: int, body: object, headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class E2BApp:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.routes: ASGIApp = Starlette(
            routes=[
                *rest.routes(state),
                *files_http.routes(state.registry),
                *debug.routes(state),
            ]
        )
        self.process = ProcessASGIApplication(ProcessService(state.registry, state.faults))
        self.filesystem = FilesystemASGIApplication(FilesystemService(state.registry))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        op = classify(scope["method"], scope["path"])
        if op.kind == "debug":
            await self.routes(scope, receive, send)
            return
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope["headers"]
        }
        sandbox_id = op.sandbox_id if op.kind == "rest" else sandbox_id_from(headers)
        log = self.state.log
        index = log.begin(op.name, scope["method"], scope["path"], sandbox_id)
        decision = self.state.faults.decide(op.name, sandbox_id)

        def complete() -> None:
            log.end(
                index,
                status=0 if decision.drop else meter.status,
                bytes_in=meter.bytes_in,
                bytes_out=meter.bytes_out,
                fault=decision.label,
            )

        meter = _Meter(receive, send, complete)
        try:
            if decision.delay:
                await asyncio.sleep(decision.delay)
            if decision.drop:
                await self._drop(meter.send)
            elif decision.fail is not None:
                await self._fail(decision.fail, meter.send)
            elif not await self._refused(op, headers, sandbox_id, meter.send):
                await self._dispatch(op, scope, meter.receive, meter.send)
        finally:
            meter.complete()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.state.registry.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _drop(send: Send) -> None:
        """Starts an answer and never finishes it: the server then closes the connection."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(_DROPPED_BODY_PROMISE).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"{", "more_body": True})

    @staticmethod
    async def _fail(rule: Rule, send: Send) -> None:
        headers = {}
        if rule.retry is not None:
            headers["Should-Retry"] = "true" if rule.retry else "false"
        await _json(send, rule.status, {"code": rule.status, "message": rule.message}, headers)

    async def _refused(
        self, op: Op, headers: dict[str, str], sandbox_id: str | None, send: Send
    ) -> bool:
        """Answers a request that may not go on: bad key, unknown route, dead sandbox, bad token."""
        if op.kind == "unknown":
            message = "this route is not served by the local E2B test server"
            await _json(send, 404, {"code": 404, "message": message})
            return True
        if op.kind == "rest":
            if not hmac.compare_digest(headers.get("x-api-key", ""), self.state.api_key):
                message = "Invalid API key, please check your E2B_API_KEY"
                await _json(send, 401, {"code": 401, "message": message})
                return True
            return False
        sandbox = self.state.registry.find(sandbox_id)
        if sandbox is None or sandbox.state != "running":
            paused = " (it is paused)" if sandbox is not None and sandbox.state == "paused" else ""
            message = f"The sandbox {sandbox_id} was not found{paused}"
            await _json(send, 502, {"sandboxId": sandbox_id, "message": message, "code": 502})
            return True
        if op.name == "health":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return True
        if not hmac.compare_digest(headers.get("x-access-token", ""), sandbox.token):
            message = "unauthorized access, please provide a valid access token"
            await _json(send, 401, {"code": 401, "message": message})
            return True
        return False

    async def _dispatch(self, op: Op, scope: Scope, receive: Receive, send: Send) -> None:
        if op.name.startswith("process."):
            await self.process(scope, receive, send)
        elif op.name.startswith("filesystem."):
            await self.filesystem(scope, receive, send)
        else:
            await self.routes(scope, receive, send)
