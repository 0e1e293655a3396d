"""This server's own HTTP endpoints under ``/_debug`` (no API key; the server listens on loopback):

- ``GET /_debug/log[?op=create&sandbox_id=...]``: the request log as JSON;
- ``GET /_debug/sandboxes``: every sandbox (alive or ended), the ids alive, the most alive at
  once, and how many were alive over time;
- ``POST /_debug/faults`` with ``{"kind": "fail", "op": "create", "status": 429, "times": 2}``
  (``kind`` is a method of :class:`~.faults.Faults`, the other keys its arguments);
  ``DELETE /_debug/faults`` clears them;
- ``POST /_debug/sandboxes/<id>/kill``: the server kills a sandbox, as if its VM died.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .sandboxes import SandboxRecord
from .state import ServerState


def _record(record: SandboxRecord) -> dict[str, Any]:
    data = asdict(record)
    data["folder"] = str(record.folder)
    return data


def routes(state: ServerState) -> list[Route]:
    async def log(request: Request) -> Response:
        op = request.query_params.get("op")
        sandbox_id = request.query_params.get("sandbox_id")
        entries = state.log.entries(op, sandbox_id=sandbox_id)
        return JSONResponse([e.to_json() for e in entries])

    async def sandboxes(request: Request) -> Response:
        registry = state.registry
        return JSONResponse(
            {
                "alive": registry.alive_ids(),
                "max_alive": registry.max_alive(),
                "alive_over_time": registry.alive_over_time(),
                "sandboxes": [_record(r) for r in registry.records()],
            }
        )

    async def add_fault(request: Request) -> Response:
        try:
            spec = await request.json()
            if not isinstance(spec, dict):
                raise ValueError("the body must be a JSON object")
            state.faults.add_from_json(spec)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"code": 400, "message": str(exc)}, status_code=400)
        return Response(status_code=204)

    async def clear_faults(request: Request) -> Response:
        state.faults.clear()
        return Response(status_code=204)

    async def kill(request: Request) -> Response:
        sandbox = state.registry.find(request.path_params["sandbox_id"])
        if sandbox is None or not await state.registry.kill(sandbox, reason="server"):
            return JSONResponse({"code": 404, "message": "no such live sandbox"}, status_code=404)
        return Response(status_code=204)

    return [
        Route("/_debug/log", log, methods=["GET"]),
        Route("/_debug/sandboxes", sandboxes, methods=["GET"]),
        Route("/_debug/faults", add_fault, methods=["POST"]),
        Route("/_debug/faults", clear_faults, methods=["DELETE"]),
        Route("/_debug/sandboxes/{sandbox_id}/kill", kill, methods=["POST"]),
    ]
