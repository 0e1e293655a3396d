"""A run of one backend, driven through the public protocol, and a way to look into sandboxes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from support.gitrepo import SAMPLE_FILES, commit_all, init_repo, write

import parallelcc_sdk as pcc

# The snapshot a run starts from: committed files, then uncommitted edits and untracked files.
BASE_FILES: dict[str, str | bytes] = {
    **SAMPLE_FILES,
    "with space.txt": "space\n",
    # Vendored: never source by default, but tracked, so a task's edit of it is a change.
    "lib/node_modules/kept.js": "k\n",
}
UNCOMMITTED = {"c.txt": "c1\nuncommitted\n", "untracked/new.txt": "untracked\n"}

# Each file and symlink under the current folder (but the top .git), one line each:
# hex(path) kind data — kind is file/exec (data: sha256) or link (data: hex(target)).
# Paths are hex so that any name, newlines included, survives.
STATE_SCRIPT = r"""
find . -path ./.git -prune -o \( -type f -o -type l \) -print0 | xargs -0 -r sh -c '
hex() { od -An -v -tx1 | tr -d " \n"; }
for p; do
  name=$(printf "%s" "${p#./}" | hex)
  if [ -L "$p" ]; then echo "$name link $(printf "%s" "$(readlink "$p")" | hex)"
  elif [ -x "$p" ]; then echo "$name exec $(sha256sum < "$p" | cut -d " " -f 1)"
  else echo "$name file $(sha256sum < "$p" | cut -d " " -f 1)"; fi
done' sh
"""

State = dict[str, tuple[str, str]]


@dataclass
class ExecResult:
    code: int
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


@dataclass
class Harness:
    backend: pcc.Backend
    run: pcc.PreparedRun
    root: Path
    """A private folder of the test, on this machine."""
    opened: list[pcc.Sandbox] = field(default_factory=list)

    @property
    def snapshot(self) -> pcc.Snapshot:
        return self.run.snapshot

    async def open(
        self, task_id: str = "task-1", attempt: int = 1, *, run: pcc.PreparedRun | None = None
    ) -> pcc.Sandbox:
        """A sandbox of the run (or of ``run``, the same run with other options)."""
        run = run or self.run
        task_dir = run.spec.run_dir / task_id
        task_dir.mkdir(parents=True, exist_ok=True)
        spec = pcc.SandboxSpec(
            run=run,
            task_id=task_id,
            attempt=attempt,
            task_dir=task_dir,
            time_limit_s=300,
            labels={
                **run.spec.labels,
                "parallelcc_task_id": task_id,
                "parallelcc_attempt": str(attempt),
            },
        )
        sandbox = await self.backend.open(spec)
        self.opened.append(sandbox)
        return sandbox

    async def prepared(self, task_id: str = "task-1") -> pcc.Sandbox:
        sandbox = await self.open(task_id)
        await sandbox.prepare()
        return sandbox

    async def sh(
        self,
        sandbox: pcc.Sandbox,
        script: str,
        *,
        stdin: bytes = b"",
        env: dict[str, str] | None = None,
        files: tuple[pcc.SandboxFile, ...] = (),
    ) -> ExecResult:
        result = ExecResult(code=-1)

        def on_line(stream: pcc.Stream, line: str) -> None:
            (result.stdout if stream == "stdout" else result.stderr).append(line)

        invocation = pcc.Invocation(
            argv=("/bin/sh", "-c", script), stdin=stdin, env=env or {}, files=files
        )
        result.code = await sandbox.exec(invocation, on_line)
        return result

    async def state(self, sandbox: pcc.Sandbox) -> State:
        """The workspace as the sandbox sees it."""
        done = await self.sh(sandbox, STATE_SCRIPT)
        assert done.code == 0, done.stderr
        return parse_state(done.stdout)

    def snapshot_tree(self, into: Path) -> Path:
        """The snapshot's files, exported on this machine without the code under test."""
        into.mkdir(parents=True)
        archive = subprocess.run(
            [
                *("git", "--git-dir", str(self.snapshot.git_dir), "-c", "core.autocrlf=false"),
                *("archive", "--format=tar", self.snapshot.commit),
            ],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
        return into


def parse_state(lines: list[str]) -> State:
    state: State = {}
    for line in lines:
        name, kind, data = line.split(" ")
        path = os.fsdecode(bytes.fromhex(name))
        state[path] = (kind, os.fsdecode(bytes.fromhex(data)) if kind == "link" else data)
    return state


def host_state(root: Path) -> State:
    """:data:`STATE_SCRIPT`'s view of a folder on this machine, computed in Python."""

    state: State = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root and ".git" in dirnames:
            dirnames.remove(".git")
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            path = Path(dirpath) / name
            rel = os.fsdecode(path.relative_to(root).as_posix())
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                state[rel] = ("link", os.readlink(path))
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                state[rel] = ("exec" if info.st_mode & 0o111 else "file", digest)
    return state


def make_user_repo(root: Path) -> Path:
    """A repository with committed files, an executable, a symlink, and uncommitted work."""
    repo = init_repo(root, BASE_FILES)
    (repo / "script.sh").chmod(0o755)
    (repo / "link-to-d").symlink_to("src/d.py")
    commit_all(repo)
    for rel, data in UNCOMMITTED.items():
        write(repo, rel, data)
    return repo


@contextlib.asynccontextmanager
async def open_harness(backend: pcc.Backend, root: Path) -> AsyncIterator[Harness]:
    """Starts a run of ``backend`` on a fresh repository; every sandbox and the run end after."""
    repo = make_user_repo(root / "repo")
    run_id = f"conformance-{uuid.uuid4().hex[:8]}"
    run_dir = root / "results" / run_id
    run_dir.mkdir(parents=True)
    spec = pcc.RunSpec(
        run_id=run_id,
        run_dir=run_dir,
        repo=repo,
        exclude=(run_dir.parent,),
        labels={"parallelcc_run_id": run_id},
    )
    prepared = await backend.start_run(spec)
    harness = Harness(backend=backend, run=prepared, root=root)
    try:
        yield harness
    finally:
        for sandbox in harness.opened:
            await sandbox.close()
        await backend.end_run(prepared)
