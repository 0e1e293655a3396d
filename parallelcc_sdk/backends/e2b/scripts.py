"""The shell commands the backend runs inside a sandbox, and where its files live there.

E2B runs every command as ``/bin/bash -l -c <text>``: the text is built here from fixed scripts
and ``shlex``-quoted arguments. A task's prompt and credentials are never part of it: the prompt
goes into a file fed on stdin, credentials into the command's environment.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from ...contract import SandboxFile
from ...workspace import BASE_REF, TASK_BRANCH
from .archive import EXCLUDE_MEMBER, PACK_MEMBER

__all__ = [
    "AGENT_MARK",
    "ARCHIVE_PATH",
    "EXCLUDE_PATH",
    "HOME",
    "OBJECTS_DIR",
    "PRIVATE_DIR",
    "WORKSPACE",
    "collect_shell",
    "prepare_shell",
    "remove_shell",
    "run_shell",
]

HOME = "/home/user"
"""The home of E2B's default sandbox user, which runs every command and file call."""
WORKSPACE = f"{HOME}/workspace"
PRIVATE_DIR = f"{HOME}/.parallelcc"
"""The backend's own files: the run's objects, ignore rules, each attempt's stdin."""
ARCHIVE_PATH = f"{PRIVATE_DIR}/run.tar.gz"
OBJECTS_DIR = f"{PRIVATE_DIR}/objects"
EXCLUDE_PATH = f"{PRIVATE_DIR}/{EXCLUDE_MEMBER}"
AGENT_MARK = "parallelcc-agent"
"""In the text of every command that runs an agent, so a later process can find it among the
sandbox's processes (``commands.list``) and re-attach to it after the run's process died."""

# Arguments: the private folder, the workspace, the base commit. The workspace is made the way
# the local backend makes one (parallelcc_sdk.workspace.create_workspace): the same refs, HEAD
# and config, so an agent sees the same repository on either backend. Its history is not there:
# `shallow` tells git the base commit's parents are missing on purpose.
_PREPARE = f"""
set -eu
dir=$1 ws=$2 base=$3
cd "$dir"
tar -xzf run.tar.gz
rm -f run.tar.gz
git index-pack {PACK_MEMBER} > /dev/null
git init --quiet --template= "$ws"
mkdir -p "$ws/.git/objects/info" "$ws/.git/refs/parallelcc" "$ws/.git/refs/heads/parallelcc"
printf '%s\\n' "$dir/objects" > "$ws/.git/objects/info/alternates"
printf '%s\\n' "$base" > "$ws/.git/{BASE_REF}"
printf '%s\\n' "$base" > "$ws/.git/{TASK_BRANCH}"
printf 'ref: {TASK_BRANCH}\\n' > "$ws/.git/HEAD"
printf '%s\\n' "$base" > "$ws/.git/shallow"
printf '[core]\\n\\tautocrlf = false\\n\\tsafecrlf = false\\n' >> "$ws/.git/config"
git -C "$ws" -c core.autocrlf=false reset --quiet --hard "$base"
"""


def _join(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(arg) for arg in argv)


def prepare_shell(base: str) -> str:
    """Unpacks the uploaded archive and checks ``base`` out into the workspace."""
    return _join(("/bin/sh", "-c", _PREPARE, "parallelcc-prepare", PRIVATE_DIR, WORKSPACE, base))


def run_shell(
    argv: Sequence[str],
    *,
    stdin_path: str | None,
    files: Sequence[SandboxFile],
    mark: bool = True,
) -> str:
    """Gives the written files their modes, then becomes ``argv`` reading ``stdin_path``.

    ``exec``: the command is the process E2B started, so killing that kills the command.
    """
    # A no-op first step marks the command as an agent's, to be found again (AGENT_MARK).
    steps = [f": {AGENT_MARK}"] if mark else []
    steps += [f"chmod {file.mode:o} {shlex.quote(file.path)}" for file in files]
    source = shlex.quote(stdin_path) if stdin_path is not None else "/dev/null"
    steps.append(f"exec {_join(argv)} < {source}")
    return " && ".join(steps)


def collect_shell(argv: Sequence[str]) -> str:
    return _join(argv)


def remove_shell(paths: Sequence[str]) -> str:
    return _join(("rm", "-f", "--", *paths))
