"""``parallelcc run --backend e2b``: the command line on the E2B backend, configured only by the
E2B_* variables, as a user of parallel-cc would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from e2b_server.server import E2BTestServer

pytestmark = [pytest.mark.bwrap, pytest.mark.timeout(120)]

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def parallelcc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {}), "PYTHONPATH": str(PACKAGE_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "parallelcc_sdk", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=90,
        check=False,
    )


def test_a_run_on_e2b_from_the_command_line(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    done = parallelcc(
        "run", "--backend", "e2b", "--template", "base", "--repo", str(repo),
        "--agent", "command", "--command", "printf 'x\\n' >> a.txt",
        "--task", "one", "--task", "two", "--output-dir", str(out), "--json", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["success"] is True
    assert [t["filesChanged"] for t in document["tasks"]] == [1, 1]
    assert {r.template for r in server.records()} == {"base"}
    assert server.alive() == []


def test_a_rejected_key_is_bad_input(server: E2BTestServer, repo: Path, tmp_path: Path) -> None:
    done = parallelcc(
        "run", "--backend", "e2b", "--repo", str(repo), "--agent", "command", "--command", "true",
        "--task", "one", "--output-dir", str(tmp_path / "results"), "--quiet",
        env={"E2B_API_KEY": "a-key-e2b-does-not-know"},
    )  # fmt: skip
    assert done.returncode == 2, (done.stdout, done.stderr)
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("parallelcc run: the run could not start: E2B rejected the API key")
    assert "a-key-e2b-does-not-know" not in done.stderr + done.stdout
    assert server.records() == []
