"""A script that runs ``pcc.run`` in a child process, to stop with signals or ``kill -9`` at a
chosen moment, and what such a run leaves behind: processes, folders, its journal."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.cli import kill_sandboxes_under, sandbox_processes_under

import parallelcc_sdk as pcc

PACKAGE_ROOT = Path(pcc.__file__).resolve().parent.parent

# Every task of the run is this command; pcc.run, like a user's script would call it.
# With "leave", it submits the run and ends at once (an exception), the run still going.
_SCRIPT = """\
import sys
import time
import parallelcc_sdk as pcc

repo, out, tasks, at_once, command, how, workspace = sys.argv[1:8]
options = dict(
    repo=repo,
    output_dir=out,
    agent=pcc.Command(command),
    backend=pcc.LocalBackend(isolation="none", workspace=workspace),
    max_concurrent=int(at_once),
    progress="off",
)
prompts = [f"task number {i}" for i in range(int(tasks))]
if how == "run":
    pcc.run(prompts, **options)
    print("pcc.run returned", flush=True)
else:
    handle = pcc.submit(prompts, **options)
    while sum(1 for t in handle.tasks if t.sandbox_id) < int(at_once):
        time.sleep(0.02)
    raise RuntimeError("the script fails while its run goes on")
"""


@dataclass
class ScriptRun:
    """One ``pcc.run`` in a child process whose sandboxes live under ``tmp``."""

    proc: subprocess.Popen[str]
    tmp: Path
    output_dir: Path
    tasks: int
    at_once: int
    stopped_at: float = 0.0
    stdout: str = ""
    stderr: str = ""
    exit_s: float = field(default=0.0)

    # -- moments --------------------------------------------------------------------------

    def wait_opening(self, timeout: float = 60) -> None:
        """Until the first sandbox folder exists (the others are being opened)."""
        self._wait(lambda: bool(self.folders()), timeout, "the first sandbox folder")

    def wait_running(self, timeout: float = 60) -> None:
        """Until every worker's task runs its command."""
        self._wait(
            lambda: len(self.processes()) >= self.at_once, timeout, f"{self.at_once} commands"
        )

    def wait_output(self, line: str, tasks: int, timeout: float = 60) -> None:
        """Until ``tasks`` tasks have printed ``line`` (their logs are written as they run)."""

        def printed() -> int:
            logs = self.output_dir.glob("*/task-*/execution.log")
            return sum(1 for log in logs if line in log.read_text(errors="replace").split("\n"))

        self._wait(lambda: printed() >= tasks, timeout, f"{tasks} tasks printing {line!r}")

    def _wait(self, ready: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                out, err = self.proc.communicate()
                raise AssertionError(f"the run ended before {what}: {out}\n{err}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.02)

    # -- stopping -------------------------------------------------------------------------

    def send(self, *signums: signal.Signals, gap_s: float = 0.5) -> None:
        """Sends the signals, ``gap_s`` apart; the time of the first one is the stop's start."""
        self.stopped_at = time.monotonic()
        for n, signum in enumerate(signums):
            if n:
                time.sleep(gap_s)
            self.proc.send_signal(signum)

    def wait_exit(self, timeout: float = 120) -> int:
        try:
            self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.stdout, self.stderr = self.proc.communicate()
            raise AssertionError(
                f"the run did not exit within {timeout}s: {self.stderr}"
            ) from None
        self.exit_s = time.monotonic() - self.stopped_at
        return self.proc.returncode

    # -- what is left ---------------------------------------------------------------------

    def processes(self) -> list[int]:
        """Live processes of this run's sandboxes (their TMPDIR lies under ``tmp``)."""
        return sandbox_processes_under(self.tmp)

    def folders(self) -> list[str]:
        """The run's scratch folder and its sandboxes (not the short-lived probes that check,
        before a run, whether bubblewrap or overlays work here)."""
        names = (p.name for p in self.tmp.iterdir())
        return sorted(n for n in names if n.startswith(("parallelcc-run.", "parallelcc-box.")))

    def leftovers(self, settle_s: float = 5.0) -> tuple[list[int], list[str]]:
        """Processes and folders still there once killed processes had a moment to go."""
        deadline = time.monotonic() + settle_s
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.processes(), self.folders()

    @property
    def run_dir(self) -> Path:
        (run_dir,) = [p for p in self.output_dir.iterdir() if p.is_dir()]
        return run_dir

    def run_json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.run_dir / "run.json").read_text())
        return data


@contextlib.contextmanager
def script_run(
    repo: Path,
    where: Path,
    *,
    tasks: int,
    at_once: int,
    command: str = "sleep 60",
    how: str = "run",
    workspace: str = "auto",
) -> Iterator[ScriptRun]:
    """Starts the script; whatever happens, no process of its sandboxes outlives the test."""
    tmp = where / "tmp"
    tmp.mkdir()
    script = where / "run_script.py"
    script.write_text(_SCRIPT)
    env = {
        **os.environ,
        "TMPDIR": str(tmp),
        "PYTHONPATH": os.pathsep.join(
            [str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    output_dir = where / "results"
    argv = [sys.executable, str(script), str(repo), str(output_dir), str(tasks), str(at_once)]
    proc = subprocess.Popen(
        [*argv, command, how, workspace],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield ScriptRun(proc, tmp, output_dir, tasks, at_once)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        kill_sandboxes_under(tmp)
