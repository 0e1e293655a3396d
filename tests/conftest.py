"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.e2e import local_run_options
from support.gitrepo import USER_EMAIL, USER_NAME, make_repo
from support.scripted_anthropic import ScriptedAnthropic

pytest_plugins = ["e2b_server.fixtures"]


@pytest.fixture
def scripted_api() -> Iterator[ScriptedAnthropic]:
    """A scripted Anthropic Messages API on 127.0.0.1 for the real ``claude`` CLI to talk to."""
    with ScriptedAnthropic() as api:
        yield api


# -- End-to-end fixtures: real git repositories, real processes -----------------------------------


@pytest.fixture
def pcc_git_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of our own with a git identity; no global git config or GIT_* variable leaks in."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        f"[user]\n\tname = {USER_NAME}\n\temail = {USER_EMAIL}\n[init]\n\tdefaultBranch = main\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return home


@pytest.fixture
def pcc_repo(tmp_path: Path, pcc_git_env: Path) -> Path:
    """A small committed repository in ``tmp_path/repo``."""
    return make_repo(
        tmp_path / "repo",
        {
            "README.md": "# demo\n",
            "src/app.py": "def main():\n    return 1\n",
            "data/notes.txt": "one\ntwo\nthree\n",
        },
    )


@pytest.fixture
def notes_repo(tmp_path: Path) -> Path:
    """``tmp_path/repo`` with one committed file, ``notes.txt``; HOME is left as it is."""
    return make_repo(tmp_path / "repo", {"notes.txt": "start\n"})


@pytest.fixture
def pcc_opts(tmp_path: Path, pcc_repo: Path) -> dict[str, Any]:
    """Keyword arguments of a quick local run: the repo, no isolation, no progress view."""
    return local_run_options(pcc_repo, tmp_path / "results")
