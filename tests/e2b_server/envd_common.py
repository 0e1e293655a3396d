"""What envd's RPC services share: which sandbox and which user a call is for."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from protobuf import Oneof

from .layout import DEFAULT_USER, USERS, User
from .sandboxes import Registry, Sandbox, SandboxGone

SANDBOX_ID_HEADER = "e2b-sandbox-id"
KEEPALIVE_HEADER = "keepalive-ping-interval"
DEFAULT_KEEPALIVE_S = 50.0


def one_of(field: str, value: object) -> Any:
    """A protobuf oneof value. (The generated types name each member by a literal; this server
    chooses the member at run time, so the value is handed over untyped.)"""
    return Oneof(field, value)


def sandbox_id_from(headers: Mapping[str, str]) -> str | None:
    """The sandbox a request is for: the SDK's routing header, or a ``49983-<id>.<domain>`` host."""
    if value := headers.get(SANDBOX_ID_HEADER):
        return value
    host = headers.get("host", "").split(":")[0]
    label = host.split(".")[0]
    if "-" in label and label.split("-", 1)[0].isdigit():
        return label.split("-", 1)[1]
    return None


def user_named(name: str | None) -> User | None:
    """The user an envd call asks for (``None``: the template's default user)."""
    return USERS.get(name or DEFAULT_USER)


def user_from_authorization(value: str | None) -> User | None:
    """``Authorization: Basic base64("<user>:")`` as the SDK sends it; None if unknown."""
    if not value:
        return user_named(None)
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        name = base64.b64decode(encoded).decode().split(":", 1)[0]
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user_named(name)


def rpc_sandbox(registry: Registry, headers: Mapping[str, str]) -> Sandbox:
    """The running sandbox of an RPC (the gate let only those through; it may die meanwhile)."""
    sandbox_id = sandbox_id_from(headers)
    try:
        return registry.running(sandbox_id)
    except SandboxGone:
        raise ConnectError(Code.UNAVAILABLE, f"The sandbox {sandbox_id} was not found") from None


def rpc_user(headers: Mapping[str, str]) -> User:
    user = user_from_authorization(headers.get("authorization"))
    if user is None:
        raise ConnectError(Code.UNAUTHENTICATED, f"unknown user: use one of {sorted(USERS)}")
    return user


def keepalive_interval(headers: Mapping[str, str]) -> float:
    try:
        return max(0.05, float(headers.get(KEEPALIVE_HEADER, DEFAULT_KEEPALIVE_S)))
    except ValueError:
        return DEFAULT_KEEPALIVE_S
