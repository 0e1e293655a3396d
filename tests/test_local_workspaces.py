"""The local backend's two kinds of workspace: overlays where they can be mounted, checkouts
elsewhere. The kind in force is recorded; both give the same results (the conformance suite
checks every change scenario on both)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.e2e import local_run_options

import parallelcc_sdk as pcc
from parallelcc_sdk.backends.overlay import overlay_available

pytestmark = pytest.mark.usefixtures("pcc_git_env")

EDIT = pcc.Command(
    "printf 'two\\n' >> data/notes.txt; test \"$PARALLELCC_TASK_ID\" != b || rm README.md"
)


def test_a_workspace_kind_that_does_not_exist_is_refused() -> None:
    with pytest.raises(pcc.ValidationError, match="workspace='copy'"):
        pcc.LocalBackend(workspace="copy")  # type: ignore[arg-type]


@pytest.mark.skipif(not overlay_available(), reason="overlays cannot be mounted here")
def test_auto_uses_overlays_and_records_it(tmp_path: Path, pcc_repo: Path) -> None:
    backend = pcc.LocalBackend(isolation="none", work_dir=tmp_path)
    result = pcc.run(
        [pcc.Task("x", id=i) for i in ("a", "b", "c")],
        agent=EDIT,
        **local_run_options(pcc_repo, tmp_path / "results", backend=backend),
    )
    assert result.success
    config = json.loads((result.run_dir / "run.json").read_text())["config"]["backend"]
    assert (config["workspace"], config["workspace_in_force"]) == ("auto", "overlay")
    assert config["overlay_mode"] in ("mount-namespace", "user-namespace")
    for task in result.tasks:
        assert task.sandbox_info["workspace"] == "overlay"
    by_id = {t.task_id: t for t in result.tasks}
    assert by_id["a"].changed_paths == ("data/notes.txt",)
    assert by_id["b"].deleted_paths == ("README.md",)
    # Nothing is left: no task folder, no run scratch folder (the shared lower layer).
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("parallelcc-")] == []


def test_checkout_and_overlay_runs_write_the_same_bytes(tmp_path: Path, pcc_repo: Path) -> None:
    kinds = ["checkout", "overlay"] if overlay_available() else ["checkout"]
    outputs: dict[str, dict[str, bytes]] = {}
    for kind in kinds:
        backend = pcc.LocalBackend(isolation="none", work_dir=tmp_path, workspace=kind)  # type: ignore[arg-type]
        result = pcc.run(
            [pcc.Task("x", id=i) for i in ("a", "b", "quiet")],
            agent=pcc.Command(
                'case "$PARALLELCC_TASK_ID" in quiet) cat README.md > /dev/null;; '
                "*) printf 'two\\n' >> data/notes.txt; rm -f README.md; "
                "mkdir -p n && echo x > n/y;; esac"
            ),
            **local_run_options(pcc_repo, tmp_path / f"results-{kind}", backend=backend),
        )
        assert result.success
        files: dict[str, bytes] = {}
        for task in result.tasks:
            task_dir = Path(task.output_path)
            for path in sorted(task_dir.rglob("*")):
                rel = path.relative_to(task_dir).as_posix()
                if rel.startswith("changed-files") or rel == "changes.patch":
                    files[rel if path.is_file() else rel + "/"] = (
                        path.read_bytes() if path.is_file() else b""
                    )
            files[f"{task.task_id}:counts"] = repr(
                (task.files_changed, task.lines_added, task.lines_removed, task.changed_paths)
            ).encode()
        outputs[kind] = files
    assert len(set(map(repr, outputs.values()))) == 1


@pytest.mark.skipif(not overlay_available(), reason="overlays cannot be mounted here")
async def test_an_overlay_task_that_changed_nothing_costs_no_collection(
    tmp_path: Path, pcc_repo: Path
) -> None:
    backend = pcc.LocalBackend(isolation="none", work_dir=tmp_path, workspace="overlay")
    run_dir = tmp_path / "results" / "r"
    run_dir.mkdir(parents=True)
    prepared = await backend.start_run(
        pcc.RunSpec(run_id="r", run_dir=run_dir, repo=pcc_repo, exclude=(run_dir.parent,))
    )
    try:
        spec = pcc.SandboxSpec(run=prepared, task_id="t", attempt=1, task_dir=run_dir / "t")
        async with await backend.open(spec) as sandbox:
            await sandbox.prepare()
            inside = f"{sandbox.context.workspace}/planted.txt"
            # A file the invocation brings into the workspace is in the overlay, not under it.
            code = await sandbox.exec(
                pcc.Invocation(
                    argv=("/bin/sh", "-c", "cat planted.txt && git status --short >&2"),
                    files=(pcc.SandboxFile(inside, b"hello\n", 0o644),),
                ),
                lambda stream, line: None,
            )
            assert code == 0
            (Path(str(sandbox.describe()["root"])) / "upper" / "planted.txt").unlink()
            stats = await sandbox.collect(run_dir / "t")
            assert stats == pcc.ChangeStats()
            # No collection command ran: it would have made its own folder.
            assert not (Path(str(sandbox.describe()["root"])) / "collect").exists()
            assert (run_dir / "t" / "changes.patch").read_bytes() == b""
            assert os.listdir(run_dir / "t" / "changed-files") == []
    finally:
        await backend.end_run(prepared)
