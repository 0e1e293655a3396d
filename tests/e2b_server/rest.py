"""The control plane: E2B's REST API for sandboxes (create, list, get, kill, timeouts, connect,
pause, fork), with the bodies and status codes the SDK's generated client parses.

The API key has already been checked (``app.py``); sandbox ids come from the path.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .sandboxes import DEFAULT_FORK_TIMEOUT_S, DEFAULT_TIMEOUT_S, Sandbox
from .state import CLIENT_ID, ENVD_VERSION, ServerState

MAX_FORKS = 20
LIST_LIMIT = 100
CPU_COUNT = 2
MEMORY_MB = 512
DISK_SIZE_MB = 4096


def error(status: int, message: str) -> JSONResponse:
    """E2B's error body (``models/error.py``)."""
    return JSONResponse({"code": status, "message": message}, status_code=status)


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def sandbox_json(sandbox: Sandbox) -> dict[str, Any]:
    """``models/sandbox.py``: what create, connect and fork return."""
    return {
        "templateID": sandbox.template,
        "sandboxID": sandbox.sandbox_id,
        "clientID": CLIENT_ID,
        "envdVersion": ENVD_VERSION,
        "envdAccessToken": sandbox.token,
        "alias": sandbox.template,
    }


def listed_json(sandbox: Sandbox) -> dict[str, Any]:
    """``models/listed_sandbox.py`` (and, with the token, ``sandbox_detail.py``)."""
    return {
        "templateID": sandbox.template,
        "sandboxID": sandbox.sandbox_id,
        "clientID": CLIENT_ID,
        "alias": sandbox.template,
        "startedAt": iso(sandbox.started_at),
        "endAt": iso(sandbox.end_at),
        "envdVersion": ENVD_VERSION,
        "cpuCount": CPU_COUNT,
        "memoryMB": MEMORY_MB,
        "diskSizeMB": DISK_SIZE_MB,
        "state": "paused" if sandbox.state == "paused" else "running",
        "metadata": dict(sandbox.metadata),
    }


async def _body(request: Request) -> dict[str, Any] | None:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _timeout(value: object, default: int) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _strings(value: object) -> dict[str, str] | None:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return None
    return dict(value)


