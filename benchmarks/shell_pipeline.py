"""The baseline a user could write without the SDK: ``xargs -P`` over ``git worktree add``,
the command, ``git add -A`` + ``git diff --cached --binary``, and removing the worktree.

Concurrent ``git worktree add`` and ``remove`` trip over each other's half-made entries in
``.git/worktrees``, so only registering the worktree is serialized (``flock``); the checkouts,
commands and diffs all run in parallel, and the worktrees are pruned once at the end.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

# $0 is the scratch folder, $1 the task number; {} is replaced by xargs.
_ONE_TASK = """
wt="$0/wt-$1"
flock "$0/.lock" git -C "$REPO" worktree add --quiet --detach --no-checkout "$wt" HEAD || exit 1
git -C "$wt" reset --quiet --hard || exit 1
(cd "$wt" && TASK="$1" sh -c "$COMMAND") || exit 1
git -C "$wt" add --all && git -C "$wt" diff --cached --binary HEAD > "$0/task-$1.patch"
rm -rf "$wt"
"""


def run_shell_pipeline(repo: Path, tasks: int, concurrency: int, command: str, work: Path) -> float:
    """Wall seconds for ``tasks`` runs of ``command`` (which may use ``$TASK``), ``concurrency``
    at a time, each in its own worktree of ``repo``, every patch written to ``work``."""
    work.mkdir(parents=True)
    started = time.perf_counter()
    subprocess.run(
        ["xargs", "-P", str(concurrency), "-I{}", "sh", "-c", _ONE_TASK, str(work), "{}"],
        input="".join(f"{i}\n" for i in range(tasks)).encode(),
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "REPO": str(repo),
            "COMMAND": command,
            "HOME": str(work),
            "GIT_CONFIG_NOSYSTEM": "1",
        },
        check=True,
    )
    wall = time.perf_counter() - started
    subprocess.run(["git", "-C", str(repo), "worktree", "prune"], check=True)
    patches = list(work.glob("task-*.patch"))
    if len(patches) != tasks:
        raise RuntimeError(f"shell pipeline: {len(patches)} of {tasks} tasks wrote a patch")
    return wall
