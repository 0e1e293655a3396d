"""Landing costs: the conflict map (with and without the trial merge) and apply, for N tasks on a
repository of F files.

Each task edits one line of its own file; every tenth task edits the same line as the task before
it, so the trial merge meets real conflicts. The run itself is not timed (see fanout.py). Run:

    python benchmarks/landing.py [--tasks 100] [--files 2000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import parallelcc_sdk as pcc
from parallelcc_sdk.land.conflicts import find_conflicts


def make_repo(root: Path, files: int) -> Path:
    repo = root / "repo"
    for i in range(files):
        path = repo / f"pkg{i % 50}" / f"module_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"VALUE_{n} = {n}\n" for n in range(20)))
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True)
    return repo


def timed(call: object) -> tuple[float, object]:
    started = time.perf_counter()
    value = call()  # type: ignore[operator]
    return time.perf_counter() - started, value


def measure(tasks: int, files: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp), files)
        work = []
        for i in range(tasks):
            target = i - 1 if i % 10 == 9 else i  # every tenth task clashes with the one before
            file = f"pkg{target % 50}/module_{target % files}.py"
            work.append(pcc.Task(f"edit {i}", id=f"t{i}",
                                 env={"EDIT": f"sed -i '5s/.*/X = {i}/' {file}"}))
        result = pcc.run(work, repo=repo, agent=pcc.Command('eval "$EDIT"'),
                         backend=pcc.LocalBackend(isolation="none"), max_concurrent=4,
                         output_dir=Path(tmp) / "out", progress="off")
        pairwise_s, _ = timed(lambda: find_conflicts(result, trial_merge=False))
        merge_s, report = timed(result.conflicts)
        assert isinstance(report, pcc.ConflictReport)
        clean = list(report.clean_set)
        apply_s, _ = timed(lambda: result.apply(clean))
        return {
            "tasks": tasks,
            "files": files,
            "clean": len(clean),
            "conflicting": len(report.conflicting),
            "pairwise_s": round(pairwise_s, 3),
            "conflicts_s": round(merge_s, 3),
            "trial_merge_ms_per_task": round(1000 * (merge_s - pairwise_s) / tasks, 1),
            "apply_s": round(apply_s, 3),
            "apply_ms_per_task": round(1000 * apply_s / max(len(clean), 1), 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps(measure(args.tasks, args.files)))


if __name__ == "__main__":
    main()
