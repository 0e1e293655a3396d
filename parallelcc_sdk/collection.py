"""Change collection, shared by every backend: one command inside the sandbox, one safe unpack.

:func:`collect_command` is a ``/bin/sh`` + ``git`` command (nothing else needed in the sandbox)
that measures a workspace against the run's snapshot commit and writes one tar archive holding
the binary patch, ``numstat -z``, ``name-status -z``, the changed files, and what was left out.
A backend runs it inside its sandbox, then hands the archive to :func:`unpack_changes` on this
machine, which writes ``changes.patch`` and ``changed-files/``. Every backend therefore produces
the same bytes.

What is never source (a virtualenv, ``node_modules/``, caches; :data:`DEFAULT_EXCLUDED_CHANGES`)
is left out of the changes as if it were ignored, unless the snapshot tracks it: a task that runs
``python -m venv .venv`` gives a patch of its real edits, not of 1,500 files of the virtualenv.
What was left out this way, and its size, is measured in the sandbox and returned with the counts.

The command runs git with configuration the SDK owns: a fresh git directory, no system, global
or repository config, no hooks, no fsmonitor, no filters, textconv or external diff. What the
task wrote into the workspace's ``.git`` (config, hooks, a ``gitdir:`` redirect) is never obeyed;
the workspace's index is only borrowed as a stat cache, and if it cannot be used the command
starts again from the base commit given on its command line. The base commit must be readable
from the object directories it is given, or the command fails with a clear message.

The unpack trusts nothing in the archive: it rejects absolute paths, ``..``, members under a
symlink, hard links and devices, never writes through an existing link, and stores symlinks as
links without following them.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from .contract import ChangeStats
from .errors import ChangeCollectionError, describe_write_failure
from .runfolder.layout import CHANGED_FILES_DIR, PATCH_FILE

__all__ = [
    "ARCHIVE_NAME",
    "CHANGED_FILES_DIR",
    "DEFAULT_EXCLUDED_CHANGES",
    "EXCLUDED_PATHS_LIMIT",
    "PATCH_FILE",
    "collect_command",
    "parse_name_status",
    "parse_numstat",
    "unpack_changes",
    "write_no_changes",
]

ARCHIVE_NAME = "changes.tar"
"""The archive's name inside the command's ``out_dir``."""

DEFAULT_EXCLUDED_CHANGES: tuple[str, ...] = (
    ".venv/",
    "venv/",
    "node_modules/",
    "__pycache__/",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    "*.pyc",
)
"""gitignore patterns of what a task may create but is never source: left out of its changes
unless the snapshot tracks it (``submit(..., exclude_changes=...)`` replaces them)."""

EXCLUDED_PATHS_LIMIT = 100
"""At most this many left-out paths are returned (in git's order); the size counts them all."""

_FILES_PREFIX = "files/"
_META = ("patch", "numstat", "name-status")
# Written by the command since it leaves out what is never source; an older one did not.
_OPTIONAL_META = ("excluded", "excluded-bytes")
_COPY_CHUNK = 1024 * 1024

# Arguments: workspace, base commit, out dir, excludes file, the never-source patterns (one
# argument, a pattern a line), the two lists of paths to stage (deleted, changed: empty strings
# to stage everything), then object directories.
# Every git call goes through g(): configuration comes only from its -c flags.
_SCRIPT = r"""
set -u
ws=$1 base=$2 out=$3 exclude=$4 never=$5 dlist=$6 clist=$7
shift 7
fail() { printf 'parallelcc-collect: %s\n' "$*" >&2; exit 1; }
# Every variable through which git's caller could steer where it reads, what config and
# attributes it obeys, which programs it runs (a builtin: no process per variable).
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES \
  GIT_COMMON_DIR GIT_IMPLICIT_WORK_TREE GIT_PREFIX GIT_CONFIG GIT_CONFIG_PARAMETERS \
  GIT_CONFIG_COUNT GIT_CONFIG_SYSTEM GIT_CONFIG_GLOBAL GIT_EXEC_PATH GIT_EXTERNAL_DIFF \
  GIT_DIFF_OPTS GIT_ATTR_SOURCE GIT_NAMESPACE GIT_REPLACE_REF_BASE GIT_GRAFT_FILE \
  GIT_SHALLOW_FILE GIT_CEILING_DIRECTORIES GIT_DISCOVERY_ACROSS_FILESYSTEM \
  GIT_ICASE_PATHSPECS GIT_GLOB_PATHSPECS GIT_NOGLOB_PATHSPECS GIT_DEFAULT_HASH \
  GIT_QUARANTINE_PATH GIT_TRACE GIT_TRACE2 GIT_TRACE2_EVENT GIT_TRACE2_PERF
gd=$out/git
mkdir -p "$out" || fail "cannot create $out"
mkdir "$gd" "$gd/objects" "$gd/objects/info" "$gd/refs" "$gd/info" || fail "cannot create $gd"
printf 'ref: refs/heads/parallelcc-collect\n' > "$gd/HEAD" || fail "cannot write to $gd"
: > "$gd/objects/info/alternates"
# Never-source patterns are rules of this private repository (info/exclude), obeyed besides the
# user's: like any ignore rule, they leave alone what the base commit tracks.
if [ -n "$never" ]; then
  printf '%s\n' "$never" > "$gd/info/exclude" || fail "cannot write to $gd"
fi
for dir in "$@"; do printf '%s\n' "$dir" >> "$gd/objects/info/alternates"; done
reuse=
if [ -d "$ws/.git" ] && [ ! -L "$ws/.git" ] && [ -d "$ws/.git/objects" ] \
    && [ ! -L "$ws/.git/objects" ]; then
  printf '%s\n' "$ws/.git/objects" >> "$gd/objects/info/alternates"
  if [ -f "$ws/.git/index" ] && [ ! -L "$ws/.git/index" ]; then reuse=1; fi
fi
export GIT_DIR="$gd" GIT_WORK_TREE="$ws" GIT_INDEX_FILE="$gd/index"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_ATTR_NOSYSTEM=1
export GIT_LITERAL_PATHSPECS=1 GIT_NO_REPLACE_OBJECTS=1 GIT_TERMINAL_PROMPT=0 LC_ALL=C
g() {
  git -c core.hooksPath=/dev/null -c core.fsmonitor=false -c core.untrackedCache=false \
    -c core.splitIndex=false -c core.autocrlf=false -c core.safecrlf=false \
    -c core.excludesFile="$exclude" -c core.attributesFile=/dev/null \
    -c safe.directory='*' -c tar.umask=0022 -c core.fsync=none "$@"
}
cd "$ws" || fail "the workspace $ws is not there"
need_base() {
  g rev-parse --verify --quiet "$base^{commit}" > /dev/null 2>&1 \
    || fail "the base commit $base is not in the object store"
}
stage() { g add --all && g write-tree; }
tree=
if [ -n "$dlist$clist" ]; then
  # Only the listed paths can differ from the base: start from the base's tree (whatever the
  # task did to its own index), unstage what is gone, stage what was written. A folder path
  # stands for everything below it. git add exits 1 for a listed path that is ignored, which
  # is left out as `add --all` leaves it out.
  g read-tree "$base" 2> /dev/null || { need_base; fail "cannot read the base commit $base"; }
  if [ -s "$dlist" ]; then
    g rm -r -f -q --cached --ignore-unmatch --pathspec-from-file="$dlist" --pathspec-file-nul \
      || fail "git could not unstage the deleted paths"
  fi
  if [ -s "$clist" ]; then
    err=$(g -c advice.addIgnoredFile=false add --all --pathspec-from-file="$clist" \
      --pathspec-file-nul 2>&1) || { [ $? -eq 1 ] || fail "git could not stage: $err"; }
  fi
  tree=$(g write-tree) || fail "git could not stage the workspace"
  reuse=
fi
# The workspace's index is a stat cache that spares rehashing unchanged files; anything odd
# about it (a split index, missing objects, garbage) and staging starts again from the base.
# Its entries become the base's (keeping the stat data of those that match), so what the task
# staged or committed is measured by the same rules as the rest.
# Copied with its time: git trusts an entry's stat data only if the file is older than the
# index, so a copy dated now would hide an edit of the same size made in the same second.
if [ -z "$tree" ] && [ -n "$reuse" ] && cp -p "$ws/.git/index" "$GIT_INDEX_FILE" 2> /dev/null; then
  tree=$({ g read-tree -m -i "$base" && stage; } 2> /dev/null) || tree=
fi
if [ -z "$tree" ]; then
  rm -f "$GIT_INDEX_FILE"
  g read-tree "$base" 2> /dev/null || { need_base; fail "cannot read the base commit $base"; }
  tree=$(stage) || fail "git could not stage the workspace"
fi
# What the never-source patterns left out: with only the user's rules, whatever is still
# untracked (a folder as one entry), then its size where du can read a NUL list (GNU).
if [ -n "$never" ]; then
  rm -f "$gd/info/exclude"
  g ls-files -z --others --directory --no-empty-directory --exclude-standard > "$out/excluded" \
    || fail "git ls-files failed"
  size=
  if [ -s "$out/excluded" ]; then
    # The last line is the total: "<bytes><TAB>total".
    size=$(du -s -c -b --files0-from="$out/excluded" 2> /dev/null | {
      last=; while IFS= read -r line; do last=$line; done; printf '%s' "${last%%[!0-9]*}"; })
  else
    size=0
  fi
  printf '%s' "$size" > "$out/excluded-bytes"
  set -- --add-file="$out/excluded" --add-file="$out/excluded-bytes"
else
  set --
fi
d() { g diff --cached --find-renames --no-ext-diff --no-textconv --no-color "$@" "$base" --; }
# The base is checked only when something fails: one git process less on the usual path.
d --binary --unified=3 --src-prefix=a/ --dst-prefix=b/ > "$out/patch" 2> "$out/diff-errors" \
  || { need_base; cat "$out/diff-errors" >&2; fail "git diff failed"; }
d --numstat -z > "$out/numstat" || fail "git diff --numstat failed"
d --name-status -z > "$out/name-status" || fail "git diff --name-status failed"
d --name-only -z --diff-filter=d > "$out/present" || fail "git diff --name-only failed"
files=$(
  # No such file yet: git starts from an empty index.
  GIT_INDEX_FILE=$gd/files-index
  export GIT_INDEX_FILE
  if [ -s "$out/present" ]; then
    g reset -q "$tree" --pathspec-from-file="$out/present" --pathspec-file-nul || exit 1
  fi
  g write-tree
) || fail "cannot build the tree of changed files"
# The archive holds the staged bytes as they are: no attribute may convert or drop a file.
printf '* -text -eol -ident -filter -working-tree-encoding -export-ignore -export-subst\n' \
  > "$gd/info/attributes"
g archive --format=tar --add-file="$out/patch" --add-file="$out/numstat" \
  --add-file="$out/name-status" "$@" --prefix=files/ "$files" > "$out/changes.tar" \
  || fail "git archive failed"
"""


def collect_command(
    workspace: str,
    base: str,
    out_dir: str,
    *,
    object_dirs: Sequence[str] = (),
    exclude_file: str | None = None,
    exclude_changes: Sequence[str] = DEFAULT_EXCLUDED_CHANGES,
    stage_lists: tuple[str, str] | None = None,
) -> tuple[str, ...]:
    """The argv that writes ``<out_dir>/changes.tar`` for ``workspace`` measured against ``base``.

    All paths are as the sandbox sees them. ``object_dirs`` are git object directories that hold
    ``base`` (the run's snapshot); the workspace's own ``.git/objects`` is added when it is a real
    folder. ``exclude_file`` holds ignore patterns to apply besides the workspace's own
    ``.gitignore`` files (the snapshot's). ``exclude_changes`` are gitignore patterns of what is
    never source, left out unless ``base`` tracks it, and measured (``()``: none). ``out_dir``
    may exist but must not hold a ``git`` folder. Needs ``/bin/sh`` and git ≥ 2.30 in the
    sandbox (and GNU ``du`` to size what was left out); exits non-zero with a
    ``parallelcc-collect:`` line on stderr when it cannot measure.

    ``stage_lists`` is ``(deleted_list, changed_list)``: two files (as the sandbox sees them)
    holding ``pathspec_list`` (see ``backends.overlay``) of the only paths that may differ from
    ``base`` (deleted ones, and written ones; a folder stands for everything below it), as an
    overlay's upper layer lists them. Staging then looks at those paths only, not at the whole
    workspace; the bytes written are the same.
    """
    deleted_list, changed_list = stage_lists if stage_lists is not None else ("", "")
    for path in (workspace, out_dir, exclude_file or "", deleted_list, changed_list, *object_dirs):
        if "\n" in path:
            raise ValueError(f"path {path!r} has a newline, which git's alternates cannot hold")
    if isinstance(exclude_changes, str):
        raise ValueError("exclude_changes must be a sequence of patterns, not one string")
    for pattern in exclude_changes:
        if not pattern.strip() or "\n" in pattern or "\0" in pattern:
            raise ValueError(f"{pattern!r} is not a gitignore pattern of one line")
    return (
        "/bin/sh",
        "-c",
        _SCRIPT,
        "parallelcc-collect",
        workspace,
        base,
        out_dir,
        exclude_file or "/dev/null",
        "\n".join(exclude_changes),
        deleted_list,
        changed_list,
        *object_dirs,
    )


# ---------------------------------------------------------------------------------------------
# Host side


def unpack_changes(archive: bytes | Path, dest: Path) -> ChangeStats:
    """Writes ``dest/changes.patch`` and ``dest/changed-files/`` from a collection archive.

    ``dest`` may hold other files (they are left alone), but an earlier ``changes.patch`` and
    ``changed-files/`` are replaced: every attempt starts clean. Raises
    :class:`~parallelcc_sdk.errors.ChangeCollectionError` for an archive that is malformed or
    would write outside ``changed-files/``; nothing of such an archive is kept.
    """
    dest.mkdir(parents=True, exist_ok=True)
    files_dir = dest / CHANGED_FILES_DIR
    patch_path = dest / PATCH_FILE
    _remove(files_dir)
    _remove(patch_path)
    meta: dict[str, bytes] = {}
    try:
        with _open_archive(archive) as tar:
            for member in tar:
                try:
                    _unpack_member(tar, member, files_dir, patch_path, meta)
                except OSError as exc:  # writing here: a full disk fails this task, clearly
                    where = _written_as(member.name)
                    raise ChangeCollectionError(describe_write_failure(where, exc)) from exc
    except ChangeCollectionError:
        _remove(files_dir)
        _remove(patch_path)
        raise
    except (tarfile.TarError, OSError, EOFError) as exc:
        _remove(files_dir)
        _remove(patch_path)
        raise ChangeCollectionError(f"the change archive cannot be read: {exc}") from exc
    missing = [name for name in _META if name not in meta]
    if missing:
        _remove(files_dir)
        _remove(patch_path)
        raise ChangeCollectionError(f"the change archive has no {', '.join(missing)}")
    try:
        added, removed = parse_numstat(meta["numstat"])
        present, deleted = parse_name_status(meta["name-status"])
        excluded = parse_paths(meta.get("excluded", b""))
        excluded_bytes = _parse_size(meta.get("excluded-bytes", b"0"))
    except (ValueError, IndexError) as exc:
        raise ChangeCollectionError(f"the change archive's file lists are bad: {exc}") from exc
    return ChangeStats(
        files_changed=len(present) + len(deleted),
        lines_added=added,
        lines_removed=removed,
        paths=tuple(present),
        deleted_paths=tuple(deleted),
        excluded_paths=tuple(excluded[:EXCLUDED_PATHS_LIMIT]),
        excluded_bytes=excluded_bytes,
    )


def write_no_changes(dest: Path) -> ChangeStats:
    """What :func:`unpack_changes` writes for a workspace nothing changed, without a command.

    For a backend that knows, without looking, that nothing changed (an empty overlay layer):
    an empty ``changes.patch``, an empty ``changed-files/``, zero counts.
    """
    dest.mkdir(parents=True, exist_ok=True)
    files_dir = dest / CHANGED_FILES_DIR
    patch_path = dest / PATCH_FILE
    _remove(files_dir)
    _remove(patch_path)
    files_dir.mkdir()
    patch_path.write_bytes(b"")
    os.chmod(patch_path, 0o644)
    return ChangeStats(files_changed=0, lines_added=0, lines_removed=0)


@contextlib.contextmanager
def _open_archive(archive: bytes | Path) -> Iterator[tarfile.TarFile]:
    if isinstance(archive, bytes | bytearray):
        source: IO[bytes] = io.BytesIO(archive)
    else:
        # The archive's folder was writable by the sandbox: never follow a link planted there.
        fd = os.open(archive, os.O_RDONLY | os.O_NOFOLLOW)
        source = os.fdopen(fd, "rb")
    with source, tarfile.open(fileobj=source, mode="r:") as tar:
        yield tar


def _unpack_member(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    files_dir: Path,
    patch_path: Path,
    meta: dict[str, bytes],
) -> None:
    name = member.name
    if name in _META or name in _OPTIONAL_META:
        if not member.isreg() or name in meta:
            raise ChangeCollectionError(f"the change archive's {name!r} is not one plain file")
        if name == "patch":
            _write_new_file(tar, member, patch_path, 0o644)
            meta[name] = b""
        else:
            meta[name] = _read(tar, member)
        return
    if name == _FILES_PREFIX.rstrip("/") and member.isdir():
        files_dir.mkdir(exist_ok=True)
        return
    if not name.startswith(_FILES_PREFIX):
        raise ChangeCollectionError(f"the change archive has an unexpected member {name!r}")
    parts = _safe_parts(name[len(_FILES_PREFIX) :])
    target = _make_parents(files_dir, parts)
    if member.isdir():
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            raise ChangeCollectionError(f"the change archive's {name!r} clashes with a file")
        target.mkdir(exist_ok=True)
    elif member.isreg():
        _write_new_file(tar, member, target, 0o755 if member.mode & 0o111 else 0o644)
    elif member.issym():
        if os.path.lexists(target):
            raise ChangeCollectionError(f"the change archive has {name!r} twice")
        # Stored as the link the task made, wherever it points; nothing here ever follows it.
        os.symlink(member.linkname, target)
    else:
        raise ChangeCollectionError(
            f"the change archive's {name!r} is a hard link or a device, which a change cannot be"
        )


def _written_as(name: str) -> str:
    """What an archive member becomes in the task's folder, as an error names it."""
    if name == "patch":
        return PATCH_FILE
    if name.startswith(_FILES_PREFIX):
        return f"{CHANGED_FILES_DIR}/{name[len(_FILES_PREFIX) :]}"
    return CHANGED_FILES_DIR


def _safe_parts(rel: str) -> list[str]:
    parts = rel.rstrip("/").split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ChangeCollectionError(
            f"the change archive's path {rel!r} is absolute or leaves its folder"
        )
    return parts


def _make_parents(files_dir: Path, parts: list[str]) -> Path:
    """The member's path, its parent folders made; no parent may be a link or a file."""
    files_dir.mkdir(exist_ok=True)
    current = files_dir
    for part in parts[:-1]:
        current = current / part
        try:
            info = current.lstat()
        except FileNotFoundError:
            current.mkdir()
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise ChangeCollectionError(
                f"the change archive puts {'/'.join(parts)!r} under a link or a file"
            )
    return current / parts[-1]


def _write_new_file(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path, mode: int) -> None:
    source = tar.extractfile(member)
    if source is None:
        raise ChangeCollectionError(f"the change archive's {member.name!r} has no content")
    try:
        # O_EXCL: never through an existing link, never over a file written a moment ago.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError:
        raise ChangeCollectionError(f"the change archive has {member.name!r} twice") from None
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(source, out, _COPY_CHUNK)
    os.chmod(path, mode)  # whatever the umask said


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    source = tar.extractfile(member)
    return source.read() if source is not None else b""


def _remove(path: Path) -> None:
    """Removes a file, a link (not what it points to) or a folder tree."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


# ---------------------------------------------------------------------------------------------
# git's -z file lists


def parse_numstat(raw: bytes) -> tuple[int, int]:
    """Sums ``git diff --numstat -z``; binary files (``-``) count no lines."""
    added = removed = 0
    fields = raw.split(b"\0")
    i = 0
    while i < len(fields):
        record = fields[i]
        if not record:
            i += 1
            continue
        parts = record.split(b"\t", 2)
        a, r = parts[0], parts[1]
        if a != b"-":
            added += int(a)
        if r != b"-":
            removed += int(r)
        # With -z a rename's path field is empty and the old and new paths follow as two fields.
        i += 3 if len(parts) < 3 or parts[2] == b"" else 1
    return added, removed


def parse_paths(raw: bytes) -> list[str]:
    """A ``-z`` list of paths (``git ls-files -z``)."""
    return [os.fsdecode(path) for path in raw.split(b"\0") if path]


def _parse_size(raw: bytes) -> int | None:
    """A byte count, or ``None`` where the sandbox could not measure it (no GNU ``du``)."""
    text = raw.decode("ascii", errors="replace").strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(f"the size {text[:40]!r} is not a number")
    return int(text)


def parse_name_status(raw: bytes) -> tuple[list[str], list[str]]:
    """Paths that exist after the task (added, modified, renamed to, ...) and paths it deleted.

    Each diff entry is counted once: ``len(present) + len(deleted)`` is the number of files changed.
    """
    present: list[str] = []
    deleted: list[str] = []
    fields = raw.split(b"\0")
    i = 0
    while i < len(fields) and fields[i]:
        status = fields[i].decode()
        if status[0] in "RC":
            # A rename or copy is one changed file: its new path (the old one is in the patch).
            present.append(os.fsdecode(fields[i + 2]))
            i += 3
            continue
        path = os.fsdecode(fields[i + 1])
        (deleted if status[0] == "D" else present).append(path)
        i += 2
    return present, deleted
