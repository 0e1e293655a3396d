"""``pcc.cleanup``: close what crashed or interrupted runs left behind.

A run's journal names its backend; that backend's class-level ``cleanup`` finds the leftovers
(folders, processes, remote sandboxes) by the run id they carry. Whatever belongs to a run that
is still going is left alone.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Collection
from pathlib import Path

from . import _bridge
from .backends.registry import backend_class, known_backend_classes
from .errors import SyncCallInRunningLoopError
from .runfolder.reader import JournalState, read_journal
from .runfolder.writer import mark_interrupted

__all__ = ["cleanup", "cleanup_async"]


def cleanup(
    run_dir: str | os.PathLike[str] | None = None, *, spare: Collection[str] = ()
) -> list[str]:
    """Closes what the run in ``run_dir`` (or, with ``None``, any run) left behind.

    ``spare``: ids of sandboxes of ``run_dir`` to leave alive (``pcc.resume`` re-attaches to
    them), where its backend can re-attach. Returns one line per thing closed. Blocks until
    done; works in scripts and notebooks.
    """
    if _bridge.running_loop() is _bridge.portal.loop():
        raise SyncCallInRunningLoopError(
            "pcc.cleanup() was called on the SDK's own event-loop thread (from a listener?), "
            "where blocking would hang it; use `await pcc.cleanup_async()` there instead."
        )
    return _bridge.portal.submit(cleanup_async(run_dir, spare=spare)).result()


async def cleanup_async(
    run_dir: str | os.PathLike[str] | None = None, *, spare: Collection[str] = ()
) -> list[str]:
    """The async twin of :func:`cleanup`."""
    closed: list[str] = []
    if run_dir is not None:
        path = await asyncio.to_thread(lambda: Path(run_dir).expanduser())
        journal = await asyncio.to_thread(read_journal, path)
        cls = backend_class(_backend_name(journal))
        if spare and cls.supports_reattach:
            closed += await cls.cleanup(path, spare=spare)
        else:
            closed += await cls.cleanup(path)
        # Only once its leftovers are gone does a dead run read as over.
        if await asyncio.to_thread(mark_interrupted, path):
            closed.append(f"run {journal.run_id}: journal marked interrupted")
        return closed
    for cls in known_backend_classes():
        closed += await cls.cleanup(None)
    return closed


def _backend_name(journal: JournalState) -> str:
    backend = journal.config.get("backend")
    return str(backend.get("name", "")) if isinstance(backend, dict) else ""
