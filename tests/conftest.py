"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.scripted_anthropic import ScriptedAnthropic


@pytest.fixture
def scripted_api() -> Iterator[ScriptedAnthropic]:
    """A scripted Anthropic Messages API on 127.0.0.1 for the real ``claude`` CLI to talk to."""
    with ScriptedAnthropic() as api:
        yield api


# -- End-to-end fixtures: real git repositories, real processes -----------------------------------

import os  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from support.e2e import make_repo  # noqa: E402

from parallelcc_sdk import LocalBackend  # noqa: E402


@pytest.fixture
def pcc_git_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of our own with a git identity; no global git config or GIT_* variable leaks in."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test User\n\temail = test@example.com\n"
        "[init]\n\tdefaultBranch = main\n"
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
def pcc_opts(tmp_path: Path, pcc_repo: Path) -> dict[str, Any]:
    """Keyword arguments of a quick local run: the repo, no isolation, no progress view."""
    return {
        "repo": pcc_repo,
        "backend": LocalBackend(isolation="none"),
        "progress": "off",
        "output_dir": tmp_path / "results",
    }
