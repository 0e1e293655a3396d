"""``parallelcc push RUN_DIR TASK_OR_BRANCH [--remote R] [--branch NAME] [--pull-request]``: a
branch of applied tasks, or one task's own branch, pushed to a remote (see ``RunResult.push``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import ApplyConflictError, PushError
from ..results import load_run
from . import exit_codes
from .apply import add_repo_flag, conflict_sentence

_SHORT_ID = 12


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "push",
        help="push a branch made by `apply`, or one task's changes, to a remote",
        description=(
            "Push a branch made by `parallelcc apply`, or, given a task id, that task's own "
            "branch parallelcc/<run_id>-<task_id> (made first if needed), with a plain git push "
            "(never forced); --pull-request then opens a pull request with the GitHub CLI."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run's folder")
    parser.add_argument(
        "target", metavar="TASK_OR_BRANCH", help="a task id, or a branch made by `apply`"
    )
    parser.add_argument("--remote", default="origin", help="the remote (default: origin)")
    parser.add_argument(
        "--branch", metavar="NAME", help="the branch's name on the remote (default: the same)"
    )
    parser.add_argument(
        "--pull-request",
        action="store_true",
        help="then open a pull request with `gh pr create --fill` (needs gh, logged in)",
    )
    add_repo_flag(parser)
    return parser


def main(args: argparse.Namespace) -> int:
    result = load_run(args.run_dir)
    try:
        pushed = result.push(
            args.target,
            remote=args.remote,
            branch=args.branch,
            pull_request=args.pull_request,
            repo=args.repo,
        )
    except ApplyConflictError as exc:
        print(f"parallelcc push: {conflict_sentence(exc, args.run_dir)}", file=sys.stderr)
        return exit_codes.NOT_LANDED
    except PushError as exc:
        print(f"parallelcc push: {exc}", file=sys.stderr)
        return exit_codes.NOT_LANDED
    print(f"Pushed {pushed.local_branch} ({pushed.commit[:_SHORT_ID]}) to {pushed.remote} as "
          f"{pushed.branch}", flush=True)
    if pushed.pull_request_url:
        print(f"Pull request: {pushed.pull_request_url}", flush=True)
    return exit_codes.OK
