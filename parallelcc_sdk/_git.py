"""Running git without blocking the event loop, and the same way on every machine."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from .errors import GitError

__all__ = ["GitError", "git", "git_env", "git_sync"]

# Commands must behave the same on every machine: no pager, no prompts, no localised messages,
# and an identity for the snapshot commit that does not depend on the user's config.
_BASE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
    "LC_ALL": "C",
    "GIT_AUTHOR_NAME": "parallelcc",
    "GIT_AUTHOR_EMAIL": "parallelcc@localhost",
    "GIT_COMMITTER_NAME": "parallelcc",
    "GIT_COMMITTER_EMAIL": "parallelcc@localhost",
    # Every repository the SDK writes to (snapshot store, workspaces) is throwaway: syncing its
    # files to disk only slows each task down. The user's repository is only ever read.
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "core.fsync",
    "GIT_CONFIG_VALUE_0": "none",
}


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(_BASE_ENV)
    if extra:
        env.update(extra)
    return env


async def git(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    check: bool = True,
    stdout: IO[bytes] | None = None,
) -> bytes:
    """Runs ``git args...`` and returns its stdout; raises :class:`GitError` on failure.

    With ``stdout`` (an open file), the output goes there instead (a pack can be large).
    """
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env=git_env(env),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await proc.communicate(stdin)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if check and proc.returncode != 0:
        message = err.decode(errors="replace").strip() or f"exit code {proc.returncode}"
        raise GitError(f"git {args[0]} failed: {message}")
    return out or b""


def git_sync(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    check: bool = True,
) -> bytes:
    """The blocking twin of :func:`git`, for validation before a run starts and for the
    synchronous methods of a finished run's result."""
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=git_env(env),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    if check and done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
        raise GitError(f"git {args[0]} failed: {message}")
    return done.stdout
