"""E2B requests per task and bytes uploaded per run, measured from the local E2B server's log.

Runs N tasks of `sleep S` plus a one-line edit on E2BBackend against the local E2B-compatible
server (tests/e2b_server), once with prepare="fork" and once with prepare="upload", and counts
every request the real e2b SDK made, by kind. Beside it, the same run as parallel-cc's design
makes it (its flow is described in the project's reference notes): the repository tarred,
gzipped and uploaded again for every task, about 20 setup and download commands per task, and
three commands every 500 ms while a task runs. Run from the repository root (needs the dev extra
and bubblewrap):

    python benchmarks/e2b_requests.py [--tasks 10] [--concurrency 5] [--sleep 2] [--files 200]
    python benchmarks/e2b_requests.py --repo PATH     # an existing repository instead
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from e2b_server.server import E2BTestServer  # noqa: E402
from fanout import make_repo  # noqa: E402

import parallelcc_sdk as pcc  # noqa: E402

# parallel-cc's commands per task besides the agent's own (reference notes, section 2): health
# check 1, `which claude` 1, `claude --version` + `claude update` 2, git init/config/add/commit/
# remote/status 7, mcporter install 1, touch the log 1, the agent 1; the download's git status,
# ls, tar, ls, file, base64 6; plus the archive's extraction 1.
PARALLEL_CC_COMMANDS_PER_TASK = 22
PARALLEL_CC_POLL_COMMANDS_PER_S = 3 / 0.5
KINDS = {
    "create": "create",
    "fork": "fork",
    "files.upload": "upload",
    "process.Start": "exec",
    "files.download": "download",
    "kill": "kill",
    "set_timeout": "renew",
    "get": "info",
    "list": "list",
}


def tarball_bytes(repo: Path) -> int:
    """What parallel-cc uploads per task: the work tree without .git and ignored files, as a
    .tar.gz at gzip's level 6."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo, capture_output=True, check=True,
    ).stdout
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for name in sorted(os.fsdecode(n) for n in listed.split(b"\0") if n):
            if (repo / name).is_file() or (repo / name).is_symlink():
                tar.add(repo / name, arcname=name, recursive=False)
    return len(buffer.getvalue())


def measure(
    prepare: str, tasks: int, concurrency: int, sleep: float, files: int, repo: Path | None
) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, E2BTestServer(Path(tmp) / "sandboxes") as server:
        os.environ.update(server.env)
        repo = repo or make_repo(Path(tmp), files)
        started = time.perf_counter()
        result = pcc.run(
            [f"task {i}" for i in range(tasks)],
            repo=repo,
            agent=pcc.Command(f'sleep {sleep}; echo "$PARALLELCC_TASK_ID" >> parallelcc-note.txt'),
            backend=pcc.E2BBackend(prepare=prepare, create_rate=100),  # type: ignore[arg-type]
            max_concurrent=concurrency,
            output_dir=Path(tmp) / "out",
            progress="off",
        )
        wall = time.perf_counter() - started
        assert result.success, result.df[["task_id", "status", "error"]]
        log = server.log.entries()
        ops = Counter(KINDS.get(r.op, r.op) for r in log)
        uploaded = sum(r.bytes_in for r in log if r.op == "files.upload")
        archive = max(r.bytes_in for r in log if r.op == "files.upload")
        repo_tarball = tarball_bytes(repo)
    pcc_requests = 1 + 1 + PARALLEL_CC_COMMANDS_PER_TASK + 1 + math.ceil(
        sleep * PARALLEL_CC_POLL_COMMANDS_PER_S
    )
    return {
        "prepare": prepare,
        "tasks": tasks,
        "sleep_s": sleep,
        "repo": "sample" if files else str(repo),
        "wall_s": round(wall, 2),
        "requests": sum(ops.values()),
        "requests_per_task": round(sum(ops.values()) / tasks, 2),
        "per_task": {kind: round(n / tasks, 2) for kind, n in sorted(ops.items())},
        "archive_bytes": archive,
        "bytes_uploaded_per_run": uploaded,
        "parallel_cc_bytes_uploaded_per_run": repo_tarball * tasks,
        "parallel_cc_requests_per_task": pcc_requests,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--sleep", type=float, default=2.0)
    parser.add_argument("--files", type=int, default=200, help="files in the sample repository")
    parser.add_argument("--repo", type=Path, help="an existing repository instead of the sample")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    files = 0 if args.repo else args.files
    repo = args.repo.resolve() if args.repo else None
    rows = [
        measure(prepare, args.tasks, args.concurrency, args.sleep, files, repo)
        for prepare in ("fork", "upload")
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("| prepare | requests/task | per task | bytes uploaded/run | parallel-cc: requests/task"
          " | parallel-cc: bytes/run |")
    print("|---|---:|---|---:|---:|---:|")
    for row in rows:
        per_task = ", ".join(f"{k} {v:g}" for k, v in row["per_task"].items())  # type: ignore[attr-defined]
        print(f"| {row['prepare']} | {row['requests_per_task']} | {per_task} | "
              f"{row['bytes_uploaded_per_run']:,} | {row['parallel_cc_requests_per_task']} | "
              f"{row['parallel_cc_bytes_uploaded_per_run']:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
