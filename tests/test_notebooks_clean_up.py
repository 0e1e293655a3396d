"""The example notebooks leave nothing behind in the temporary folder once run to the end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.kernel
@pytest.mark.timeout(600)
def test_running_every_notebook_leaves_no_folder_of_theirs_in_the_temporary_folder(
    tmp_path: Path,
) -> None:
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    # The notebooks run as CI runs them (nbval), with kernels whose temporary folder is ours.
    env = {**os.environ, "TMPDIR": str(private_tmp), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
            "--nbval-current-env", "--nbval-sanitize-with", "notebooks/nbval_sanitize.cfg",
            "notebooks/",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert "passed" in done.stdout
    left = sorted(p.name for p in private_tmp.iterdir() if p.name.startswith("parallelcc-"))
    assert left == []
