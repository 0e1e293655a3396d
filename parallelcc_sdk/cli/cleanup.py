"""``parallelcc cleanup [RUN_DIR]``: close what a crashed or killed run left behind.

The work is the SDK's ``cleanup`` (processes and workspaces of the local backend, sandboxes of
E2B); this command calls it and says what it closed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import Any

from . import exit_codes


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "cleanup",
        help="close the sandboxes, processes and workspaces a crashed run left behind",
        description=(
            "Close what a crashed or killed run left behind: processes and workspaces (local "
            "backend), sandboxes (E2B). Without RUN_DIR, looks across all runs."
        ),
    )
    parser.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        nargs="?",
        help="the run's folder; without it, every run's leftovers",
    )
    return parser


def main(args: argparse.Namespace) -> int:
    import parallelcc_sdk

    cleanup = getattr(parallelcc_sdk, "cleanup", None)
    if cleanup is None:
        print(
            "parallelcc cleanup: this version of parallelcc_sdk cannot clean up runs.",
            file=sys.stderr,
        )
        return exit_codes.USAGE
    closed = cleanup(run_dir=args.run_dir)
    lines = _describe(closed)
    print("\n".join(lines) if lines else "nothing was left behind; nothing to close.")
    return exit_codes.OK


def _describe(closed: object) -> list[str]:
    """What ``cleanup`` returned, one line per thing it closed."""
    if closed is None:
        return []
    if isinstance(closed, str):
        return [closed]
    if isinstance(closed, Iterable):
        return [f"closed {item}" for item in closed]
    return [str(closed)]