def routes(state: ServerState) -> list[Route]:
    registry = state.registry
    idempotent: dict[str, str] = {}

    def not_found(sandbox_id: str) -> JSONResponse:
        return error(404, f"sandbox {sandbox_id} not found")

    async def create(request: Request) -> Response:
        body = await _body(request)
        if body is None:
            return error(400, "the request body must be a JSON object")
        template = body.get("templateID")
        if not isinstance(template, str) or not template:
            return error(400, "templateID is required")
        if state.templates is not None and template not in state.templates:
            return error(404, f"template '{template}' not found")
        timeout = _timeout(body.get("timeout"), DEFAULT_TIMEOUT_S)
        metadata = _strings(body.get("metadata"))
        envs = _strings(body.get("envVars"))
        if timeout is None or metadata is None or envs is None:
            return error(400, "timeout must be a non-negative integer; metadata and envVars maps")
        key = request.headers.get("idempotency-key")
        if key and (earlier := registry.find(idempotent.get(key))) and earlier.alive:
            return JSONResponse(sandbox_json(earlier), status_code=201)
        sandbox = registry.create(
            template=template,
            timeout=timeout,
            metadata=metadata,
            envs=envs,
            auto_pause=body.get("autoPause") is True,
        )
        if key:
            idempotent[key] = sandbox.sandbox_id
        return JSONResponse(sandbox_json(sandbox), status_code=201)

    async def list_sandboxes(request: Request) -> Response:
        params = request.query_params
        wanted = dict((unquote(k), unquote(v)) for k, v in parse_qsl(params.get("metadata", "")))
        states = set((params.get("state") or "running,paused").split(","))
        template = params.get("template")
        started_after = params.get("startedAfter")
        try:
            after = datetime.fromisoformat(started_after).timestamp() if started_after else None
            limit = int(params.get("limit", LIST_LIMIT))
            offset = (
                int(base64.urlsafe_b64decode(params["nextToken"])) if params.get("nextToken") else 0
            )
        except (ValueError, binascii.Error):
            return error(400, "invalid startedAfter, limit or nextToken")
        if limit < 1:
            return error(400, "limit must be at least 1")
        matching = [
            s
            for s in registry.listed()
            if all(s.metadata.get(k) == v for k, v in wanted.items())
            and ("paused" if s.state == "paused" else "running") in states
            and (template is None or s.template == template)
            and (after is None or s.started_at > after)
        ]
        matching.sort(key=lambda s: s.started_at, reverse=params.get("order") == "desc")
        page = matching[offset : offset + limit]
        headers = {}
        if offset + limit < len(matching):
            headers["x-next-token"] = base64.urlsafe_b64encode(
                str(offset + limit).encode()
            ).decode()
        return JSONResponse([listed_json(s) for s in page], headers=headers)

    async def get(request: Request) -> Response:
        sandbox_id = request.path_params["sandbox_id"]
        sandbox = registry.find(sandbox_id)
        if sandbox is None or not sandbox.alive:
            return not_found(sandbox_id)
        return JSONResponse({**listed_json(sandbox), "envdAccessToken": sandbox.token})

    async def kill(request: Request) -> Response:
        sandbox_id = request.path_params["sandbox_id"]
        sandbox = registry.find(sandbox_id)
        if sandbox is None or not await registry.kill(sandbox, reason="killed"):
            return not_found(sandbox_id)
        return Response(status_code=204)

    async def set_timeout(request: Request) -> Response:
        sandbox_id = request.path_params["sandbox_id"]
        body = await _body(request)
        timeout = _timeout((body or {}).get("timeout"), -1)
        if timeout is None or timeout < 0:
            return error(400, "timeout must be a non-negative integer")
        sandbox = registry.find(sandbox_id)
        if sandbox is None or not sandbox.alive:
            return not_found(sandbox_id)
        registry.set_timeout(sandbox, timeout)
        return Response(status_code=204)

    async def connect(request: Request) -> Response:
        """Running: the lifetime only grows (200). Paused: resumed (201)."""
        sandbox_id = request.path_params["sandbox_id"]
        body = await _body(request)
        timeout = _timeout((body or {}).get("timeout"), DEFAULT_TIMEOUT_S)
        if timeout is None:
            return error(400, "timeout must be a non-negative integer")
        sandbox = registry.find(sandbox_id)
        if sandbox is None or not sandbox.alive:
            return not_found(sandbox_id)
        if sandbox.state == "paused":
            registry.resume(sandbox, timeout)
            return JSONResponse(sandbox_json(sandbox), status_code=201)
        registry.extend(sandbox, timeout)
        return JSONResponse(sandbox_json(sandbox), status_code=200)

    async def pause(request: Request) -> Response:
        sandbox_id = request.path_params["sandbox_id"]
        body = await _body(request) or {}
        sandbox = registry.find(sandbox_id)
        if sandbox is None or not sandbox.alive:
            return not_found(sandbox_id)
        if sandbox.state == "paused":
            return error(409, f"sandbox {sandbox_id} is already paused")
        registry.pause(sandbox, keep_memory=body.get("memory") is not False)
        return Response(status_code=204)

    async def fork(request: Request) -> Response:
        """Each requested fork succeeds or fails on its own; the answer lists every one."""
        sandbox_id = request.path_params["sandbox_id"]
        body = await _body(request)
        if body is None:
            return error(400, "the request body must be a JSON object")
        count = body.get("count", 1)
        timeout = _timeout(body.get("timeout"), DEFAULT_FORK_TIMEOUT_S)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_FORKS:
            return error(400, f"count must be an integer between 1 and {MAX_FORKS}")
        if timeout is None:
            return error(400, "timeout must be a non-negative integer")
        parent = registry.find(sandbox_id)
        if parent is None or not parent.alive:
            return not_found(sandbox_id)
        if parent.state != "running":
            return error(409, f"sandbox {sandbox_id} is paused; resume it before forking")
        failures = state.faults.fork_child_failures(count)
        results: list[dict[str, Any]] = []
        for index in range(count):
            if (failure := failures.get(index)) is not None:
                results.append({"error": {"code": failure.status, "message": failure.message}})
                continue
            try:
                child = await registry.fork(parent, timeout)
            except OSError as exc:
                results.append({"error": {"code": 500, "message": str(exc)}})
                continue
            results.append({"sandbox": sandbox_json(child)})
        return JSONResponse(results, status_code=201)

    async def metrics(request: Request) -> Response:
        sandbox = registry.find(request.path_params["sandbox_id"])
        if sandbox is None or not sandbox.alive:
            return not_found(request.path_params["sandbox_id"])
        return JSONResponse([])

    one = "/sandboxes/{sandbox_id}"
    return [
        Route("/v2/sandboxes", create, methods=["POST"]),
        Route("/sandboxes", create, methods=["POST"]),
        Route("/v2/sandboxes", list_sandboxes, methods=["GET"]),
        Route("/sandboxes", list_sandboxes, methods=["GET"]),
        Route(one, get, methods=["GET"]),
        Route(one, kill, methods=["DELETE"]),
        Route(f"{one}/timeout", set_timeout, methods=["POST"]),
        Route(f"/v2{one}/connect", connect, methods=["POST"]),
        Route(f"{one}/connect", connect, methods=["POST"]),
        Route(f"{one}/pause", pause, methods=["POST"]),
        Route(f"{one}/fork", fork, methods=["POST"]),
        Route(f"{one}/metrics", metrics, methods=["GET"]),
    ]
