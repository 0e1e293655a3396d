"""A tiny stand-in for a coding agent, so the quickstart runs with no account and no network.

It reads its instruction from stdin (as every parallelcc agent receives its prompt) and makes a
real change in the current folder, printing what it does as it goes. Instructions:

    create PATH: TEXT        write a new file (folders are created)
    append PATH: TEXT        add a line to a file
    replace PATH: OLD => NEW replace text in a file
    rename OLD => NEW        move a file
    delete PATH              remove a file
    fail: MESSAGE            exit with an error
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main() -> int:
    instruction = sys.stdin.read().strip()
    verb, _, rest = instruction.partition(" ")
    print(f"thinking about: {instruction[:60]}", flush=True)
    time.sleep(0.5)  # pretend to think, so the progress display has something to show
    if verb == "create":
        path, _, text = rest.partition(": ")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
    elif verb == "append":
        path, _, text = rest.partition(": ")
        with Path(path).open("a") as handle:
            handle.write(text + "\n")
    elif verb == "replace":
        path, _, change = rest.partition(": ")
        old, _, new = change.partition(" => ")
        file = Path(path)
        file.write_text(file.read_text().replace(old, new))
    elif verb == "rename":
        old, _, new = rest.partition(" => ")
        Path(new).parent.mkdir(parents=True, exist_ok=True)
        Path(old).rename(new)
    elif verb == "delete":
        Path(rest).unlink()
    elif instruction.startswith("fail:"):
        print(instruction.removeprefix("fail:").strip(), file=sys.stderr)
        return 1
    else:
        print(f"unknown instruction: {instruction}", file=sys.stderr)
        return 2
    print(f"done: {verb} {rest.split(':')[0]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
