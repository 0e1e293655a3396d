"""The docs a new user follows: the set-up from a clone runs as written, and every column and
record field is documented."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.docs import DOCS, marked_code, marked_table_keys

from parallelcc_sdk.models import TaskResult
from parallelcc_sdk.results import COLUMNS

ROOT = DOCS.parent


def test_every_dataframe_column_is_in_the_table_of_columns() -> None:
    documented = marked_table_keys(DOCS / "results.md", "df-columns")
    assert [c for c in COLUMNS if c not in documented] == []
    assert len(documented) == len(set(documented))


def test_every_other_record_field_is_in_the_table_of_record_fields() -> None:
    documented = marked_table_keys(DOCS / "results.md", "record-fields")
    fields = [f.name for f in dataclasses.fields(TaskResult)]
    assert [f for f in fields if f not in COLUMNS and f not in documented] == []


def stand_in_for_pypi(folder: Path) -> Path:
    """A folder of links to this environment's installed packages, but the SDK's own."""
    site_packages = next(
        Path(p) for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix)
    )
    folder.mkdir()
    for entry in site_packages.iterdir():
        if "parallelcc" not in entry.name and not entry.name.endswith(".pth"):
            (folder / entry.name).symlink_to(entry)
    return folder


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{argv[:3]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


@pytest.mark.timeout(300)
def test_the_set_up_from_a_clone_runs_as_written_and_a_first_run_works(tmp_path: Path) -> None:
    clone = tmp_path / "parallelcc-sdk"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    # `python3` is this interpreter's base Python, so the packages of this test environment
    # (on PYTHONPATH, the SDK itself left out) fit the new virtualenv and stand in for PyPI: pip
    # finds the extras' packages already there and installs only the SDK, from the clone.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys._base_executable)  # type: ignore[attr-defined]
    packages = stand_in_for_pypi(tmp_path / "packages")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(home),
        "PYTHONPATH": str(packages),
        "LANG": "C.UTF-8",
        **{k: v for k, v in os.environ.items() if k.startswith("PIP_")},
    }

    setup = marked_code(DOCS / "notebooks.md", "setup-from-clone")
    out = _run(["bash", "-e", "-c", setup], clone, env)
    assert "does not provide the extra" not in out

    python = clone / ".venv" / "bin" / "python"
    # From elsewhere: in the clone, its own folder would be importable without any install.
    where = _run([str(python), "-c", "import parallelcc_sdk; print(parallelcc_sdk.__file__)"],
                 home, env)  # fmt: skip
    assert where.strip() == str(clone / "parallelcc_sdk" / "__init__.py")
    spec = home / ".local/share/jupyter/kernels/parallelcc-sdk/kernel.json"
    kernel = json.loads(spec.read_text())
    assert kernel["argv"][0] == str(python)
    assert kernel["display_name"] == "Python (parallelcc-sdk)"

    first_run = marked_code(DOCS / "notebooks.md", "first-run")
    shown = _run([str(python), "-c", first_run], clone, env)
    py_files = _run(["git", "ls-files", "*.py"], clone, env).splitlines()
    md_files = _run(["git", "ls-files", "*.md"], clone, env).splitlines()
    rows = [line.split() for line in shown.splitlines() if line.split()[:1] in (["0"], ["1"])]
    assert rows == [
        ["0", "task-1", "completed", str(len(py_files))],
        ["1", "task-2", "completed", str(len(md_files))],
    ], shown
    assert "/parallel-results/" in shown
    # The results and the virtualenv stay out of the clone's `git status`.
    assert _run(["git", "status", "--porcelain"], clone, env) == ""
