"""Copy-on-write workspaces: the snapshot checked out once per run, an overlay for each task.

The run's snapshot is materialized once as a read-only *lower* layer (a git checkout with its
``.git``). A task gets empty folders (*upper*, *work* and its workspace path) and runs with an
overlay of the lower and its upper mounted at its workspace path, in a mount namespace of its own
that ends with it. Creating a workspace is therefore three ``mkdir`` calls, whatever the
repository's size, and the upper layer holds exactly what the task changed: new and modified
files (copied up whole), whiteouts for deletions, opaque folders for folders that were deleted
and made again. Overlays are mounted ``volatile``: the upper layer is thrown away with the task,
so neither the mount nor the task's ``fsync`` calls wait for the disk.

Two ways to mount, probed once per filesystem and chosen automatically:

``"mount-namespace"``
    The SDK runs as root (CAP_SYS_ADMIN): ``unshare --mount``, then an overlay with
    ``redirect_dir=on``, so renaming a folder of the snapshot works as on any filesystem.
``"user-namespace"``
    Any user (checked as ``nobody``): ``unshare --user --map-root-user --mount``, then an
    overlay with ``userxattr`` (Linux >= 5.11). The kernel cannot store folder renames there,
    so ``rename(2)`` of a folder that comes from the snapshot fails with EXDEV: ``mv`` copies
    instead, ``git mv`` of such a folder fails. File renames, and renames of folders the task
    made, work.

In both, the lower folder is mounted read-only at its own path inside the namespace, and the
command runs in a nested user namespace: it is "root" there, but holds no capability over the
namespace that owns the mounts, so it can neither write the lower layer nor remount it writable.
Only the SDK's own user is mapped into it: files the command creates belong to that user on the
host, and files of other users look owned by ``nobody`` to the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shlex
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .._git import git
from ..errors import BackendUnavailableError
from ..snapshot import Snapshot
from ..workspace import create_workspace

OverlayMode = Literal["mount-namespace", "user-namespace"]

UNSHARE = "unshare"
MOUNT = "mount"

# How each mode mounts: the command that makes the namespace, and the overlay's options.
_NAMESPACE: dict[OverlayMode, tuple[str, ...]] = {
    "mount-namespace": ("--mount",),
    "user-namespace": ("--user", "--map-root-user", "--mount"),
}
# "volatile": the upper layer is thrown away with the task, so nothing needs syncing to disk;
# without it every mount syncs the whole upper filesystem, i.e. waits for the writeback of
# everything other tasks wrote (seconds, on a busy disk), and every fsync of the task is real.
_OPTIONS: dict[OverlayMode, str] = {
    "mount-namespace": "redirect_dir=on,volatile",
    "user-namespace": "userxattr,volatile",
}

# Runs in the new namespace: $1 lower, $2 upper, $3 work, $4 mount point, $5 overlay options,
# $6 the mount executable, then the command. The layers are passed to the kernel as
# /proc/self/fd/N so that no path needs escaping (the legacy option string splits on "," and
# ":"). A volatile overlay leaves a marker in its work folder that refuses a second mount of the
# same layers (to collect the changes) until removed (tested first: ``[`` is a builtin, ``rm``
# a process, and the first mount has nothing to remove). The lower path is then mounted read-only
# over itself; nosuid,nodev,noexec only add restrictions, which a user namespace may always do
# (dropping a locked flag it may not).
# A working folder at or below the mount point still means the folder under the mount until
# it is entered again by its path.
_MOUNT_SCRIPT = """set -e
m=$6
[ ! -e "$3/work/incompat" ] || rm -rf "$3/work/incompat"
exec 3<"$1" 4<"$2" 5<"$3"
"$m" -t overlay overlay -o "$5,lowerdir=/proc/self/fd/3,upperdir=/proc/self/fd/4,\
workdir=/proc/self/fd/5" "$4"
exec 3<&- 4<&- 5<&-
"$m" --bind "$1" "$1"
"$m" -o remount,bind,ro,nosuid,nodev,noexec "$1"
cd "$(pwd -P)"
shift 6
exec "$@"
"""

_OPAQUE_XATTRS = (b"trusted.overlay.opaque", b"user.overlay.opaque")
_REDIRECT_XATTRS = (b"trusted.overlay.redirect", b"user.overlay.redirect")
_NS = 1_000_000_000


# ------------------------------------------------------------------------------------------------
# Can this machine do it?

_modes: dict[int, OverlayMode | None] = {}
_modes_lock = threading.Lock()


def overlay_mode(where: Path | None = None) -> OverlayMode | None:
    """How overlays can be mounted with upper layers on ``where``'s filesystem, or ``None``.

    ``where`` defaults to the system temporary folder. The answer comes from really mounting a
    tiny overlay (a deletion, a folder replaced, a folder renamed) and is cached per filesystem.
    """
    folder = Path(where) if where is not None else Path(tempfile.gettempdir())
    try:
        device = folder.stat().st_dev
    except OSError:
        return None
    with _modes_lock:
        if device not in _modes:
            _modes[device] = _probe(folder)
        return _modes[device]


def overlay_available(where: Path | None = None) -> bool:
    """True when task workspaces on ``where``'s filesystem can be overlays (see overlay_mode)."""
    return overlay_mode(where) is not None


