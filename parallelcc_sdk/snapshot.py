"""The run's snapshot: HEAD plus uncommitted changes, as a commit the user's repository never sees.

The snapshot is built in a private bare repository whose object store *borrows* the user's objects
(git alternates), with a private index. Nothing is written into the user's repository: no object, no
ref, no index entry, no file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ._git import GitError, git, git_sync
from .errors import RepositoryError, SnapshotError


@dataclass(frozen=True)
class Snapshot:
    """A commit holding the repository as it was when the run started."""

    repo: Path
    """The user's repository (its top level)."""
    git_dir: Path
    """The private bare repository that holds the snapshot commit."""
    commit: str
    head: str | None
    """The user's HEAD commit at snapshot time (``None`` in a repository with no commits)."""

    @property
    def exclude_file(self) -> Path:
        """Ignore patterns of the user's besides their ``.gitignore`` files (may not exist).

        Their ``.git/info/exclude`` and their global excludes file, so changes are measured
        with the ignore rules the snapshot was taken with, by a git that reads no user config.
        """
        return self.git_dir / "info" / "exclude"

    @property
    def object_dirs(self) -> tuple[Path, ...]:
        """Object stores a workspace must borrow from to read the snapshot."""
        return (self.git_dir / "objects", *_alternates(self.git_dir))


def resolve_repo(repo: str | Path) -> Path:
    """The top level of the git repository at ``repo``, or a :class:`RepositoryError`."""
    path = Path(repo).expanduser()
    if not path.exists():
        raise RepositoryError(
            f"repo {str(repo)!r} does not exist; pass the path of a git repository (repo='.')."
        )
    if not path.is_dir():
        raise RepositoryError(f"repo {str(repo)!r} is a file; pass the folder of a git repository.")
    try:
        top = git_sync("rev-parse", "--show-toplevel", cwd=path).decode().strip()
    except GitError:
        if git_sync("rev-parse", "--git-dir", cwd=path, check=False).strip():
            raise RepositoryError(
                f"repo {str(repo)!r} is a bare repository or a .git folder, with no working tree; "
                "pass the folder of a checkout."
            ) from None
        raise RepositoryError(
            f"repo {str(repo)!r} is not a git repository; "
            "run `git init` there or pass another path."
        ) from None
    if not top:
        raise RepositoryError(
            f"repo {str(repo)!r} is inside a .git folder; pass the repository's working tree."
        )
    return Path(top).resolve()


async def take_snapshot(repo: Path, into: Path, exclude: Sequence[Path] = ()) -> Snapshot:
    """Snapshots ``repo`` (a top level from :func:`resolve_repo`) into the new folder ``into``.

    Untracked files under the ``exclude`` folders (e.g. the runs' output folder, when it lies
    inside the repository) are left out, as if they were ignored.
    """
    try:
        return await _take(repo, into, exclude)
    except GitError as exc:
        shutil.rmtree(into, ignore_errors=True)
        raise SnapshotError(f"could not snapshot {repo}: {exc}") from exc


