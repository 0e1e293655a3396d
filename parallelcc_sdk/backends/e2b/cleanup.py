"""Finding and killing the E2B sandboxes of runs that died: by their journal and by label.

Every sandbox of a run carries the label ``parallelcc_run_id`` (a fork inherits its base's), and
the journal names each task's sandbox the moment it exists, and the run's base sandbox. A run
whose process is still alive is left alone. Without a run folder, only the labels are there to
go by: a sandbox is a leftover when its ``parallelcc_owner`` label names a process of this
machine that no longer runs; sandboxes started from other machines are never touched.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from ...errors import CredentialsError
from ...runfolder.reader import read_journal
from .._process import owner_alive
from ..base import LABEL_RUN_ID
from .backend import LABEL_OWNER
from .sdk import Connection, api_key_from, sdk_installed

__all__ = ["cleanup_orphans", "cleanup_run"]

logger = logging.getLogger("parallelcc_sdk")

_PAGE = 100


def _connection(domain: Any = None) -> Connection | None:
    key = api_key_from(None)
    if key is None:
        return None
    return Connection(key, domain if isinstance(domain, str) and domain else None)


async def cleanup_run(run_dir: Path, *, spare: Collection[str] = ()) -> list[str]:
    """Kills what the run in ``run_dir`` left running (but the sandboxes in ``spare``), unless
    the run is still going."""
    journal = await asyncio.to_thread(read_journal, run_dir)
    if journal.process_alive:
        return []
    if not sdk_installed():
        return []
    backend = journal.config.get("backend")
    connection = _connection(backend.get("domain") if isinstance(backend, dict) else None)
    if connection is None:
        raise CredentialsError(
            f"cleaning up the E2B sandboxes of run {journal.run_id} needs the E2B API key; "
            "set E2B_API_KEY and run it again."
        )
    ids: list[str] = []
    for task in journal.tasks:
        if task.sandbox_id:
            ids.append(task.sandbox_id)
        base = task.sandbox_info.get("base_sandbox_id")
        if isinstance(base, str):
            ids.append(base)
    base_id = journal.backend_run.get("base_sandbox_id")
    if isinstance(base_id, str):
        ids.append(base_id)
    labelled = await _listed(connection, {LABEL_RUN_ID: journal.run_id})
    ids += [info.sandbox_id for info in labelled]
    doomed = [i for i in dict.fromkeys(ids) if i not in set(spare)]
    return await _kill_all(connection, doomed, f"run {journal.run_id}")


async def cleanup_orphans() -> list[str]:
    """Kills every labelled sandbox whose run's process, on this machine, is gone."""
    if not sdk_installed():
        return []
    connection = _connection(os.environ.get("E2B_DOMAIN"))
    if connection is None:
        return []  # nothing to look at without a key: not an error for `pcc.cleanup()`
    host = f"{socket.gethostname()}:"
    orphans: dict[str, str] = {}
    for info in await _listed(connection, None):
        owner = info.metadata.get(LABEL_OWNER, "")
        if owner.startswith(host) and not owner_alive(owner[len(host) :]):
            orphans[info.sandbox_id] = f"run {info.metadata.get(LABEL_RUN_ID, '?')}"
    closed: list[str] = []
    for sandbox_id, what in orphans.items():
        closed += await _kill_all(connection, [sandbox_id], what)
    return closed


async def _listed(connection: Connection, metadata: dict[str, str] | None) -> list[Any]:
    from e2b import AsyncSandbox, SandboxQuery

    query = SandboxQuery(metadata=metadata) if metadata else None
    pages = AsyncSandbox.list(query=query, limit=_PAGE, **connection.options())
    found: list[Any] = []
    while pages.has_next:
        found += await pages.next_items()
    return found


async def _kill_all(connection: Connection, ids: Iterable[str], what: str) -> list[str]:
    from e2b import AsyncSandbox

    async def kill(sandbox_id: str) -> str | None:
        try:
            killed = await AsyncSandbox.kill(sandbox_id, **connection.options())
        except Exception as exc:
            logger.warning("could not kill E2B sandbox %s: %s", sandbox_id, exc)
            return None
        return f"E2B sandbox {sandbox_id} ({what})" if killed else None

    results = await asyncio.gather(*(kill(i) for i in ids))
    return [r for r in results if r is not None]
