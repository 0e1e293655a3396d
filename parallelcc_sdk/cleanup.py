"""``pcc.cleanup``: close what crashed or interrupted runs left behind.

A run's journal names its backend; that backend's class-level ``cleanup`` finds the leftovers
(folders, processes, remote sandboxes) by the run id they carry. Whatever belongs to a run that
is still going is left alone.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from . import _bridge
from .backends.registry import backend_class, known_backend_classes
from .errors import SyncCallInRunningLoopError
from .runinfo import RunBackendInfo, read_run_backend

__all__ = ["cleanup", "cleanup_async"]


def cleanup(run_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Closes what the run in ``run_dir`` (or, with ``None``, any run) left behind.

    Returns one line per thing closed. Blocks until done; works in scripts and notebooks.
    """
    if _bridge.running_loop() is _bridge.portal.loop():
        raise SyncCallInRunningLoopError(
            "pcc.cleanup() was called on the SDK's own event-loop thread (from a listener?), "
            "where blocking would hang it; use `await pcc.cleanup_async()` there instead."
        )
    return _bridge.portal.submit(cleanup_async(run_dir)).result()


async def cleanup_async(run_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The async twin of :func:`cleanup`."""
    if run_dir is not None:
        path, info = await asyncio.to_thread(_read, run_dir)
        return await backend_class(info.backend_name).cleanup(path)
    closed: list[str] = []
    for cls in known_backend_classes():
        closed += await cls.cleanup(None)
    return closed


def _read(run_dir: str | os.PathLike[str]) -> tuple[Path, RunBackendInfo]:
    path = Path(run_dir).expanduser()
    return path, read_run_backend(path)
