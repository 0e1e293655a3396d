"""What every part of the server shares: the sandboxes, the request log, the faults, the key."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from .faults import Faults
from .requestlog import RequestLog
from .sandboxes import Registry

ENVD_VERSION = "0.6.4"
"""The envd version reported to the SDK: every feature the SDK gates up to it is served here."""
CLIENT_ID = "local-e2b-test-server"


@dataclass
class ServerState:
    registry: Registry
    api_key: str
    log: RequestLog
    faults: Faults
    templates: Collection[str] | None = None
    """Template names ``create`` accepts; None accepts any name (they all are this machine)."""
