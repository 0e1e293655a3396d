"""``parallelcc show RUN_DIR``: a run's summary and task table, read from its folder on disk;
with ``--conflicts`` its conflict map, with ``--task ID`` one task's transcript and diff.

Works for a finished run and for one whose process died (the journal and each task's metadata
are read then).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.table import Table

from ..errors import ValidationError
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
        help="print the run as the JSON document of `parallelcc run --json` (with --conflicts: "
        "the conflict map)",
    )
    view = parser.add_mutually_exclusive_group()
    view.add_argument(
        "--conflicts",
        action="store_true",
        help="print the conflict map: which tasks changed the same lines, which apply together",
    )
    view.add_argument(
        "--task",
        metavar="TASK_ID",
        help="print one task: the agent's turns and tool calls (or its log), and its diff",
    )
    parser.add_argument(
        "--repo",
        metavar="PATH",
        help="with --conflicts: the repository the run started from, if it has moved",
    )
    return parser


def main(args: argparse.Namespace) -> int:
    _check_flags(args)
    result = load_run(args.run_dir)
    if args.conflicts:
        return _show_conflicts(result, args)
    if args.task is not None:
        _require_task(result, args.task)
        result.show(args.task).print(sys.stdout)
        return exit_codes.OK
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


def _check_flags(args: argparse.Namespace) -> None:
    if args.task is not None and args.json:
        raise ValidationError("--json does not apply to --task; remove one of them.")
    if args.repo is not None and not args.conflicts:
        raise ValidationError("--repo only applies to --conflicts; remove it, or add --conflicts.")


def _require_task(result: RunResult, task_id: str) -> None:
    """Refuses a task id the run does not have, naming the ones it has (the library says
    ``KeyError``, which is no sentence for a shell)."""
    known = [t.task_id for t in result.tasks]
    if task_id not in known:
        raise ValidationError(
            f"run {result.run_id} has no task {task_id!r}; its tasks are "
            f"{', '.join(known) or 'none'}."
        )


def _show_conflicts(result: RunResult, args: argparse.Namespace) -> int:
    report = result.conflicts(repo=args.repo)
    if args.json:
        print(json_output.dumps(json_output.conflicts_document(report)), flush=True)
    else:
        print(report.to_text(), flush=True)
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
