"""A virtualenv a task makes is not its patch: what is never source stays out of the changes,
and the task's record says what was left out and how big it was."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from support.e2e import local_run_options
from support.gitrepo import make_repo

import parallelcc_sdk as pcc
from parallelcc_sdk.collection import DEFAULT_EXCLUDED_CHANGES
from parallelcc_sdk.errors import ValidationError

pytestmark = pytest.mark.usefixtures("pcc_git_env")

# A real virtualenv, a few MB of installed-looking modules in it, and one real edit.
MAKES_A_VIRTUALENV = (
    f"{shlex.quote(sys.executable)} -m venv --without-pip .venv && "
    "mkdir -p .venv/lib/site-packages/big && "
    "for i in $(seq 16); do head -c 262144 /dev/zero | tr '\\0' m "
    "> .venv/lib/site-packages/big/m$i.py; done && "
    "printf 'def main():\\n    return 2\\n' > src/app.py"
)


def patched_paths(patch: str) -> list[str]:
    return re.findall(r"^diff --git a/(\S+) ", patch, flags=re.MULTILINE)


def test_a_task_that_creates_a_virtualenv_gives_a_patch_with_only_its_real_edit(
    pcc_repo: Path, tmp_path: Path
) -> None:
    result = pcc.run(
        ["make a virtualenv, then fix main()"],
        repo=pcc_repo,
        agent=pcc.Command(MAKES_A_VIRTUALENV),
        output_dir=tmp_path / "out",
        progress="off",
    )

    task = result.tasks[0]
    assert task.status is pcc.TaskStatus.COMPLETED, task.error
    assert (task.files_changed, task.lines_added, task.lines_removed) == (1, 1, 1)
    task_dir = Path(task.output_path or "")
    assert patched_paths((task_dir / "changes.patch").read_text()) == ["src/app.py"]
    assert [p.name for p in (task_dir / "changed-files").rglob("*") if p.is_file()] == ["app.py"]
    # What was left out, and its size, in the record and in metadata.json.
    assert task.excluded_paths == (".venv/",)
    assert task.excluded_bytes is not None and 4 * 1024 * 1024 < task.excluded_bytes < 6_000_000
    metadata = json.loads((task_dir / "metadata.json").read_text())
    assert (metadata["excluded_paths"], metadata["excluded_bytes"]) == (
        [".venv/"],
        task.excluded_bytes,
    )
    assert pcc.load_run(result.run_dir)["task-1"].excluded_paths == (".venv/",)
    config = json.loads((result.run_dir / "run.json").read_text())["config"]
    assert config["exclude_changes"] == list(DEFAULT_EXCLUDED_CHANGES)


def test_exclude_changes_replaces_the_list(pcc_opts: dict[str, Any]) -> None:
    result = pcc.run(
        ["x"],
        agent=pcc.Command("mkdir -p .venv build && echo v > .venv/kept && echo b > build/out"),
        exclude_changes=["build/"],
        **pcc_opts,
    )
    task = result.tasks[0]
    assert task.changed_paths == (".venv/kept",)
    assert (task.excluded_paths, task.excluded_bytes) == (("build/",), task.excluded_bytes)
    assert task.excluded_bytes is not None and task.excluded_bytes > 0

    everything = pcc.run(
        ["x"], agent=pcc.Command("mkdir .venv && echo v > .venv/kept"), exclude_changes=[],
        **pcc_opts,
    )
    assert everything.tasks[0].changed_paths == (".venv/kept",)
    assert (everything.tasks[0].excluded_paths, everything.tasks[0].excluded_bytes) == ((), 0)


def test_a_repository_that_tracks_its_virtualenv_keeps_it_in_the_changes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"node_modules/pad/index.js": "v1\n", "a.txt": "a\n"})
    result = pcc.run(
        ["x"],
        agent=pcc.Command("echo v2 > node_modules/pad/index.js"),
        **local_run_options(repo, tmp_path / "out"),
    )
    assert result.tasks[0].changed_paths == ("node_modules/pad/index.js",)
    assert result.tasks[0].excluded_paths == ()


@pytest.mark.parametrize(
    ("value", "named"),
    [(".venv/", "'.venv/'"), ([".venv/", "a\nb"], "'a\\nb'"), ([""], "''"), ([3], "3")],
)
def test_bad_exclude_changes_are_refused_before_anything_starts(
    pcc_opts: dict[str, Any], value: object, named: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        pcc.submit(["x"], agent=pcc.Command("true"), exclude_changes=value, **pcc_opts)
    message = str(caught.value)
    assert message.startswith("exclude_changes ") and named in message
    assert "exclude_changes=['.venv/'" in message
    assert not Path(pcc_opts["output_dir"]).exists()
