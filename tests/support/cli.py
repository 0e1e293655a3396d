"""Running the installed ``parallelcc`` console script in the command-line tests: as a subprocess
(argv lists, never a shell), in an environment of its own (HOME, TMPDIR) so that whatever a run
leaves behind can be found."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.e2e import SANDBOX_MARKER, marked_processes, pid_alive

from parallelcc_sdk.backends._cgroup import Cgroup, own_cgroup
from parallelcc_sdk.runfolder import read_journal

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
        sandboxes = [t.sandbox_id for t in read_journal(run_dir).tasks if t.sandbox_id]
        folders = sorted(p.name for p in self.tmp.iterdir() if p.name.startswith("parallelcc-"))
        return marked_processes(sandboxes), folders


def task_args(prompts: Sequence[str]) -> list[str]:
    return [arg for prompt in prompts for arg in ("--task", prompt)]


def cli_env(tmp: Path) -> dict[str, str]:
    """This process's environment without what would change the command's output or reach a
    real account, with ``TMPDIR`` (where sandboxes are made) set to ``tmp``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PARALLELCC_", "ANTHROPIC_", "CLAUDE_", "E2B_")) and k not in _DROPPED
    }
    env["TMPDIR"] = str(tmp)
    return env


def sandbox_processes_under(tmp: Path) -> list[int]:
    """Live processes of sandboxes whose private TMPDIR lies under ``tmp``."""
    marker = f"{SANDBOX_MARKER}=".encode()
    prefix = f"TMPDIR={tmp}/".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            any(v.startswith(marker) for v in environ)
            and any(v.startswith(prefix) for v in environ)
            and pid_alive(int(entry.name))
        ):
            found.append(int(entry.name))
    return found


def kill_sandboxes_under(tmp: Path) -> None:
    """Kills processes of sandboxes whose private TMPDIR lies under ``tmp``, and removes the
    cgroups of the sandboxes there: a test that failed half-way (or killed a run on purpose)
    must not leave them behind."""
    cgroups = own_cgroup()
    if cgroups is not None:
        for folder in tmp.glob("parallelcc-box.*"):
            Cgroup(cgroups / folder.name).remove()
    for pid in sandbox_processes_under(tmp):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
