"""Fixtures of the E2B backend tests: the local E2B server (its settings in the environment, as
a user would set them) and a repository to run on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from e2b_server.fixtures import require_bubblewrap
from e2b_server.server import E2BTestServer
from support.e2b_runs import BIG_FILE_BYTES
from support.gitrepo import SAMPLE_FILES, make_repo


@pytest.fixture
def server(e2b_env: E2BTestServer) -> E2BTestServer:
    """The local E2B server, its variables set in the environment; sandboxes under bubblewrap."""
    require_bubblewrap(e2b_env)
    return e2b_env


@pytest.fixture
def repo(tmp_path: Path, pcc_git_env: Path) -> Path:
    return make_repo(
        tmp_path / "repo", {**SAMPLE_FILES, "assets/blob.bin": os.urandom(BIG_FILE_BYTES)}
    )
