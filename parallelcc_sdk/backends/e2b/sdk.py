"""The ``e2b`` SDK, imported on first use, and what its exceptions mean for a run.

Nothing here imports ``e2b`` at module level: ``import parallelcc_sdk`` (and even loading this
backend's class) must work where the ``[e2b]`` extra is not installed.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import (
    BackendUnavailableError,
    CredentialsError,
    ParallelCCError,
    TransientBackendError,
)

__all__ = [
    "Connection",
    "E2BError",
    "SandboxLostError",
    "api_key_from",
    "is_gone",
    "is_transient",
    "require_sdk",
    "sandbox_error",
    "sdk_installed",
    "start_error",
]

INSTALL_HINT = "pip install 'parallelcc-sdk[e2b]'"
KEY_HINT = "set E2B_API_KEY (from https://e2b.dev/dashboard) or pass E2BBackend(api_key=...)"


class E2BError(ParallelCCError):
    """E2B refused or failed a request the backend made."""


class SandboxLostError(TransientBackendError):
    """The sandbox stopped under a running task (its VM died, or it was killed from outside).

    Transient: a fresh sandbox may well succeed, so a run with ``retries`` tries again.
    """


@dataclass(frozen=True)
class Connection:
    """How every SDK call reaches E2B: the key, and the domain when it is not E2B's own.

    Kept out of ``repr`` and ``describe``: the key is a secret.
    """

    api_key: str
    domain: str | None = None

    def options(self) -> dict[str, Any]:
        """Keyword arguments for any SDK call (the SDK's ``ApiParams``)."""
        options: dict[str, Any] = {"api_key": self.api_key}
        if self.domain:
            options["domain"] = self.domain
        return options

    def __repr__(self) -> str:
        return f"Connection(domain={self.domain!r})"


def sdk_installed() -> bool:
    return importlib.util.find_spec("e2b") is not None


def require_sdk() -> None:
    """Raises :class:`BackendUnavailableError` where the ``e2b`` SDK is not installed."""
    if not sdk_installed():
        raise BackendUnavailableError(
            f"E2BBackend needs the e2b SDK, which is not installed; run `{INSTALL_HINT}`."
        )


def api_key_from(explicit: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The key given, else ``E2B_API_KEY``; ``None`` when there is neither."""
    if explicit:
        return explicit
    value = (os.environ if env is None else env).get("E2B_API_KEY", "").strip()
    return value or None


def is_transient(exc: BaseException) -> bool:
    """A failure a later try may not meet: rate limits, no capacity, 5xx, a dropped connection."""
    import httpx
    from e2b import (
        GuestUnresponsiveException,
        RateLimitException,
        SandboxException,
        SandboxNotRunningException,
        ServiceBusyException,
        TimeoutException,
    )

    if isinstance(exc, RateLimitException | ServiceBusyException | GuestUnresponsiveException):
        return True
    if isinstance(exc, httpx.TransportError | ConnectionError):
        return True
    if isinstance(exc, TimeoutException) and not isinstance(exc, SandboxNotRunningException):
        return True  # the request timed out, not the sandbox
    status = getattr(exc, "status_code", None)
    return isinstance(exc, SandboxException) and isinstance(status, int) and status >= 500


def is_gone(exc: BaseException) -> bool:
    """The sandbox no longer exists (killed, expired, or never was)."""
    from e2b import SandboxNotFoundException, SandboxNotRunningException

    return isinstance(exc, SandboxNotFoundException | SandboxNotRunningException)


def sandbox_error(sandbox_id: str, exc: Exception, doing: str) -> Exception:
    """The SDK's exception from work inside a running sandbox, as the task should see it."""
    if is_gone(exc):
        return SandboxLostError(
            f"E2B sandbox {sandbox_id} stopped while {doing} (it was killed, or its lifetime "
            "ran out); the task's work in it is lost"
        )
    if is_transient(exc):
        return TransientBackendError(
            f"lost contact with E2B sandbox {sandbox_id} while {doing}: {exc}"
        )
    return E2BError(f"{doing} in E2B sandbox {sandbox_id} failed: {type(exc).__name__}: {exc}")


def start_error(exc: Exception, what: str) -> Exception:
    """The SDK's exception from creating or forking a sandbox, as the run should see it.

    A rejected key is the user's input to fix; a rate limit, a busy service, a 5xx or a lost
    connection is worth another try (:class:`TransientBackendError`); anything else is final.
    No message carries the key: the SDK's own messages never include it.
    """
    from e2b import AuthenticationException

    if isinstance(exc, AuthenticationException):
        return CredentialsError(f"E2B rejected the API key (401 Unauthorized); {KEY_HINT}.")
    detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
    if is_transient(exc):
        return TransientBackendError(f"E2B could not {what} for now ({detail})")
    return E2BError(f"E2B could not {what} ({detail})")
