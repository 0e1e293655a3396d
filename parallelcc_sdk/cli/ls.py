"""``parallelcc ls [OUTPUT_DIR]``: the runs in an output folder, newest first.

Reading a run folder's state and listing the runs are kept here, in one place, so they can move
to the run-folder reader without touching the commands that use them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from ..errors import ParallelCCError, ValidationError
from ..models import STATUS_ORDER
from ..outputs import parse_datetime
from ..results import load_run
from ..views import format as fmt
from ..views.terminal import TERMINAL_COLORS
from . import exit_codes
from .console import console_for
from .run_options import DEFAULT_OUTPUT_DIR

_JOURNAL = "run.json"
_SUMMARY = "summary.json"


@dataclass(frozen=True)
class RunListing:
    run_id: str
    run_dir: Path
    created_at: datetime | None
    state: str
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = None
    duration_s: float | None = None


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "ls",
        help="list the runs in an output folder, newest first",
        description="List the runs in an output folder, newest first.",
    )
    parser.add_argument(
        "output_dir",
        metavar="OUTPUT_DIR",
        nargs="?",
        default=DEFAULT_OUTPUT_DIR,
        help=f"the --output-dir of the runs (default: {DEFAULT_OUTPUT_DIR})",
    )
    return parser


def main(args: argparse.Namespace) -> int:
    runs = list_runs(Path(args.output_dir))
    console = console_for(sys.stdout)
    if not runs:
        console.print(f"no runs in {args.output_dir}")
        return exit_codes.OK
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name, justify in (
        ("run", "left"),
        ("created (UTC)", "left"),
        ("state", "left"),
        ("tasks", "right"),
        ("by status", "left"),
        ("cost", "right"),
        ("duration", "right"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for run in runs:
        table.add_row(
            run.run_id,
            run.created_at.strftime("%Y-%m-%d %H:%M:%S") if run.created_at else "",
            run.state,
            str(run.total),
            _counts(run.counts),
            fmt.cost(run.cost_usd),
            fmt.duration(run.duration_s),
        )
    console.print(table)
    return exit_codes.OK


def _counts(counts: dict[str, int]) -> str:
    return " ".join(
        f"[{TERMINAL_COLORS[s]}]{fmt.STATUS_SYMBOLS[s]}{counts[s]}[/]"
        for s in STATUS_ORDER
        if counts.get(s)
    )


def list_runs(output_dir: Path) -> list[RunListing]:
    """Every run folder in ``output_dir``, newest first; one that cannot be read is listed as
    ``unreadable`` rather than hidden."""
    if not output_dir.is_dir():
        raise ValidationError(
            f"output folder {str(output_dir)!r} does not exist; pass the --output-dir of your runs."
        )
    runs = [
        _listing(path)
        for path in output_dir.iterdir()
        if path.is_dir() and ((path / _JOURNAL).is_file() or (path / _SUMMARY).is_file())
    ]
    return sorted(
        runs, key=lambda r: (r.created_at or datetime.min.astimezone(), r.run_id), reverse=True
    )


def run_state(run_dir: Path) -> str:
    """How the run ended (``finished``, ``cancelled``, ``interrupted``) as its journal says, or
    ``running`` while (or if its process died while) it runs."""
    journal = _journal(run_dir)
    state = journal.get("state")
    return state if isinstance(state, str) and state else "unknown"


def _journal(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / _JOURNAL).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _listing(run_dir: Path) -> RunListing:
    journal = _journal(run_dir)
    try:
        created = parse_datetime(journal.get("created_at"))
    except ValueError:
        created = None
    try:
        result = load_run(run_dir)
    except ParallelCCError:
        return RunListing(run_dir.name, run_dir, created, "unreadable")
    reported = [t.cost_usd for t in result.tasks if t.cost_usd is not None]
    return RunListing(
        run_id=result.run_id,
        run_dir=run_dir,
        created_at=created,
        state=run_state(run_dir),
        total=len(result.tasks),
        counts=result.counts,
        cost_usd=sum(reported) if reported else None,
        duration_s=result.summary.total_duration_s,
    )