def _probe(folder: Path) -> OverlayMode | None:
    if shutil.which(UNSHARE) is None or shutil.which(MOUNT) is None:
        return None
    # Only root can hold CAP_SYS_ADMIN outside a user namespace; a user namespace is tried next.
    candidates: list[OverlayMode] = ["user-namespace"]
    if os.geteuid() == 0:
        candidates.insert(0, "mount-namespace")
    for mode in candidates:
        try:
            if _probe_mode(folder, mode):
                return mode
        except OSError:
            continue
    return None


def _probe_mode(folder: Path, mode: OverlayMode) -> bool:
    with tempfile.TemporaryDirectory(prefix="parallelcc-overlay-check-", dir=folder) as tmp:
        root = Path(tmp)
        lower = root / "lower"
        (lower / "gone").mkdir(parents=True)
        (lower / "gone" / "file").write_text("lower\n")
        (lower / "moved").mkdir()
        (lower / "moved" / "file").write_text("lower\n")
        (lower / "deleted").write_text("lower\n")
        layers = create_task_layers(root / "task")
        script = "rm deleted && rm -r gone && mkdir gone && echo new > gone/new && mv moved renamed"
        argv = overlay_command(
            ["/bin/sh", "-c", script],
            lower,
            layers.upper,
            layers.work,
            layers.mountpoint,
            mode=mode,
        )
        try:
            done = subprocess.run(
                argv, cwd=layers.mountpoint, capture_output=True, timeout=20, check=False
            )
        except subprocess.TimeoutExpired:
            return False
        try:
            ok = done.returncode == 0 and changed_paths_from_upper(layers.upper, lower) == (
                ["gone/new", "renamed"]
                if mode == "mount-namespace"
                else ["gone/new", "renamed/file"],
                ["deleted", "gone", "moved"],
            )
            # A real folder rename (not a copy) is what mount-namespace mode promises.
            if mode == "mount-namespace":
                ok = ok and not (layers.upper / "renamed" / "file").exists()
            return ok and (lower / "deleted").is_file()
        finally:
            remove_task_layers(root / "task")


# ------------------------------------------------------------------------------------------------
# Once per run: the lower layer


async def materialize_lower(snapshot: Snapshot, dest: Path) -> None:
    """Checks ``snapshot`` out into the new folder ``dest``, to serve as every task's lower layer.

    The checkout is the one :func:`~parallelcc_sdk.workspace.create_workspace` makes (borrowed
    objects, the base ref, the task branch), tuned so that git inside an overlay trusts the
    index's stat cache instead of reading every file again:

    * seen through an overlay a file has another device, inode, and (in a user namespace)
      owner, so only what the overlay keeps is compared: ``core.checkStat=minimal`` (whole-second
      mtime, size, mode) and ``core.trustctime=false``;
    * no entry may be "racily clean" (written in the same second as the index), or every task's
      first ``git status`` would hash those files again and write a copy of the whole index
      into its upper layer. Such files are dated one second back and the index refreshed.
    """
    await create_workspace(snapshot, dest)
    if await asyncio.to_thread(_tune_for_overlays, dest):
        await git("update-index", "-q", "--refresh", cwd=dest)


