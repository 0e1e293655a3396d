"""E2B: requests and bytes per task, and uploads per run, against the local E2B test server.

The test server (``tests/e2b_server``, run from a checkout of this repository) logs every request
it answers with its operation name and body sizes; this suite runs N ``true`` tasks through
``E2BBackend`` against it and reads the log. Without an ``E2BBackend`` in this version of the
SDK there is nothing to measure.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import parallelcc_sdk as pcc

from ._common import Report, progress, run_sdk_with, scratch, suite_main
from ._repo import make_repo

_CHECKOUT = Path(__file__).resolve().parent.parent


def run(quick: bool) -> Report:
    report = Report("e2b", quick)
    backend_class = getattr(pcc, "E2BBackend", None)
    if backend_class is None:
        report.skipped = "no E2B backend in this version"
        print("skipped: no E2B backend in this version")
        return report
    sys.path.insert(0, str(_CHECKOUT))
    from tests.e2b_server import E2BTestServer

    tasks = 10 if quick else 50
    table = report.table(
        f"{tasks} tasks of `true` through E2BBackend (local test server)",
        ["operation", "requests", "per task", "KB in/task", "KB out/task"],
    )
    with scratch() as tmp, E2BTestServer(tmp / "server") as server:
        repo = make_repo(tmp / "repo", 200, 2_000_000)
        saved = {k: os.environ.get(k) for k in server.env}
        os.environ.update(server.env)
        try:
            progress(f"{tasks} tasks")
            run_sdk_with(
                repo, tasks, "true", backend_class(), max_concurrent=10, output_dir=tmp / "out"
            )
            entries = server.log.entries()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    by_op = Counter(e.op for e in entries)
    for op, count in sorted(by_op.items()):
        bytes_in = sum(e.bytes_in for e in entries if e.op == op)
        bytes_out = sum(e.bytes_out for e in entries if e.op == op)
        table.rows.append(
            [op, count, count / tasks, bytes_in / tasks / 1e3, bytes_out / tasks / 1e3]
        )
    total_in = sum(e.bytes_in for e in entries)
    table.rows.append(
        [
            "all",
            len(entries),
            len(entries) / tasks,
            total_in / tasks / 1e3,
            sum(e.bytes_out for e in entries) / tasks / 1e3,
        ]
    )
    uploads = by_op.get("files.upload", 0)
    table.notes.append(f"uploads in the run: {uploads} (the snapshot should travel once per run)")
    return report


if __name__ == "__main__":
    suite_main(run)
