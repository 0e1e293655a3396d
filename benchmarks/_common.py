"""What every suite shares: its report (tables and target checks), running the SDK, measuring it."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import parallelcc_sdk as pcc

SANDBOX_MARKER = "PARALLELCC_SANDBOX_ID"
"""The variable every sandbox process of the local backend carries."""


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Check:
    """A target of the closing note, measured: ``value`` against ``target`` (text)."""

    name: str
    value: str
    target: str
    ok: bool


@dataclass
class Report:
    suite: str
    quick: bool
    tables: list[Table] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    skipped: str | None = None

    def table(self, title: str, columns: Sequence[str]) -> Table:
        table = Table(title, list(columns))
        self.tables.append(table)
        return table

    def check(self, name: str, value: float, target: float, *, at_most: bool, unit: str) -> None:
        ok = value <= target if at_most else value >= target
        sign = "≤" if at_most else "≥"
        self.checks.append(Check(name, f"{value:.3g}{unit}", f"{sign} {target:g}{unit}", ok))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        return cls(
            suite=data["suite"],
            quick=data["quick"],
            tables=[Table(**t) for t in data["tables"]],
            checks=[Check(**c) for c in data["checks"]],
            skipped=data.get("skipped"),
        )


# ------------------------------------------------------------------------------------------------
# Running a suite on its own: python -m benchmarks.<suite> [--quick] [--json-out FILE]


def suite_main(run: Callable[[bool], Report]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a quick look")
    parser.add_argument("--json-out", type=Path, help="also write the report as JSON here")
    args = parser.parse_args()
    report = run(args.quick)
    if args.json_out:
        args.json_out.write_text(json.dumps(report.to_json()))
    else:
        print_report(report)


def progress(message: str) -> None:
    """A line on stderr while a suite runs (the tables go to stdout at the end)."""
    print(f"  … {message}", file=sys.stderr, flush=True)


def print_report(report: Report, stream: Any = None) -> None:
    out = stream or sys.stdout
    if report.skipped:
        print(f"\n== {report.suite}: skipped: {report.skipped}", file=out)
        return
    for table in report.tables:
        print(f"\n== {report.suite}: {table.title}", file=out)
        cells = [[_cell(v) for v in row] for row in table.rows]
        widths = [
            max(len(col), *(len(row[i]) for row in cells)) if cells else len(col)
            for i, col in enumerate(table.columns)
        ]
        print("  ".join(c.rjust(w) for c, w in zip(table.columns, widths, strict=True)), file=out)
        for row in cells:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)), file=out)
        for note in table.notes:
            print(f"   {note}", file=out)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


# ------------------------------------------------------------------------------------------------
# Measuring


@contextlib.contextmanager
def scratch(prefix: str = "bench-") -> Iterator[Path]:
    """A temporary folder for generated repositories and outputs, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def private_tempdir() -> Iterator[Path]:
    """Points this process's temporary folder (and its children's) to a new empty one, so what a
    run leaves behind can be told apart from what others on the machine put in /tmp."""
    path = Path(tempfile.mkdtemp(prefix="bench-tmp-"))
    saved = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(path)
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        if saved[0] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved[0]
        tempfile.tempdir = saved[1]
        shutil.rmtree(path, ignore_errors=True)


def cpu_seconds() -> float:
    """CPU time of this process (all its threads), not of its children: the orchestrator's."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk_bytes(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (what ``du`` counts), links not followed."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def run_sdk(
    repo: Path,
    tasks: int,
    command: str,
    *,
    max_concurrent: int,
    isolation: str,
    output_dir: Path,
) -> tuple[float, pcc.RunResult]:
    """Runs ``tasks`` copies of ``command`` on the local backend; wall seconds and the result."""
    backend = pcc.LocalBackend(isolation=isolation)  # type: ignore[arg-type]
    return run_sdk_with(
        repo, tasks, command, backend, max_concurrent=max_concurrent, output_dir=output_dir
    )


def run_sdk_with(
    repo: Path,
    tasks: int,
    command: str,
    backend: pcc.Backend,
    *,
    max_concurrent: int,
    output_dir: Path,
) -> tuple[float, pcc.RunResult]:
    """Runs ``tasks`` copies of ``command`` through the public API; wall seconds and the result."""
    started = time.perf_counter()
    result = pcc.run(
        [f"task {i}" for i in range(tasks)],
        repo=repo,
        agent=pcc.Command(command),
        backend=backend,
        max_concurrent=max_concurrent,
        output_dir=output_dir,
        progress="off",
    )
    wall = time.perf_counter() - started
    if not result.success:
        failed = result.df[result.df["status"] != "completed"][["task_id", "status", "error"]]
        raise RuntimeError(f"benchmark run did not complete:\n{failed.head()}")
    return wall, result


def marked_processes(needle: str) -> list[int]:
    """Processes that carry the sandbox marker and mention ``needle`` in their environment
    (this benchmark's temporary folder: the machine may run other SDK users' sandboxes)."""
    found = []
    marker, text = SANDBOX_MARKER.encode() + b"=", needle.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ and text in environ:
            found.append(int(entry.name))
    return found


def left_in(folder: Path, expected: set[str]) -> list[str]:
    """Names in ``folder`` other than ``expected``: what a run left behind there."""
    return sorted(p.name for p in folder.iterdir() if p.name not in expected)