def _tune_for_overlays(worktree: Path) -> bool:
    """Sets the stat checks, and sets back the mtime of files as new as the index.

    True if some file was set back (the index must then be refreshed).
    """
    with (worktree / ".git" / "config").open("a", encoding="utf-8") as config:
        config.write("[core]\n\tcheckStat = minimal\n\ttrustctime = false\n")
    index_second = (worktree / ".git" / "index").stat().st_mtime_ns // _NS
    found = False
    folders = [worktree]
    while folders:
        folder = folders.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if folder == worktree and entry.name == ".git":
                    continue
                if entry.is_dir(follow_symlinks=False):
                    folders.append(Path(entry.path))
                    continue
                info = entry.stat(follow_symlinks=False)
                if info.st_mtime_ns // _NS >= index_second:
                    earlier = (index_second - 1) * _NS
                    os.utime(entry.path, ns=(info.st_atime_ns, earlier), follow_symlinks=False)
                    found = True
    return found


# ------------------------------------------------------------------------------------------------
# Once per task: the upper layer, and the command that mounts it


@dataclass(frozen=True)
class TaskLayers:
    """A task's own folders: its upper layer, the overlay's work folder, and the mount point."""

    upper: Path
    work: Path
    mountpoint: Path


def create_task_layers(root: Path) -> TaskLayers:
    """Makes ``root/upper``, ``root/work`` and ``root/workspace``; ``root`` is made if missing.

    Nothing is copied: this costs the same for a repository of ten files or of a million.
    """
    layers = TaskLayers(upper=root / "upper", work=root / "work", mountpoint=root / "workspace")
    root.mkdir(parents=True, exist_ok=True)
    for folder in (layers.upper, layers.work, layers.mountpoint):
        folder.mkdir()
    return layers


def overlay_command(
    argv: Sequence[str],
    lower: Path,
    upper: Path,
    work: Path,
    mountpoint: Path,
    *,
    mode: OverlayMode | None = None,
) -> list[str]:
    """``argv`` wrapped so that it runs with ``lower`` and ``upper`` overlaid at ``mountpoint``.

    ``argv`` may itself be a bubblewrap command line that binds ``mountpoint`` writable. Every
    process of the wrapper replaces the previous one (``exec``), so the command keeps the pid,
    process group and environment it is started with, and the mount vanishes when it and its
    children end. A command started in ``mountpoint`` (or below) runs in the overlay.
    ``upper`` and ``work`` must be empty folders on one filesystem; ``mode``
    defaults to what :func:`overlay_mode` finds for ``upper``'s filesystem.
    """
    chosen = mode if mode is not None else overlay_mode(upper.parent)
    if chosen is None:
        raise BackendUnavailableError(
            f"overlay workspaces cannot be mounted on {upper.parent} here; use checkouts."
        )
    unshare = shutil.which(UNSHARE) or UNSHARE
    mount = shutil.which(MOUNT) or MOUNT
    paths = [str(Path(p).absolute()) for p in (lower, upper, work, mountpoint)]
    return [
        unshare, *_NAMESPACE[chosen], "--", "/bin/sh", "-c", _MOUNT_SCRIPT, "overlay",
        *paths, _OPTIONS[chosen], mount,
        # The command's own user namespace: root in name, without power over the mounts.
        unshare, "--user", "--map-root-user", "--", *argv,
    ]  # fmt: skip


