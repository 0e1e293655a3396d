"""``parallelcc resume RUN_DIR``: continue a run whose process died, in its own folder."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ..errors import ParallelCCError
from ..handle import ExecutionHandle
from . import exit_codes
from .run import _print_outcome, _wait
from .signals import RunSignals


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "resume",
        help="continue a run whose process died (finished tasks are kept)",
        description=(
            "Continue a run whose process died (kill -9, a crash, a reboot) in its own folder: "
            "completed, failed and timed-out tasks are kept, the others run. The agent and the "
            "backend are rebuilt from its run.json; credentials are read from the environment."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run's folder")
    add_output_flags(parser)
    return parser


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.add_argument("--quiet", "-q", action="store_true", help="show no progress")


def main(args: argparse.Namespace) -> int:
    from ..resume import submit_resume

    return continue_run(args, lambda progress: submit_resume(args.run_dir, progress=progress))


def continue_run(args: argparse.Namespace, start: Callable[[str], ExecutionHandle]) -> int:
    """Starts the continuation, shows its progress, waits, prints the outcome (as ``run``)."""
    name = f"parallelcc {args.command_name}"
    handle: ExecutionHandle | None = None
    with RunSignals(lambda: str(handle.run_dir) if handle is not None else None) as signals:
        try:
            handle = start("off" if args.quiet else "text")
        except ParallelCCError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return exit_codes.USAGE
        signals.attach(handle)
        try:
            result = _wait(handle)
        except ParallelCCError as exc:
            print(f"{name}: the run stopped: {exc}", file=sys.stderr)
            return signals.exit_code or exit_codes.TASKS_NOT_COMPLETED
    _print_outcome(args, result, handle.status)
    if signals.exit_code is not None:
        return signals.exit_code
    return exit_codes.OK if result.success else exit_codes.TASKS_NOT_COMPLETED
