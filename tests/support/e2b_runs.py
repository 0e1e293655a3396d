"""Helpers of the E2B backend tests (``tests/e2b_backend``): run options and server records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import parallelcc_sdk as pcc

BIG_FILE_BYTES = 64 * 1024
"""A random file this large in the test repository tells the run's archive from the small
per-attempt uploads in the server's request log (nothing can compress it)."""
FAST_RATE = 100.0
"""Creations per second in tests: the local server has no rate limit to respect."""


def e2b_options(repo: Path, output_dir: Path, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of a quick run on the E2B backend (fork unless told otherwise)."""
    backend = overrides.pop("backend", None) or pcc.E2BBackend(
        prepare=overrides.pop("prepare", "fork"), create_rate=FAST_RATE
    )
    options: dict[str, Any] = {
        "repo": repo,
        "backend": backend,
        "output_dir": output_dir,
        "progress": "off",
        "max_concurrent": 3,
    }
    options.update(overrides)
    return options


def task_sandbox(record: Any) -> bool:
    """A server record of a task's sandbox (a fork, or created with a task label): not a base."""
    return record.parent_id is not None or "parallelcc_task_id" in record.metadata
