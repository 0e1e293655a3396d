"""Fixtures of the command-line tests: the installed ``parallelcc`` script, run as a subprocess
(argv lists, never a shell), in an environment of its own (HOME, TMPDIR) so that whatever a run
leaves behind can be found."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.e2e import SANDBOX_MARKER, marked_processes
from support.gitrepo import make_repo

# Installed next to the interpreter that runs the tests (a virtualenv's bin/), as pip puts it.
PARALLELCC = Path(sys.executable).with_name("parallelcc")

# Variables that would change what the command prints or where it puts things.
_DROPPED = ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TERM")


@dataclass
class Cli:
    """Runs ``parallelcc`` in ``repo`` with ``env``; results go under ``output_dir``."""

    repo: Path
    output_dir: Path
    env: dict[str, str]
    tmp: Path

    def run(
        self,
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PARALLELCC), *args],
            cwd=cwd or self.repo,
            env=dict(env or self.env),
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str, **popen: Any) -> subprocess.Popen[str]:
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(
            [str(PARALLELCC), *args],
            cwd=self.repo,
            env=self.env,
            text=True,
            encoding="utf-8",
            **popen,
        )

    def command_run(self, command: str, *args: str) -> list[str]:
        """The argv of a quick ``run`` of ``command`` per task, without isolation."""
        return [
            "run",
            "--agent",
            "command",
            "--command",
            command,
            "--isolation",
            "none",
            "--output-dir",
            str(self.output_dir),
            *args,
        ]

    def run_dirs(self) -> list[Path]:
        if not self.output_dir.is_dir():
            return []
        return sorted(p for p in self.output_dir.iterdir() if p.is_dir())

    def only_run_dir(self) -> Path:
        dirs = self.run_dirs()
        assert len(dirs) == 1, dirs
        return dirs[0]

    def leftovers(self, run_dir: Path) -> tuple[list[int], list[str]]:
        """Live processes of the run's sandboxes, and sandbox folders still in TMPDIR."""
        journal = json.loads((run_dir / "run.json").read_text())
        sandboxes = [t["sandbox_id"] for t in journal["tasks"] if t.get("sandbox_id")]
        folders = sorted(p.name for p in self.tmp.iterdir() if p.name.startswith("parallelcc-"))
        return marked_processes(sandboxes), folders


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
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PARALLELCC_", "ANTHROPIC_", "CLAUDE_", "E2B_")) and k not in _DROPPED
    }
    env["TMPDIR"] = str(tmp)
    yield Cli(repo=repo, output_dir=tmp_path / "results", env=env, tmp=tmp)
    # A test that failed half-way (or killed a run on purpose) must not leave processes running.
    for pid in _sandbox_processes_under(tmp):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _sandbox_processes_under(tmp: Path) -> list[int]:
    """Processes of sandboxes whose private TMPDIR lies under ``tmp``."""
    marker = f"{SANDBOX_MARKER}=".encode()
    prefix = f"TMPDIR={tmp}/".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(v.startswith(marker) for v in environ) and any(
            v.startswith(prefix) for v in environ
        ):
            found.append(int(entry.name))
    return found


def task_args(prompts: Sequence[str]) -> list[str]:
    return [arg for prompt in prompts for arg in ("--task", prompt)]
