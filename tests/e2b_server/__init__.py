"""A local E2B-compatible server for tests: the real, unmodified ``e2b`` SDK talks to it over
plain HTTP on 127.0.0.1, and every sandbox is a folder on this machine whose commands run under
bubblewrap.

It serves E2B's control plane (create, list, get, kill, timeouts, connect, pause, fork), envd's
process and filesystem services (Connect RPC) and its ``/files`` endpoints, expires sandboxes,
logs every request and injects faults. See ``docs/e2b-test-server.md``.

In a test, use the ``e2b_server`` fixture (``fixtures.py``). By hand::

    python -m tests.e2b_server --port 3000
    # then, in another shell, the printed variables:
    export E2B_API_KEY=... E2B_API_URL=http://127.0.0.1:3000 E2B_SANDBOX_URL=http://127.0.0.1:3000
"""

from __future__ import annotations

from typing import Any

__all__ = ["E2BTestServer"]


def __getattr__(name: str) -> Any:
    # Lazy, so that registering the fixtures does not import e2b, uvicorn and starlette.
    if name == "E2BTestServer":
        from .server import E2BTestServer

        return E2BTestServer
    raise AttributeError(name)
