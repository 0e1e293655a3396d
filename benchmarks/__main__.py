"""Runs the benchmark suites side by side and prints their tables and targets.

    python -m benchmarks [--quick] [--only NAME ...] [--json FILE]

Each suite runs in a process of its own (peak memory and CPU time are per process), with a
temporary folder of its own (so that what a run leaves behind can be seen).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from ._common import Report, print_report

SUITES = ("makespan", "workspace_cost", "scale", "memory", "events", "e2b")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    parser.add_argument("--only", action="append", choices=SUITES, help="run only this suite")
    parser.add_argument("--json", type=Path, help="write every report as JSON to this file")
    args = parser.parse_args()
    started = datetime.now(UTC)
    kind = "quick" if args.quick else "full"
    print(f"parallelcc benchmarks, {kind} run, {started:%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}")
    reports: list[Report] = []
    for name in args.only or SUITES:
        print(f"\n-- {name}", file=sys.stderr, flush=True)
        begun = time.perf_counter()
        report = run_suite(name, args.quick)
        print(f"   ({time.perf_counter() - begun:.0f} s)", file=sys.stderr, flush=True)
        print_report(report)
        reports.append(report)
    checks = [(r.suite, c) for r in reports for c in r.checks]
    if checks:
        print("\n== targets")
        width = max(len(f"{suite}: {c.name}") for suite, c in checks)
        for suite, c in checks:
            mark = "met" if c.ok else "NOT MET"
            print(f"{f'{suite}: {c.name}':<{width}}  {c.value:>10}  target {c.target:<10} {mark}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "started": started.isoformat(),
                    "quick": args.quick,
                    "machine": machine(),
                    "reports": [r.to_json() for r in reports],
                },
                indent=1,
            )
        )
    return 0


def run_suite(name: str, quick: bool) -> Report:
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        out = Path(tmp) / "report.json"
        env = {**os.environ, "TMPDIR": tmp}
        argv = [sys.executable, "-m", f"benchmarks.{name}", "--json-out", str(out)]
        subprocess.run(argv + (["--quick"] if quick else []), env=env, check=True)
        return Report.from_json(json.loads(out.read_text()))


def machine() -> str:
    cores = os.cpu_count()
    memory = ""
    try:
        with open("/proc/meminfo") as meminfo:
            kb = int(meminfo.readline().split()[1])
        memory = f", {kb / 2**20:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    load = ", load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    return (
        f"{platform.system()} {platform.release()}, {platform.machine()}, {cores} cores"
        f"{memory}{load}, Python {platform.python_version()}"
    )


if __name__ == "__main__":
    sys.exit(main())
