"""``parallelcc run``: start a run, show its progress, wait for it, print the summary or JSON."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import ParallelCCError, RunNotFinishedError, ValidationError
from ..handle import ExecutionHandle
from ..results import RunResult
from . import exit_codes, json_output
from .console import console_for
from .run_options import add_arguments, run_inputs
from .signals import RunSignals
from .summary import render_summary

# How often the wait wakes up: a signal handler runs between two waits, so this bounds how long
# a Ctrl-C can go unanswered.
_WAIT_SLICE_S = 0.2


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "run",
        help="run tasks in parallel (the flags of `parallel-cc sandbox run --multi`)",
        description=(
            "Run tasks in parallel, each in its own sandbox, against one snapshot of a git "
            "repository. Exit code 0: every task completed; 1: some did not; 2: bad usage or "
            "input (nothing started); 130/143: stopped by Ctrl-C/SIGTERM (every sandbox closed, "
            "the report written)."
        ),
    )
    add_arguments(parser)
    return parser


def main(args: argparse.Namespace) -> int:
    try:
        inputs = run_inputs(args)
    except ParallelCCError as exc:
        return _usage_error(args, str(exc))
    from .. import api

    handle: ExecutionHandle | None = None
    with RunSignals(lambda: str(handle.run_dir) if handle is not None else None) as signals:
        try:
            handle = api.submit(
                inputs.tasks, progress="off" if args.quiet else "text", **inputs.options
            )
        except ParallelCCError as exc:
            return _usage_error(args, str(exc))
        except OSError as exc:  # the run folder cannot be made
            return _usage_error(
                args,
                f"--output-dir {args.output_dir!r} cannot hold the run's folder "
                f"({exc.strerror or exc}); pass a folder you can write to.",
            )
        signals.attach(handle)
        try:
            result = _wait(handle)
        except ValidationError as exc:
            # Found only once the run began (a key the backend's service rejects): still bad
            # input, and no task ran.
            print(f"parallelcc run: the run could not start: {exc}", file=sys.stderr)
            return signals.exit_code or exit_codes.USAGE
        except ParallelCCError as exc:
            print(f"parallelcc run: the run stopped: {exc}", file=sys.stderr)
            return signals.exit_code or exit_codes.TASKS_NOT_COMPLETED
    _print_outcome(args, result, handle.status)
    if signals.exit_code is not None:
        return signals.exit_code
    return exit_codes.OK if result.success else exit_codes.TASKS_NOT_COMPLETED


def _wait(handle: ExecutionHandle) -> RunResult:
    while True:
        try:
            return handle.result(timeout=_WAIT_SLICE_S)
        except RunNotFinishedError:
            continue


def _print_outcome(args: argparse.Namespace, result: RunResult, state: str) -> None:
    if args.json:
        # The human summary goes with the progress, on stderr; stdout holds only the document.
        if not args.quiet:
            console_for(sys.stderr).print(render_summary(result, state))
        print(json_output.dumps(json_output.run_document(result)), flush=True)
        return
    console = console_for(sys.stdout)
    console.print()
    console.print(render_summary(result, state))


def _usage_error(args: argparse.Namespace, message: str) -> int:
    print(f"parallelcc run: {message}", file=sys.stderr)
    if args.json:
        print(json_output.dumps({"success": False, "error": message}), flush=True)
    return exit_codes.USAGE
