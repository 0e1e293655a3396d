"""Fixtures of the command-line tests (the helpers are in support/cli.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import PARALLELCC, Cli, cli_env, kill_sandboxes_under
from support.gitrepo import make_repo


@pytest.fixture(scope="session", autouse=True)
def installed_script() -> Path:
    if not PARALLELCC.is_file():
        pytest.fail(
            f"the console script {PARALLELCC} is missing: install the package into this "
            "environment (pip install -e '.[dev]') to test the command line."
        )
    return PARALLELCC


@pytest.fixture
def cli(tmp_path: Path, pcc_git_env: Path) -> Iterator[Cli]:
    repo = make_repo(tmp_path / "repo", {"README.md": "# demo\n", "src/app.py": "x = 1\n"})
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    yield Cli(repo=repo, output_dir=tmp_path / "results", env=cli_env(tmp), tmp=tmp)
    kill_sandboxes_under(tmp)
