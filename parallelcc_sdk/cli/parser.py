"""The argument parser: one sub-parser per command, each defined by its own module."""

from __future__ import annotations

import argparse
from typing import NoReturn

from .._version import __version__
from . import apply, cleanup, exit_codes, ls, push, resume, retry, run, show


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line (and exit code 2) instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(exit_codes.USAGE, f"{self.prog}: {message}; see `{self.prog} --help`.\n")


def build_parser() -> Parser:
    parser = Parser(
        prog="parallelcc",
        description=(
            "Run many coding-agent tasks in parallel, each in its own sandbox, against one git "
            "repository."
        ),
    )
    parser.add_argument("--version", action="version", version=f"parallelcc {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for module in (run, show, ls, cleanup, resume, retry, apply, push):
        sub = module.add_parser(commands)
        sub.set_defaults(
            command_main=module.main, command_name=sub.prog.split()[-1], command_parser=sub
        )
    return parser
