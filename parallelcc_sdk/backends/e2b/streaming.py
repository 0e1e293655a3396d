"""Following one command in an E2B sandbox to its end, its output split into lines.

A command the backend starts (an agent, a set-up) and one it re-attaches to after its run's
process died (``commands.connect``) are followed the same way: every line goes to ``on_line``,
the exit code is returned, and a cancellation kills the command before it propagates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from ...contract import LineHandler
from ..lines import LineSplitter
from .runstate import KILL_TIMEOUT_S
from .sdk import sandbox_error

if TYPE_CHECKING:
    from e2b import AsyncCommandHandle, AsyncSandbox

__all__ = ["Starter", "follow", "run_followed"]

logger = logging.getLogger("parallelcc_sdk")

Starter = Callable[[Callable[[str], None], Callable[[str], None]], Awaitable[Any]]
"""Starts (or connects to) the command with the given stdout and stderr callbacks; returns its
handle."""


async def follow(sandbox_id: str, start: Starter, on_line: LineHandler) -> int:
    """Starts the command with ``start`` and waits for its end; returns its exit code."""
    from e2b import CommandExitException

    out, err = LineSplitter(), LineSplitter()

    def on_stdout(chunk: str) -> None:
        for line in out.feed(chunk):
            on_line("stdout", line)

    def on_stderr(chunk: str) -> None:
        for line in err.feed(chunk):
            on_line("stderr", line)

    try:
        handle = await start(on_stdout, on_stderr)
    except Exception as exc:
        raise sandbox_error(sandbox_id, exc, "starting the command") from exc
    try:
        await handle.wait()
        code = 0
    except CommandExitException as exc:
        code = exc.exit_code
    except asyncio.CancelledError:
        await asyncio.shield(_kill(sandbox_id, handle))
        raise
    except Exception as exc:
        await asyncio.shield(_kill(sandbox_id, handle))
        raise sandbox_error(sandbox_id, exc, "running the command") from exc
    for line in out.finish():
        on_line("stdout", line)
    for line in err.finish():
        on_line("stderr", line)
    return code


async def run_followed(
    sdk: AsyncSandbox,
    text: str,
    *,
    envs: Mapping[str, str],
    cwd: str,
    on_line: LineHandler,
    request_timeout: float,
) -> int:
    """Starts the shell ``text`` in the background in ``sdk``'s sandbox and follows it."""

    def start(on_stdout: Callable[[str], None], on_stderr: Callable[[str], None]) -> Any:
        return sdk.commands.run(
            text,
            background=True,
            # Credentials travel here, in the process's environment, never in its text.
            envs=dict(envs),
            cwd=cwd,
            on_stdout=on_stdout,
            on_stderr=on_stderr,
            # No deadline: the engine enforces the task's time limit (cancelling this).
            timeout=0,
            request_timeout=request_timeout,
            retain_output=False,
        )

    return await follow(sdk.sandbox_id, start, on_line)


async def _kill(sandbox_id: str, handle: AsyncCommandHandle[Any]) -> None:
    try:
        await asyncio.wait_for(handle.kill(), KILL_TIMEOUT_S)
    except Exception as exc:  # the sandbox may be gone: then so is the command
        logger.debug("could not kill a command in %s: %s", sandbox_id, exc)
    await handle.disconnect()
