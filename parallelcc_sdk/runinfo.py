"""The little a backend's ``cleanup`` needs from a run folder: the run id and the backend config."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ValidationError

__all__ = ["RunBackendInfo", "read_run_backend"]

_JOURNAL = "run.json"


@dataclass(frozen=True)
class RunBackendInfo:
    run_id: str
    backend: Mapping[str, Any]
    """``config.backend`` of the journal: what the backend's ``describe()`` said at the start."""

    @property
    def backend_name(self) -> str:
        return str(self.backend.get("name", ""))


def read_run_backend(run_dir: Path) -> RunBackendInfo:
    """Reads the run's journal; a folder that is not a run raises a one-sentence error."""
    path = Path(run_dir) / _JOURNAL
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(
            f"run_dir {str(run_dir)!r} has no {_JOURNAL}; pass the folder of one run "
            "(<output_dir>/<run_id>)."
        ) from None
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{path} cannot be read ({exc}); the run folder is damaged.") from exc
    config = data.get("config") if isinstance(data, dict) else None
    backend = config.get("backend") if isinstance(config, dict) else None
    if not isinstance(backend, dict) or not isinstance(backend.get("name"), str):
        raise ValidationError(f"{path} does not say which backend the run used (config.backend).")
    run_id = data.get("run_id")
    return RunBackendInfo(
        run_id=run_id if isinstance(run_id, str) and run_id else Path(run_dir).name,
        backend=backend,
    )
