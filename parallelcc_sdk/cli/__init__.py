"""The ``parallelcc`` command line: ``run``, ``show``, ``ls``, ``cleanup``, ``resume``, ``retry``,
``apply`` and ``push``.

``parallelcc run`` takes the flags of ``parallel-cc sandbox run --multi`` and prints the same
``--json`` document, so a script moves over by changing the program name.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..errors import ParallelCCError
from . import exit_codes
from .parser import build_parser

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command and returns its exit code (see :mod:`.exit_codes`)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Said by the command's own parser, so the hint names `parallelcc run --help`.
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        code: int = args.command_main(args)
    except ParallelCCError as exc:
        print(f"parallelcc {args.command_name}: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    except KeyboardInterrupt:
        # Outside a run (a run handles its own signals): nothing was started that must be closed.
        return exit_codes.SIGINT
    return code
