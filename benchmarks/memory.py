"""Memory: peak RSS of the SDK for N tasks that each print 1 MB, in long lines and in short ones.

Each variant runs in a process of its own (peak RSS only ever grows). The full output must be on
disk in every task's log; what the SDK keeps in memory must not grow with the number of lines.
A watchdog cancels a run whose memory passes a limit, so that a leak cannot take the machine
down: such a row says so.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import parallelcc_sdk as pcc

from ._common import (
    Report,
    cpu_seconds,
    peak_rss_mb,
    private_tempdir,
    progress,
    scratch,
    suite_main,
)
from ._repo import make_repo

OUTPUT_BYTES = 1_000_000
LIMIT_MB = 1_500
_PAGE_MB = 4096 / 2**20


def run(quick: bool) -> Report:
    report = Report("memory", quick)
    tasks = 20 if quick else 1_000
    table = report.table(
        f"{tasks} tasks, each printing {OUTPUT_BYTES // 1_000_000} MB",
        [
            "line bytes",
            "lines in all",
            "wall s",
            "CPU µs/line",
            "peak RSS MB",
            "logs complete",
            "note",
        ],
    )
    rows: dict[int, dict[str, Any]] = {}
    for line_bytes in (0, 1_000, 100):
        what = "no output" if line_bytes == 0 else f"{line_bytes}-byte lines"
        progress(f"{tasks} tasks, {what}")
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.memory", "--one", str(tasks), str(line_bytes)],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(done.stdout)
        rows[line_bytes] = row
        table.rows.append(
            [
                line_bytes or "-",
                row["lines"],
                row["wall_s"],
                row["cpu_us_per_line"],
                row["peak_rss_mb"],
                row["logs_complete"],
                row["note"],
            ]
        )
    table.notes.append(
        "peak RSS of the SDK process (interpreter and pandas included: see the no-output row);"
        " CPU: the SDK process's own, per line of output;"
        f" a run is cancelled when it passes {LIMIT_MB} MB"
    )
    report.check(
        f"{tasks} x 1 MB in 100-byte lines: peak RSS",
        rows[100]["peak_rss_mb"],
        300,
        at_most=True,
        unit=" MB",
    )
    growth = rows[100]["peak_rss_mb"] / max(rows[1_000]["peak_rss_mb"], 1)
    report.check("peak RSS, 10x more lines (same bytes)", growth, 1.2, at_most=True, unit="x")
    return report


def measure_one(tasks: int, line_bytes: int) -> dict[str, Any]:
    if line_bytes:
        line = "x" * (line_bytes - 1)
        command = f"yes {line} | head -c {OUTPUT_BYTES}"
        lines = tasks * (OUTPUT_BYTES // line_bytes)
    else:
        command, lines = "true", 0
    with private_tempdir(), scratch() as tmp:
        repo = make_repo(tmp / "repo", 20, 20_000)
        cpu = cpu_seconds()
        started = time.perf_counter()
        handle = pcc.submit(
            [f"task {i}" for i in range(tasks)],
            repo=repo,
            agent=pcc.Command(command),
            backend=pcc.LocalBackend(isolation="auto"),
            max_concurrent=20,
            output_dir=tmp / "out",
            progress="off",
        )
        over_limit = _watch_memory(handle)
        result = handle.result()
        wall = time.perf_counter() - started
        cpu = cpu_seconds() - cpu
        logs = [Path(p) / "execution.log" for p in result.df["output_path"]]
        complete = sum(
            1 for log in logs if log.is_file() and log.stat().st_size >= OUTPUT_BYTES * bool(lines)
        )
    note = f"cancelled at {LIMIT_MB} MB" if over_limit.is_set() else ""
    return {
        "lines": lines,
        "wall_s": round(wall, 2),
        "cpu_us_per_line": round(cpu / lines * 1e6, 1) if lines else float("nan"),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "logs_complete": f"{complete}/{tasks}",
        "note": note,
    }


def _watch_memory(handle: pcc.ExecutionHandle) -> threading.Event:
    over = threading.Event()

    def watch() -> None:
        while not handle.done():
            with open("/proc/self/statm") as statm:
                rss_mb = int(statm.read().split()[1]) * _PAGE_MB
            if rss_mb > LIMIT_MB:
                over.set()
                handle.cancel()
                return
            time.sleep(0.1)

    threading.Thread(target=watch, daemon=True).start()
    return over


if __name__ == "__main__":
    if "--one" in sys.argv:
        parser = argparse.ArgumentParser()
        parser.add_argument("--one", nargs=2, type=int, metavar=("TASKS", "LINE_BYTES"))
        args = parser.parse_args()
        print(json.dumps(measure_one(*args.one)))
    else:
        suite_main(run)