def remove_task_layers(root: Path) -> None:
    """Deletes a task's folders.

    The kernel makes the overlay's own folders in ``work`` with mode 000 (and a task may make
    such folders too), which only root can delete as they are: for any other user every folder
    is made accessible first. That walks the upper layer, which holds only what changed.
    """
    if os.geteuid() != 0:
        for dirpath, dirnames, _ in os.walk(root):
            for name in dirnames:
                path = os.path.join(dirpath, name)
                if not os.path.islink(path):
                    with contextlib.suppress(OSError):
                        os.chmod(path, stat.S_IRWXU)
    shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# After the task: what it changed


def changed_paths_from_upper(upper: Path, lower: Path | None = None) -> tuple[list[str], list[str]]:
    """What a task changed, read from its upper layer: ``(changed, deleted)``, sorted.

    Costs O(what changed): only folders that hold a change exist in the upper layer.
    ``changed`` lists files, symlinks and other non-folders the task wrote, and folders whose
    whole content is new at that path (a renamed folder, a nested repository). ``deleted``
    lists paths of the snapshot that are gone: whiteouts, and opaque folders (nothing below them
    comes from the lower layer: a folder deleted and made again, whose new content is listed in
    ``changed``). The kernel also marks folders the task made where the lower layer has nothing
    as opaque; given ``lower``, those are not listed as deleted (one ``lstat`` each). Each
    folder path in either list stands for everything below it, as a git pathspec does. The
    repository's own ``.git`` is left out.
    """
    changed: list[str] = []
    deleted: list[str] = []
    folders: list[tuple[Path, str]] = [(upper, "")]
    while folders:
        folder, prefix = folders.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = prefix + entry.name
                if rel == ".git":
                    continue
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                    deleted.append(rel)
                elif not stat.S_ISDIR(info.st_mode):
                    changed.append(rel)
                else:
                    names = _xattr_names(entry.path)
                    if any(n in names for n in _REDIRECT_XATTRS) or os.path.lexists(
                        os.path.join(entry.path, ".git")
                    ):
                        changed.append(rel)
                        continue
                    if any(n in names for n in _OPAQUE_XATTRS) and (
                        lower is None or os.path.lexists(lower / rel)
                    ):
                        deleted.append(rel)
                    folders.append((Path(entry.path), rel + "/"))
    return sorted(changed), sorted(deleted)


def _xattr_names(path: str) -> set[bytes]:
    try:
        return {os.fsencode(name) for name in os.listxattr(path, follow_symlinks=False)}
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.ENODATA):
            return set()
        raise


def pathspec_list(paths: Sequence[str]) -> bytes:
    """``paths`` as git reads them with ``--pathspec-from-file=- --pathspec-file-nul``."""
    return b"".join(os.fsencode(p) + b"\0" for p in paths)


def stage_listed_paths_script(deleted_list: str, changed_list: str) -> str:
    """A POSIX sh fragment that stages, in a workspace, only the paths in two pathspec files.

    Run it in the task's workspace in place of ``git add --all`` (inside the overlay), with
    ``deleted_list`` and ``changed_list`` holding :func:`pathspec_list` of the two lists from
    :func:`changed_paths_from_upper`: ``git diff --cached <base>`` then gives the same bytes,
    having looked only at those paths. Paths are literal (no glob). Deleted paths are unstaged
    first (a folder replaced by another is unstaged whole, then its new content staged);
    ``git add`` exits 1 when a listed path is ignored, which is fine: ignored files are left
    out, as ``git add --all`` leaves them out.
    """
    d, c = shlex.quote(deleted_list), shlex.quote(changed_list)
    return (
        f"if [ -s {d} ]; then git --literal-pathspecs rm -r -f -q --cached --ignore-unmatch"
        f" --pathspec-from-file={d} --pathspec-file-nul || exit $?; fi\n"
        f"if [ -s {c} ]; then err=$(git --literal-pathspecs -c core.autocrlf=false"
        " -c core.safecrlf=false -c advice.addIgnoredFile=false add --all"
        f" --pathspec-from-file={c} --pathspec-file-nul 2>&1) ||"
        " { rc=$?; [ $rc -eq 1 ] || { printf '%s\\n' \"$err\" >&2; exit $rc; }; }; fi\n"
    )
