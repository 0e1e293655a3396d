"""Jupyter helpers for the tests that start a real kernel."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def write_venv_kernelspec(jupyter_path: Path, display_name: str) -> Path:
    """A ``python3`` kernelspec under ``jupyter_path`` (a JUPYTER_PATH entry) that runs this
    interpreter (the venv), whatever python3 kernelspec the machine has."""
    spec = jupyter_path / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": display_name,
                "language": "python",
            }
        )
    )
    return spec
