"""Real git repositories for the tests: run git, write files, make a committed repository.

The ``pcc_git_env`` fixture (conftest.py) gives a test a HOME whose git identity is the one here."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

# The identity of every commit made here; the isolated HOME's ~/.gitconfig carries the same one.
USER_NAME = "Test User"
USER_EMAIL = "test@example.com"

# A small tree with text, binary, nested and executable files (script.sh is meant to be 0755)
# and a document long enough for git to find it again when it is renamed.
SAMPLE_FILES: dict[str, str | bytes] = {
    "a.txt": "a1\na2\na3\n",
    "b.txt": "b1\nb2\n",
    "c.txt": "c1\n",
    "doc.md": "".join(
        f"line {i} of a document long enough to be found when renamed\n" for i in range(10)
    ),
    "img.bin": bytes(range(256)) * 4,
    "pkg/one.py": "1\n2\n3\n",
    "pkg/sub/two.py": "1\n2\n",
    "script.sh": "#!/bin/sh\necho hi\n",
    "src/d.py": "x = 1\ny = 2\n",
}


def git_bytes(*args: str, cwd: Path, stdin: bytes | None = None, check: bool = True) -> bytes:
    """``git *args`` in ``cwd``; its stdout. A failure raises unless ``check`` is false."""
    done = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout


def git(*args: str, cwd: Path, stdin: bytes | None = None, check: bool = True) -> str:
    """Like :func:`git_bytes`, its stdout decoded (undecodable bytes kept as surrogates)."""
    return git_bytes(*args, cwd=cwd, stdin=stdin, check=check).decode(errors="surrogateescape")


def write(root: Path, rel: str, data: str | bytes) -> Path:
    """Writes ``data`` to ``root/rel``, making the parent folders."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def rewritten_within_its_second(root: Path, rel: str, data: str) -> bool:
    """Rewrites ``root/rel`` with ``data``; True if its times (as git compares them, to the
    second) did not change, so that only git's care with the index's own time can see it."""
    before = (root / rel).stat()
    write(root, rel, data)
    after = (root / rel).stat()
    seconds = [(int(s.st_mtime), int(s.st_ctime)) for s in (before, after)]
    return seconds[0] == seconds[1]


async def sleep_into_the_next_second() -> None:
    await asyncio.sleep(1 - time.time() % 1 + 0.05)


def init_repo(root: Path, files: Mapping[str, str | bytes] | None = None) -> Path:
    """A new repository on ``main`` at ``root`` with ``files`` written but not committed."""
    root.mkdir(parents=True, exist_ok=True)
    git("init", "--quiet", "--initial-branch=main", cwd=root)
    for rel, data in (files or {}).items():
        write(root, rel, data)
    return root


def commit_all(root: Path, message: str = "initial", *, allow_empty: bool = False) -> None:
    """Commits everything in the work tree, as :data:`USER_NAME` whatever HOME says."""
    identity = ("-c", f"user.name={USER_NAME}", "-c", f"user.email={USER_EMAIL}")
    git("add", "--all", cwd=root)
    empty = ("--allow-empty",) if allow_empty else ()
    git(*identity, "commit", "--quiet", *empty, "-m", message, cwd=root)


def make_repo(root: Path, files: Mapping[str, str | bytes] | None = None) -> Path:
    """A repository at ``root`` with ``files`` in one commit on ``main`` (no commit if none)."""
    init_repo(root, files)
    if files:
        commit_all(root)
    return root
