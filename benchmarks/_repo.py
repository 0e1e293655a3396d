"""Sample git repositories of a chosen size, generated into a temporary folder.

The history is written by ``git fast-import`` (one pack, as in a cloned repository, rather than
one loose object per file), then checked out.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

_FILES_PER_FOLDER = 100
_README = b"# sample repository\n"


def make_repo(root: Path, files: int, total_bytes: int, *, seed: int = 0) -> Path:
    """A repository at ``root`` with ``files`` text files of about ``total_bytes`` in all, in
    folders of 100, and a README.md, in one commit on ``main``. Every file is different."""
    rng = random.Random(seed)
    words = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz_", k=rng.randint(2, 10)))
        for _ in range(2000)
    ]
    # A pool of source-like lines: each file picks its own, so files differ but compress as code.
    pool = [
        " " * rng.choice((0, 4, 8)) + " ".join(rng.choices(words, k=rng.randint(3, 10))) + "\n"
        for _ in range(5000)
    ]
    mean_line = sum(map(len, pool)) / len(pool)
    lines_per_file = max(1, round(total_bytes / max(files, 1) / mean_line))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    subprocess.run(["git", "init", "-q", "--initial-branch=main", str(root)], env=env, check=True)
    importer = subprocess.Popen(
        ["git", "fast-import", "--quiet"], cwd=root, env=env, stdin=subprocess.PIPE
    )
    assert importer.stdin is not None
    out = importer.stdin
    out.write(b"commit refs/heads/main\ncommitter bench <bench@example.com> 0 +0000\n")
    out.write(b"data 7\nsample\n")
    out.write(b"M 100644 inline README.md\ndata %d\n%s\n" % (len(_README), _README))
    for i in range(files):
        path = f"pkg{i // _FILES_PER_FOLDER**2}/mod{i // _FILES_PER_FOLDER}/file_{i}.py"
        body = f"# file {i}\n{''.join(rng.choices(pool, k=lines_per_file))}".encode()
        out.write(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(body), body))
    out.close()
    if importer.wait() != 0:
        raise RuntimeError("git fast-import failed")
    subprocess.run(["git", "reset", "-q", "--hard", "main"], cwd=root, env=env, check=True)
    return root
