"""Taking over a task's E2B sandbox after its run's process died (``pcc.resume``).

The sandbox outlives the process (until its lifetime runs out), and so does the agent's command
in it: envd keeps it running. A later process connects to the sandbox by the id the journal
holds, finds the command by the mark every agent command carries (no pid needs journaling:
each task sandbox runs one agent command), and follows its remaining output to its end. What
was printed while no process listened is lost; the changes in the workspace are not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...workspace import BASE_REF
from .runstate import E2BRun
from .sandbox import E2BSandbox
from .scripts import AGENT_MARK, WORKSPACE

if TYPE_CHECKING:
    from e2b import AsyncSandbox

__all__ = ["reattach_sandbox"]

logger = logging.getLogger("parallelcc_sdk")

_REQUEST_TIMEOUT_S = 60


async def reattach_sandbox(
    run: E2BRun,
    described: Mapping[str, Any],
    lifetime_s: int,
    exclude_changes: tuple[str, ...],
) -> E2BSandbox | None:
    """The sandbox ``described`` with its agent's command, or ``None`` (and the sandbox killed,
    if it is there) when either is gone."""
    from e2b import AsyncSandbox

    sandbox_id = described.get("sandbox_id")
    if not isinstance(sandbox_id, str) or not sandbox_id:
        return None
    try:
        sdk = await AsyncSandbox.connect(
            sandbox_id, timeout=lifetime_s, **run.connection.options()
        )
    except Exception as exc:  # gone (its lifetime ran out, or it was killed): restart the task
        logger.info("E2B sandbox %s cannot be re-attached to: %s", sandbox_id, exc)
        return None
    try:
        pid = await _agent_pid(sdk)
        # That process's snapshot, not this one's (a new commit, though of the same tree).
        base_commit = await _base_commit(sdk) if pid is not None else None
    except Exception as exc:
        logger.info("E2B sandbox %s cannot be re-attached to: %s", sandbox_id, exc)
        pid = base_commit = None
    if pid is None or base_commit is None:
        # The agent ended while no process listened: its exit code and last output are lost,
        # so the task runs again, and this sandbox is not needed.
        await asyncio.shield(run.kill(sdk))
        return None
    base = described.get("base_sandbox_id")
    try:
        return E2BSandbox(
            sdk=sdk,
            run=run,
            how="fork" if described.get("prepared_by") == "fork" else "upload",
            lifetime_s=lifetime_s,
            exclude_changes=exclude_changes,
            attach_pid=pid,
            base_id=base if isinstance(base, str) else None,
            base_commit=base_commit,
        )
    except BaseException:
        await asyncio.shield(run.kill(sdk))
        raise


async def _agent_pid(sdk: AsyncSandbox) -> int | None:
    processes = await sdk.commands.list(request_timeout=_REQUEST_TIMEOUT_S)
    found = [p.pid for p in processes if any(AGENT_MARK in part for part in (p.cmd, *p.args))]
    return found[0] if len(found) == 1 else None


async def _base_commit(sdk: AsyncSandbox) -> str | None:
    text = await sdk.files.read(f"{WORKSPACE}/.git/{BASE_REF}", request_timeout=_REQUEST_TIMEOUT_S)
    commit = text.strip()
    return commit if len(commit) >= 40 and all(c in "0123456789abcdef" for c in commit) else None
