"""Names of the operations the server answers, from a request's method and path.

The same names are used by the request log and by fault injection. Control plane: ``create``,
``list``, ``get``, ``kill``, ``set_timeout``, ``connect``, ``pause``, ``fork``, ``metrics``.
envd: ``health``, ``files.upload``, ``files.download``, ``process.<Method>`` and
``filesystem.<Method>`` (e.g. ``process.Start``, ``filesystem.ListDir``). This server's own
endpoints are ``debug`` (never logged).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["rest", "envd", "debug", "unknown"]

_SANDBOX_ACTION = re.compile(r"^/(?:v2/)?sandboxes/(?P<id>[^/]+)(?:/(?P<action>[a-z]+))?$")
_ACTIONS = {
    ("GET", None): "get",
    ("DELETE", None): "kill",
    ("POST", "timeout"): "set_timeout",
    ("POST", "connect"): "connect",
    ("POST", "pause"): "pause",
    ("POST", "fork"): "fork",
    ("GET", "metrics"): "metrics",
}
_RPC = re.compile(r"^/(?P<service>process\.Process|filesystem\.Filesystem)/(?P<method>[A-Za-z]+)$")


@dataclass(frozen=True)
class Op:
    name: str
    kind: Kind
    sandbox_id: str | None = None
    """The sandbox named in a control-plane path (envd requests name it in a header)."""


def classify(method: str, path: str) -> Op:
    if path.startswith("/_debug/") or path == "/_debug":
        return Op("debug", "debug")
    if path in ("/sandboxes", "/v2/sandboxes"):
        return Op("create" if method == "POST" else "list", "rest")
    if match := _SANDBOX_ACTION.match(path):
        name = _ACTIONS.get((method, match["action"]))
        return Op(name or "unknown", "rest" if name else "unknown", match["id"])
    if path == "/health":
        return Op("health", "envd")
    if path == "/files":
        return Op("files.upload" if method == "POST" else "files.download", "envd")
    if match := _RPC.match(path):
        service = match["service"].split(".")[0]
        return Op(f"{service}.{match['method']}", "envd")
    return Op("unknown", "unknown")
