"""Test setup for running the notebooks with nbval.

``03-claude-code.ipynb`` is written exactly as a user runs it; here it talks to the scripted
Messages API of the Claude agent's tests instead of the real one, switched on only through the
environment the notebook kernels inherit (``ANTHROPIC_BASE_URL``, ``ANTHROPIC_API_KEY``). Set
``PARALLELCC_NOTEBOOKS_REAL_API=1`` to run it against your own credentials instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

_server: Any = None


def pytest_configure(config: pytest.Config) -> None:
    global _server
    if os.environ.get("PARALLELCC_NOTEBOOKS_REAL_API") == "1":
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from support.scripted_anthropic import ScriptedAnthropic, note_taker

    # Each task's "model" makes one small real edit, so the notebook shows real changes.
    _server = ScriptedAnthropic(responder=note_taker).start()
    # Kernels are started by nbval after this and inherit the environment.
    os.environ["ANTHROPIC_BASE_URL"] = _server.url
    os.environ["ANTHROPIC_API_KEY"] = "sk-ant-scripted-notebook-key"
    for var in ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN"):
        os.environ.pop(var, None)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _server is not None:
        _server.stop()
