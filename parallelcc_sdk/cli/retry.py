"""``parallelcc retry RUN_DIR [--status failed,timed_out] [--task ID]``: run tasks again."""

from __future__ import annotations

import argparse
from typing import Any

from .resume import add_output_flags, continue_run


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "retry",
        help="run a run's failed (or chosen) tasks again, in the same run folder",
        description=(
            "Run some tasks of a run again, as new attempts in the same run folder: by default "
            "those that failed or timed out. Other tasks are kept as they are."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run's folder")
    parser.add_argument(
        "--status",
        default="failed,timed_out",
        help="comma-separated statuses of the tasks to run again (default: failed,timed_out)",
    )
    parser.add_argument(
        "--task",
        dest="task_ids",
        action="append",
        metavar="ID",
        help="a task to run again (repeatable); replaces --status",
    )
    add_output_flags(parser)
    return parser


def main(args: argparse.Namespace) -> int:
    from ..resume import submit_retry

    statuses = [s.strip() for s in str(args.status).split(",") if s.strip()]
    return continue_run(
        args,
        lambda progress: submit_retry(
            args.run_dir, status=statuses, task_ids=args.task_ids, progress=progress
        ),
    )
