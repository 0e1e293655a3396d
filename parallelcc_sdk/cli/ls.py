"""``parallelcc ls [OUTPUT_DIR]``: the runs in an output folder, newest first.

The runs are read by the run-folder reader (:func:`~parallelcc_sdk.runfolder.list_runs`): a run
whose process died reads as ``interrupted``, and a folder that cannot be read is listed as
``unreadable`` rather than hidden.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table

from ..models import STATUS_ORDER
from ..runfolder import list_runs, read_run_info
from ..views import format as fmt
from ..views.terminal import TERMINAL_COLORS
from . import exit_codes
from .console import console_for
from .run_options import DEFAULT_OUTPUT_DIR

_UNREADABLE = "unreadable"


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
            run.state.value if run.state is not None else _UNREADABLE,
            str(run.total_tasks),
            _counts(run.counts),
            fmt.cost(run.cost_usd),
            fmt.duration(run.duration_s),
        )
    console.print(table)
    return exit_codes.OK


def _counts(counts: Mapping[str, int]) -> str:
    return " ".join(
        f"[{TERMINAL_COLORS[s]}]{fmt.STATUS_SYMBOLS[s]}{counts[s]}[/]"
        for s in STATUS_ORDER
        if counts.get(s)
    )


def run_state(run_dir: Path) -> str:
    """How the run ended (``finished``, ``cancelled``, ``interrupted``), or ``running``."""
    state = read_run_info(run_dir).state
    return state.value if state is not None else _UNREADABLE
