"""Set-up once per run on the local backend: real repositories, real processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.e2e import backend_for, local_run_options
from support.gitrepo import make_repo

import parallelcc_sdk as pcc
from parallelcc_sdk.backends.overlay import overlay_available
from parallelcc_sdk.errors import SetupError


@pytest.fixture
def tool_repo(tmp_path: Path, pcc_git_env: Path) -> Path:
    return make_repo(tmp_path / "repo", {".gitignore": ".tool/\n", "app.py": "print(1)\n"})


def setup_command(counter: Path | None) -> str:
    # Counts its runs outside the workspace (where it may write); makes a "tool" in an ignored
    # folder.
    count = f"echo ran >> {counter} && " if counter is not None else ""
    return (
        f"{count}mkdir -p .tool && "
        "printf '#!/bin/sh\\necho tool-output\\n' > .tool/run && chmod +x .tool/run && "
        "echo set-up done"
    )


@pytest.mark.parametrize("isolation", ["none", pytest.param("bubblewrap", marks=pytest.mark.bwrap)])
def test_setup_runs_once_and_every_task_uses_what_it_made(
    tool_repo: Path, tmp_path: Path, isolation: str
) -> None:
    # Under bubblewrap the host is read-only to set-up as to tasks: its log counts instead.
    counter = tmp_path / "runs.txt" if isolation == "none" else None
    agent = pcc.Command("./.tool/run > used.txt && echo change >> app.py")
    result = pcc.run(
        [f"task {n}" for n in range(20)],
        setup=setup_command(counter),
        max_concurrent=4,
        **local_run_options(
            tool_repo, tmp_path / "results", agent=agent, backend=backend_for(isolation)
        ),
    )
    assert result.success, result.df[["task_id", "status", "error"]]
    if counter is not None:
        assert counter.read_text() == "ran\n"  # once, for 20 tasks
    for task in result.tasks:
        patch = (Path(task.output_path or "") / "changes.patch").read_text()
        # What the task made from set-up's tool is there; set-up's own outputs are not.
        assert "+tool-output" in patch and "+change" in patch
        assert ".tool" not in patch
        assert task.files_changed == 2
    setup = result.setup
    assert setup is not None and setup["exit_code"] == 0 and setup["duration_s"] >= 0
    assert (result.run_dir / "setup" / "execution.log").read_text() == "set-up done\n"
    assert json.loads((result.run_dir / "run.json").read_text())["setup"]["exit_code"] == 0
    assert "Set-up" in result.report_path.read_text()


def test_a_failing_setup_fails_the_run_before_any_task(tool_repo: Path, tmp_path: Path) -> None:
    handle = pcc.submit(
        ["a", "b"],
        setup="echo installing; echo 'no such package' >&2; exit 3",
        **local_run_options(tool_repo, tmp_path / "results", agent=pcc.Command("touch ran")),
    )
    with pytest.raises(SetupError, match="exited with code 3") as caught:
        handle.result()
    assert "no such package" in str(caught.value)
    result = pcc.load_run(handle.run_dir)
    assert [t.status.value for t in result.tasks] == ["cancelled", "cancelled"]
    assert all(t.started_at is None for t in result.tasks)
    assert result.setup is not None and result.setup["exit_code"] == 3


def test_a_setup_that_edits_tracked_files_is_refused(tool_repo: Path, tmp_path: Path) -> None:
    handle = pcc.submit(
        ["a"],
        setup="echo edited >> app.py && touch not-ignored.txt",
        **local_run_options(tool_repo, tmp_path / "results", agent=pcc.Command("true")),
    )
    with pytest.raises(SetupError, match=r"app\.py, not-ignored\.txt.*\.gitignore"):
        handle.result()


def test_setup_on_a_backend_without_it_is_refused_before_anything_starts(
    tool_repo: Path, tmp_path: Path
) -> None:
    class NoSetup(pcc.LocalBackend):
        supports_setup = False

    with pytest.raises(pcc.ValidationError, match="cannot run a set-up command"):
        pcc.submit(
            ["a"],
            setup="true",
            **local_run_options(
                tool_repo,
                tmp_path / "r",
                agent=pcc.Command("true"),
                backend=NoSetup(isolation="none"),
            ),
        )
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(not overlay_available(), reason="overlays cannot be mounted here")
def test_setup_gives_the_same_results_in_overlays_as_in_checkouts(
    tool_repo: Path, tmp_path: Path
) -> None:
    # With overlays the set-up's workspace is every task's lower layer; with checkouts each task
    # gets a copy of it. One task changes nothing: the set-up's own outputs are seen the same.
    agent = pcc.Command(
        'test "$PARALLELCC_TASK_ID" = idle || { ./.tool/run > used.txt && echo change >> app.py; }'
    )
    seen = {}
    for kind in ("overlay", "checkout"):
        backend = pcc.LocalBackend(isolation="none", work_dir=tmp_path, workspace=kind)
        result = pcc.run(
            [pcc.Task("edit", id="edit"), pcc.Task("idle", id="idle")],
            setup=setup_command(None),
            **local_run_options(
                tool_repo, tmp_path / f"results-{kind}", agent=agent, backend=backend
            ),
        )
        assert result.success, result.df[["task_id", "status", "error"]]
        assert {t.sandbox_info["workspace"] for t in result.tasks} == {kind}
        seen[kind] = {
            t.task_id: (
                (Path(t.output_path or "") / "changes.patch").read_bytes(),
                t.files_changed,
                t.changed_paths,
                t.excluded_paths,
            )
            for t in result.tasks
        }
    assert seen["overlay"] == seen["checkout"]
    assert seen["overlay"]["edit"][1] == 2 and seen["overlay"]["idle"][1] == 0
