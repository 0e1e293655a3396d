"""Running a short helper command whose only output worth keeping is its error text."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence


async def run_quietly(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None
) -> tuple[int, str]:
    """Runs ``argv`` with no input and its output dropped; returns its exit code and stderr.

    If the caller is cancelled meanwhile, the command is killed before the cancellation goes on,
    so nothing outlives the call.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(env) if env is not None else None,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await proc.communicate()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, err.decode(errors="replace")
