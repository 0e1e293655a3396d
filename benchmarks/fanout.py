"""Fan-out overhead: N tasks of `sleep S` at a concurrency limit, against the ideal wall time.

The ideal is ceil(N / max_concurrent) * S: what a scheduler with zero overhead would take. The
ratio measured / ideal is what the SDK costs on top (snapshot, workspaces, process start,
change collection, outputs). Run:

    python benchmarks/fanout.py [--tasks 50] [--concurrency 10] [--sleep 1] [--isolation none]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import parallelcc_sdk as pcc


def make_repo(root: Path, files: int) -> Path:
    repo = root / "repo"
    for i in range(files):
        path = repo / f"pkg{i % 20}" / f"module_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"VALUE = {i}\n" * 20)
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True)
    return repo


def measure(
    tasks: int, concurrency: int, sleep: float, isolation: str, files: int, work_dir: str | None
) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp), files)
        started = time.perf_counter()
        result = pcc.run(
            [f"task {i}" for i in range(tasks)],
            repo=repo,
            agent=pcc.Command(f"sleep {sleep}"),
            backend=pcc.LocalBackend(isolation=isolation, work_dir=work_dir),  # type: ignore[arg-type]
            max_concurrent=concurrency,
            output_dir=Path(tmp) / "out",
            progress="off",
        )
        wall = time.perf_counter() - started
    assert result.success, result.df[["task_id", "status", "error"]]
    ideal = math.ceil(tasks / concurrency) * sleep
    return {
        "tasks": tasks,
        "max_concurrent": concurrency,
        "sleep_s": sleep,
        "repo_files": files,
        "isolation": isolation,
        "work_dir": work_dir or "system temp",
        "wall_s": round(wall, 2),
        "ideal_s": ideal,
        "ratio": round(wall / ideal, 3),
        "overhead_per_task_s": round((wall - ideal) * concurrency / tasks, 3),
        # Peak resident memory of this process (the SDK, not the tasks), so far in the run.
        "sdk_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("--files", type=int, default=200, help="files in the sample repository")
    parser.add_argument("--isolation", choices=["none", "bubblewrap", "both"], default="both")
    parser.add_argument(
        "--work-dir", action="append", default=None,
        help="where workspaces are made (repeat to compare, e.g. /dev/shm); default: system temp",
    )
    args = parser.parse_args()
    modes = ["none", "bubblewrap"] if args.isolation == "both" else [args.isolation]
    rows = [
        measure(args.tasks, args.concurrency, args.sleep, mode, args.files, work_dir)
        for work_dir in (args.work_dir or [None])
        for mode in modes
    ]
    print(f"{'isolation':<11} {'work dir':<12} {'wall s':>7} {'ideal s':>8} {'ratio':>6} "
          f"{'overhead/task s':>16} {'SDK peak RSS MB':>16}")
    for row in rows:
        print(f"{row['isolation']:<11} {row['work_dir']!s:<12} {row['wall_s']:>7} "
              f"{row['ideal_s']:>8} {row['ratio']:>6} {row['overhead_per_task_s']:>16} "
              f"{row['sdk_peak_rss_mb']:>16}")
    json.dump(rows, sys.stderr)
    print(file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
