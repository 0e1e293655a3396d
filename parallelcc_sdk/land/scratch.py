"""A throwaway git repository in which patches are merged, without touching the user's repository.

The scratch repository is bare, with a private index, and reads the user's objects through git
alternates: building trees and commits in it writes objects only into its own store, in a temporary
folder that is removed afterwards. Patches are applied to the index alone (``git apply --cached``),
so no file is ever checked out: the cost follows the size of the patches, not of the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from .._git import GitError, git_sync
from .patch import unquote_path

__all__ = ["ApplyOutcome", "Scratch", "common_git_dir"]

# git's messages for a patch that does not apply name the file (LC_ALL=C keeps them in English).
_FAILED_AT = re.compile(r"^error: patch failed: (.+):\d+$")
_FAILED_FILE = re.compile(r"^error: (.+?): (patch does not apply|does not exist in index|"
                          r"already exists in index|does not match index|wrong type)$")
_REASONS = {
    "patch failed": "the lines around the change are different there",
    "patch does not apply": "the lines around the change are different there",
    "does not exist in index": "the file is not there: deleted or renamed",
    "already exists in index": "the file already exists",
    "does not match index": "the file is different there",
    "wrong type": "the path is a different kind of file there",
}


@dataclass(frozen=True)
class ApplyOutcome:
    """Whether a patch applied, and if not, the first file that stopped it and git's reason."""

    applied: bool
    path: str | None = None
    reason: str | None = None


def common_git_dir(repo: Path) -> Path:
    """The folder holding ``repo``'s objects and refs (the main one, for a linked worktree)."""
    out = git_sync("rev-parse", "--git-common-dir", cwd=repo).decode().strip()
    path = Path(out)
    return path if path.is_absolute() else (repo / path).resolve()


class Scratch:
    """``with Scratch(repo) as scratch: ...``: a private repository borrowing ``repo``'s objects."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self._folder = Path(tempfile.mkdtemp(prefix="parallelcc-land-"))
        self.git_dir = self._folder / "scratch.git"
        self._index = self._folder / "index"
        try:
            git_sync("init", "--quiet", "--bare", "--template=", str(self.git_dir))
            alternates = self.git_dir / "objects" / "info" / "alternates"
            alternates.write_text(f"{common_git_dir(repo) / 'objects'}\n", encoding="utf-8")
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Scratch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)

    def git(
        self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> bytes:
        """``git args`` in the scratch repository, with its private index."""
        scratch_env = {"GIT_DIR": str(self.git_dir), "GIT_INDEX_FILE": str(self._index)}
        return git_sync(
            *args, cwd=self._folder, env={**scratch_env, **(env or {})}, stdin=stdin, check=check
        )

    def has_commit(self, commit: str) -> bool:
        out = self.git("cat-file", "-t", commit, check=False)
        return out.strip() == b"commit"

    def read_tree(self, tree: str) -> None:
        """Makes the index hold ``tree`` (a commit or tree id) and nothing else."""
        self.git("read-tree", tree)

    def write_tree(self) -> str:
        return self.git("write-tree").decode().strip()

    def narrow_to(self, paths: Iterable[str]) -> None:
        """Keeps only the index entries of ``paths``, so that applying a patch reads and writes
        an index the size of the patches, not of the repository. Trees written afterwards hold
        only these paths: good for checking that patches apply, not for commits."""
        wanted = {os.fsencode(p) for p in paths}
        entries = self.git("ls-files", "--stage", "-z").split(b"\0")
        kept = b"".join(e + b"\0" for e in entries if e and e.split(b"\t", 1)[1] in wanted)
        self._index = self._folder / f"index-{len(list(self._folder.glob('index*')))}"
        self.git("update-index", "-z", "--index-info", stdin=kept)

    def apply(self, patch: bytes, *, three_way: bool) -> ApplyOutcome:
        """Applies ``patch`` to the index. With ``three_way``, a patch whose context moved is
        merged with the blobs it names (as ``git am -3`` does); a real conflict leaves the
        index half-merged, so read a tree back before going on."""
        args = ["apply", "--cached", "--binary", "--whitespace=nowarn"]
        if three_way:
            args.append("--3way")
        try:
            self.git(*args, "-", stdin=patch)
        except GitError as exc:
            return self._failure(str(exc))
        return ApplyOutcome(applied=True)

    def _failure(self, message: str) -> ApplyOutcome:
        unmerged = self.git("ls-files", "--unmerged", "-z", check=False)
        for record in unmerged.split(b"\0"):
            if b"\t" in record:
                path = record.split(b"\t", 1)[1].decode("utf-8", errors="surrogateescape")
                return ApplyOutcome(False, path, "both changed the same lines")
        for line in message.splitlines():
            line = line.removeprefix("git apply failed: ")
            if (match := _FAILED_FILE.match(line)) is not None:
                kind = match.group(2)
            elif (match := _FAILED_AT.match(line)) is not None:
                kind = "patch failed"
            else:
                continue
            path = unquote_path(match.group(1).encode("utf-8", errors="surrogateescape"))
            return ApplyOutcome(False, path, _REASONS[kind])
        return ApplyOutcome(False, None, message.removeprefix("git apply failed: "))

    def commit(
        self, tree: str, parent: str | None, message: str, identity: Mapping[str, str]
    ) -> str:
        """A commit of ``tree`` on ``parent``, never signed (no prompt may stop it)."""
        parents = ["-p", parent] if parent else []
        out = self.git(
            "commit-tree", "--no-gpg-sign", tree, *parents, stdin=message.encode(), env=identity
        )
        return out.decode().strip()
