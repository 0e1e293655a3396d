"""Jupyter helpers for the tests that start a real kernel."""

from __future__ import annotations

import json
import queue
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


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


class Cell:
    """What one executed cell produced on IOPub."""

    def __init__(self) -> None:
        self.stdout = ""
        self.stderr = ""
        self.error: dict[str, Any] | None = None
        self.outputs: list[dict[str, Any]] = []
        self.comm_updates: list[float] = []
        self.comm_states: list[dict[str, Any]] = []
        self.started = time.monotonic()
        self.idle_at: float | None = None


def execute(
    kc: Any,
    code: str,
    timeout: float = 120,
    after: float | None = None,
    action: Callable[[], object] | None = None,
) -> Cell:
    """Runs ``code`` on the kernel client ``kc`` and collects what the cell produced; ``action``
    (an interrupt, a widget click) is done ``after`` seconds while the cell runs."""
    msg_id = kc.execute(textwrap.dedent(code))
    cell = Cell()
    deadline = time.monotonic() + timeout
    acted = False
    while True:
        if action is not None and not acted and time.monotonic() - cell.started > (after or 0):
            action()
            acted = True
        try:
            msg = kc.get_iopub_msg(timeout=0.2)
        except queue.Empty:
            if time.monotonic() > deadline:
                raise TimeoutError(f"cell did not finish in {timeout}s: {code}") from None
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "comm_msg" and content.get("data", {}).get("method") == "update":
            cell.comm_updates.append(time.monotonic())
            cell.comm_states.append(content["data"].get("state", {}))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if kind == "stream":
            if content["name"] == "stdout":
                cell.stdout += content["text"]
            else:
                cell.stderr += content["text"]
        elif kind == "error":
            cell.error = content
        elif kind in ("display_data", "execute_result", "update_display_data"):
            cell.outputs.append({"type": kind, **content})
        elif kind == "status" and content["execution_state"] == "idle":
            cell.idle_at = time.monotonic()
            return cell
