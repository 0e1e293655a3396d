"""``parallelcc show RUN_DIR``: a run's summary and task table, read from its folder on disk.

Works for a finished run and for one whose process died (the journal and each task's metadata
are read then).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.table import Table

from ..results import RunResult, load_run
from ..views import format as fmt
from ..views._printable import printable
from ..views.terminal import TERMINAL_COLORS
from . import exit_codes, json_output
from .console import console_for
from .ls import run_state
from .summary import render_summary

_PROMPT_CHARS = 80


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "show",
        help="print a run's summary and tasks from its folder",
        description="Print the summary and the task table of a run, read from its folder.",
    )
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="the run's folder, e.g. parallel-results/<run_id>"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the run as the JSON document of `parallelcc run --json`",
    )
    return parser


def main(args: argparse.Namespace) -> int:
    result = load_run(args.run_dir)
    state = run_state(result.run_dir)
    if args.json:
        document = json_output.run_document(result)
        document["state"] = state
        print(json_output.dumps(document), flush=True)
        return exit_codes.OK
    console = console_for(sys.stdout)
    console.print(render_summary(result, state))
    console.print()
    console.print(task_table(result))
    return exit_codes.OK


def task_table(result: RunResult) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("task", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("files", justify="right", no_wrap=True)
    table.add_column("lines +/-", justify="right", no_wrap=True)
    table.add_column("cost", justify="right", no_wrap=True)
    table.add_column("prompt", no_wrap=True, overflow="ellipsis", ratio=1)
    for task in result.tasks:
        status = task.status.value
        lines = (
            "" if task.lines_added is None else f"+{task.lines_added} -{task.lines_removed or 0}"
        )
        table.add_row(
            task.task_id,
            f"[{TERMINAL_COLORS[status]}]{fmt.STATUS_SYMBOLS[status]} {status}[/]",
            fmt.duration(task.duration_s),
            "" if task.files_changed is None else str(task.files_changed),
            lines,
            fmt.cost(task.cost_usd),
            fmt.one_line(printable(task.prompt), _PROMPT_CHARS),
        )
    return table
