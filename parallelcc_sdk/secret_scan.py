"""Finding known secret values in a task's collected changes.

The log and events are redacted as they are written; a task's changes cannot be: a patch with a
value masked would no longer apply. So the files are left as they are and the task's record names
the ones that hold a secret (``TaskResult.secrets_in_changes``), never the secret itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .runfolder.layout import CHANGED_FILES_DIR, PATCH_FILE

logger = logging.getLogger("parallelcc_sdk")

_CHUNK = 1 << 20


def files_holding_secrets(task_dir: Path, secrets: Iterable[str]) -> tuple[str, ...]:
    """Paths, relative to ``task_dir``, of ``changes.patch`` and the files under
    ``changed-files/`` that contain one of ``secrets`` (compared as UTF-8 bytes).

    Links are not followed: what a link points to is not an output. Reads each file once, in
    chunks, so the cost follows the size of the changes, not of the repository.
    """
    needles = sorted({s.encode() for s in secrets if s}, key=len, reverse=True)
    if not needles:
        return ()
    found = tuple(
        path.relative_to(task_dir).as_posix()
        for path in _output_files(task_dir)
        if _holds_any(path, needles)
    )
    if found:
        # Paths only: the value itself must not reach a log either.
        logger.warning(
            "%s: a secret value was written into %s; review before applying or sharing",
            task_dir.name,
            ", ".join(found),
        )
    return found


def _output_files(task_dir: Path) -> Iterator[Path]:
    patch = task_dir / PATCH_FILE
    if patch.is_file() and not patch.is_symlink():
        yield patch
    copies = task_dir / CHANGED_FILES_DIR
    for dirpath, dirnames, filenames in os.walk(copies):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if path.is_file() and not path.is_symlink():
                yield path


def _holds_any(path: Path, needles: list[bytes]) -> bool:
    # Consecutive chunks overlap by the longest secret less one byte, so a secret cut in two by
    # a chunk boundary is still found.
    overlap = len(needles[0]) - 1
    tail = b""
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                window = tail + chunk
                if any(needle in window for needle in needles):
                    return True
                tail = window[-overlap:] if overlap else b""
    except OSError:
        return False
    return False
