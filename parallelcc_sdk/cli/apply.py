"""``parallelcc apply RUN_DIR TASK... [--branch NAME] [--repo PATH]``: tasks' changes as a new
branch of the repository, one commit per task (see ``RunResult.apply``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import ApplyConflictError
from ..results import load_run
from ..views import format as fmt
from . import exit_codes

_PROMPT_CHARS = 60
_SHORT_ID = 12
# The library's pointer to the Python API, replaced by the command that shows the same.
_LIBRARY_HINT = " See result.conflicts() for an order that applies."


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "apply",
        help="commit tasks' changes to a new branch of the repository, one commit per task",
        description=(
            "Commit the changes of the given tasks, in that order, one commit per task, to a new "
            "branch that starts at the commit the run started from. The working tree, the index "
            "and the checked-out branch are not touched; if a task's changes do not apply, "
            "nothing is changed."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run's folder")
    parser.add_argument("task_ids", metavar="TASK", nargs="+", help="a task id, e.g. task-3")
    parser.add_argument(
        "--branch", metavar="NAME", help="the new branch (default: parallelcc/<run_id>)"
    )
    add_repo_flag(parser)
    return parser


def add_repo_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repo", metavar="PATH", help="the repository (default: the one the run started from)"
    )


def main(args: argparse.Namespace) -> int:
    result = load_run(args.run_dir)
    try:
        applied = result.apply(args.task_ids, branch=args.branch, repo=args.repo)
    except ApplyConflictError as exc:
        print(f"parallelcc apply: {conflict_sentence(exc, args.run_dir)}", file=sys.stderr)
        return exit_codes.NOT_LANDED
    count = len(applied.commits)
    print(f"Created branch {applied.branch} in {applied.repo}: {count} commit"
          f"{'' if count == 1 else 's'} on {applied.base[:_SHORT_ID]}", flush=True)
    for task_id, commit in applied.commits:
        prompt = fmt.one_line(result[task_id].prompt, _PROMPT_CHARS)
        print(f"  {commit[:_SHORT_ID]}  {task_id}  {prompt}")
    return exit_codes.OK


def conflict_sentence(exc: ApplyConflictError, run_dir: str) -> str:
    """The library's message, pointing to ``parallelcc show --conflicts`` instead of Python."""
    message = str(exc).removesuffix(_LIBRARY_HINT).rstrip(".")
    return f"{message}; `parallelcc show {run_dir} --conflicts` suggests an order that applies."
