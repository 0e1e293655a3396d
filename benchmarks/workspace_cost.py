"""Workspace cost: time and disk per task workspace vs repository size, checkout vs overlay.

A checkout (today's local backend) writes every file of the snapshot for every task. An overlay
workspace is made from a lower layer checked out once per run: per task, three empty folders,
a mount when the task starts, and an upper layer that holds only what the task changed.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from parallelcc_sdk.backends import overlay
from parallelcc_sdk.snapshot import Snapshot, take_snapshot
from parallelcc_sdk.workspace import collect_changes, create_workspace

from ._common import Report, disk_bytes, progress, scratch, suite_main
from ._repo import make_repo

BYTES_PER_FILE = 2_000
EDIT = "echo edited >> README.md"
_DIFF = (
    "git diff --cached --find-renames --no-ext-diff --no-textconv --no-color --binary"
    " --unified=3 --src-prefix=a/ --dst-prefix=b/ {base} --"
)


def run(quick: bool) -> Report:
    report = Report("workspace", quick)
    sizes = [1_000, 10_000] if quick else [1_000, 10_000, 50_000]
    best = overlay.overlay_mode()
    # As root both ways of mounting work; show the one other users get too.
    modes = [] if best is None else [best]
    if best == "mount-namespace" and not quick:
        modes.append("user-namespace")
    checkout = report.table(
        "checkout (one per task)",
        ["files", "work tree MB", "create s", "disk MB", "git status s", "collect s"],
    )
    layered = report.table(
        "overlay (the lower layer is made once per run)",
        [
            "files",
            "mode",
            "lower s",
            "1st mount s",
            "create ms",
            "mount+true ms",
            "disk KB",
            "disk KB +index",
            "git status s",
            "collect s",
        ],
    )
    created: dict[int, float] = {}
    with scratch() as tmp:
        for files in sizes:
            progress(f"generating a {files}-file repository")
            repo = make_repo(tmp / f"repo-{files}", files, files * BYTES_PER_FILE)
            snapshot = asyncio.run(take_snapshot(repo, tmp / f"snapshot-{files}"))
            samples = 1 if files >= 50_000 or quick else 3
            progress(f"{files} files: {samples} checkout(s)")
            work_tree_mb = (disk_bytes(repo) - disk_bytes(repo / ".git")) / 1e6
            checkout.rows.append(
                [files, work_tree_mb, *_checkout_costs(snapshot, tmp, files, samples)]
            )
            if not modes:
                continue
            progress(f"{files} files: overlay workspaces")
            lower = tmp / f"lower-{files}"
            started = time.perf_counter()
            asyncio.run(overlay.materialize_lower(snapshot, lower))
            lower_s = time.perf_counter() - started
            for mode in modes:
                row = _overlay_costs(snapshot.commit, lower, tmp / f"{mode}-{files}", mode)
                if mode == modes[0]:
                    created[files] = row[1]
                layered.rows.append([files, mode, lower_s, *row])
                lower_s = float("nan")  # made once, shown once
            overlay.remove_task_layers(lower)
    checkout.notes.append(
        "disk: the workspace folder (files and .git; objects are borrowed from the snapshot);"
        " git status: a second run in the checkout; collect: add + diff after a one-line edit"
    )
    layered.notes += [
        "lower: the checkout made once per run; 1st mount: the first mount after it (once per"
        " run); create: three empty folders (median of 100); mount+true: the overlay mounted,"
        " `true` run (median of 5)",
        "disk: upper + work after a one-line edit; +index: after collection wrote the index into"
        " the upper layer",
        "git status: the first in a fresh overlay (median of 3); collect: the upper layer listed,"
        " git staging those paths and diffing, inside the overlay",
    ]
    if not modes:
        layered.notes.append("overlays cannot be mounted here: checkouts are the fallback")
    elif len(created) == len(sizes):
        ratio = created[sizes[-1]] / created[sizes[0]]
        report.check(
            f"overlay create time, {sizes[-1]:,} ÷ {sizes[0]:,} files",
            ratio,
            2.0,
            at_most=True,
            unit="x",
        )
    return report


def _median_seconds(action: Callable[[], Any], samples: int) -> float:
    """The median of ``samples`` timings: a busy machine's stalls do not move it much."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def _checkout_costs(snapshot: Snapshot, tmp: Path, files: int, samples: int) -> list[float]:
    counter = iter(range(samples))
    last: list[Path] = []

    def create() -> None:
        path = tmp / f"checkout-{files}-{next(counter)}"
        asyncio.run(create_workspace(snapshot, path))
        last.append(path)

    seconds = _median_seconds(create, samples)
    workspace = last[-1]
    disk = disk_bytes(workspace) / 1e6
    subprocess.run(["git", "status", "--porcelain"], cwd=workspace, check=True, capture_output=True)
    status = _timed(["git", "status", "--porcelain"], workspace)
    subprocess.run(["sh", "-c", EDIT], cwd=workspace, check=True)
    started = time.perf_counter()
    asyncio.run(collect_changes(workspace, snapshot.commit, tmp / f"collected-{files}"))
    collect = time.perf_counter() - started
    for path in last:
        subprocess.run(["rm", "-rf", str(path)], check=True)
    return [seconds, disk, status, collect]


def _overlay_costs(base: str, lower: Path, root: Path, mode: overlay.OverlayMode) -> list[float]:
    root.mkdir()
    counter = iter(range(1000))
    create_s = _median_seconds(lambda: overlay.create_task_layers(root / f"t{next(counter)}"), 100)

    def in_overlay(layers: overlay.TaskLayers, argv: list[str]) -> float:
        command = overlay.overlay_command(
            argv, lower, layers.upper, layers.work, layers.mountpoint, mode=mode
        )
        return _timed(command, layers.mountpoint)

    first_mount_s = in_overlay(overlay.create_task_layers(root / "first"), ["true"])
    mount_s = statistics.median(
        in_overlay(overlay.create_task_layers(root / f"true-{i}"), ["true"]) for i in range(5)
    )
    status_s = statistics.median(
        in_overlay(overlay.create_task_layers(root / f"status-{i}"), ["git", "status"])
        for i in range(3)
    )

    task = overlay.create_task_layers(root / "task")
    in_overlay(task, ["sh", "-c", EDIT])
    disk = (disk_bytes(task.upper) + disk_bytes(task.work)) / 1e3
    started = time.perf_counter()
    changed, deleted = overlay.changed_paths_from_upper(task.upper, lower)
    (root / "deleted.lst").write_bytes(overlay.pathspec_list(deleted))
    (root / "changed.lst").write_bytes(overlay.pathspec_list(changed))
    script = overlay.stage_listed_paths_script(
        str(root / "deleted.lst"), str(root / "changed.lst")
    ) + _DIFF.format(base=base)
    in_overlay(task, ["sh", "-c", script])
    collect_s = time.perf_counter() - started
    disk_with_index = (disk_bytes(task.upper) + disk_bytes(task.work)) / 1e3
    overlay.remove_task_layers(root)
    return [
        first_mount_s,
        create_s * 1e3,
        mount_s * 1e3,
        disk,
        disk_with_index,
        status_s,
        collect_s,
    ]


if __name__ == "__main__":
    suite_main(run)