async def _take(repo: Path, into: Path, exclude: Sequence[Path]) -> Snapshot:
    common = Path((await git("rev-parse", "--git-common-dir", cwd=repo)).decode().strip())
    if not common.is_absolute():
        common = (repo / common).resolve()
    head_out = await git("rev-parse", "--verify", "--quiet", "HEAD^{commit}", cwd=repo, check=False)
    head = head_out.decode().strip() or None

    # No template: the user's init.templateDir (hooks, an empty info/) has no place here.
    await git("init", "--quiet", "--bare", "--template=", str(into))
    (into / "objects" / "info" / "alternates").write_text(f"{common / 'objects'}\n")
    (into / "info").mkdir(exist_ok=True)
    # The user's own ignore and attribute rules must apply exactly as in their checkout.
    for name in ("exclude", "attributes"):
        if (common / "info" / name).is_file():
            shutil.copyfile(common / "info" / name, into / "info" / name)
    configured = await git("config", "--path", "--get", "core.excludesFile", cwd=repo, check=False)
    global_excludes = _global_excludes_file(repo, os.fsdecode(configured.strip()))
    if global_excludes is not None:
        with (into / "info" / "exclude").open("ab") as f:
            f.write(b"\n" + global_excludes.read_bytes() + b"\n")
    # A snapshot folder inside the work tree must not snapshot itself, nor earlier runs' results.
    inside = [rel for folder in (into, *exclude) if (rel := _inside(folder, repo)) is not None]
    if inside:
        with (into / "info" / "exclude").open("a", encoding="utf-8", errors="surrogateescape") as f:
            f.writelines(f"\n/{_escape_pattern(rel)}/\n" for rel in inside)

    env = {"GIT_DIR": str(into), "GIT_WORK_TREE": str(repo), "GIT_INDEX_FILE": str(into / "index")}
    # Starting from a copy of the user's index keeps its stat cache, so `git add` rehashes only the
    # files that changed instead of every file in the repository. Copying only reads the index.
    user_index = Path((await git("rev-parse", "--git-path", "index", cwd=repo)).decode().strip())
    if not user_index.is_absolute():
        user_index = repo / user_index
    if user_index.is_file():
        # With its time (copy2): git trusts an entry's stat data only if the file is older than
        # the index, so a copy dated now would hide an edit of the same size in the same second.
        shutil.copy2(user_index, into / "index")
        # A split index (core.splitIndex) keeps most entries in a shared file next to the index.
        for shared in user_index.parent.glob("sharedindex.*"):
            shutil.copy2(shared, into / shared.name)
    elif head:
        await git("read-tree", head, cwd=repo, env=env)
    # The copied stat cache holds blobs the user's own `git add` made, converted by their
    # core.autocrlf (which lives in their config, unread by this private repository). Files are
    # rehashed only when their stat data changed, so converting any other way would give a snapshot
    # that depends on timing. Convert as they do; an irreversible conversion only warns.
    autocrlf = await git("config", "--get", "core.autocrlf", cwd=repo, check=False)
    await git(
        "-c",
        f"core.autocrlf={autocrlf.decode().strip() or 'false'}",
        "-c",
        "core.safecrlf=false",
        "add",
        "--all",
        cwd=repo,
        env=env,
    )
    tree = (await git("write-tree", cwd=repo, env=env)).decode().strip()
    parents = ["-p", head] if head else []
    message = b"parallelcc snapshot\n"
    # Never sign: a passphrase prompt or a failing signer must not stop the snapshot.
    out = await git(
        "commit-tree", "--no-gpg-sign", tree, *parents, cwd=repo, env=env, stdin=message
    )
    commit = out.decode().strip()
    if not commit:
        raise SnapshotError(f"could not snapshot {repo}: git commit-tree returned nothing")
    return Snapshot(repo=repo, git_dir=into, commit=commit, head=head)


def _global_excludes_file(repo: Path, configured: str) -> Path | None:
    """The user's core.excludesFile (or git's default one), if there is such a file."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_absolute():
            path = repo / path
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        path = Path(xdg) / "git" / "ignore"
    return path if path.is_file() else None


def _inside(path: Path, top: Path) -> str | None:
    """``path`` relative to ``top`` in git's ``/`` form, or ``None`` unless strictly inside it."""
    try:
        rel = path.resolve().relative_to(top.resolve())
    except ValueError:
        return None
    return rel.as_posix() if rel.parts else None


def _escape_pattern(rel: str) -> str:
    """``rel`` as a gitignore pattern that matches only that literal path."""
    return "".join(f"\\{c}" if c in "\\*?[]!# " else c for c in rel)


def _alternates(git_dir: Path) -> list[Path]:
    file = git_dir / "objects" / "info" / "alternates"
    if not file.is_file():
        return []
    return [Path(line) for line in file.read_text().splitlines() if line.strip()]
