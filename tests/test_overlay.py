"""Overlay workspaces on real git repositories, real mounts and real processes.

The same changes made in a plain checkout and through an overlay must give the same bytes of
``git diff --binary`` (the overlay's collection looking only at the paths its upper layer
lists), and the lower layer must come out of every task untouched.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.gitrepo import commit_all, git, init_repo

from parallelcc_sdk.backends import overlay
from parallelcc_sdk.backends.isolation import MountPlan, bubblewrap_argv, find_bubblewrap
from parallelcc_sdk.backends.overlay import (
    OverlayMode,
    TaskLayers,
    changed_paths_from_upper,
    create_task_layers,
    materialize_lower,
    overlay_available,
    overlay_command,
    overlay_mode,
    pathspec_list,
    remove_task_layers,
    stage_listed_paths_script,
)
from parallelcc_sdk.snapshot import Snapshot, take_snapshot
from parallelcc_sdk.workspace import BASE_REF, PATCH_FILE, collect_changes, create_workspace

pytestmark = pytest.mark.usefixtures("pcc_git_env")

IS_ROOT = os.geteuid() == 0
NOBODY = 65534

MODES = [
    pytest.param(
        "mount-namespace",
        marks=pytest.mark.skipif(
            not IS_ROOT, reason="mounting without a user namespace needs root"
        ),
    ),
    "user-namespace",
]

BASE: dict[str, str | bytes] = {
    "a.txt": "a1\na2\na3\n",
    "b.txt": "b1\nb2\n",
    "c.txt": "c1\n",
    "doc.md": "".join(
        f"line {i} of a document long enough to be found when renamed\n" for i in range(10)
    ),
    "img.bin": bytes(range(256)) * 4,
    "pkg/one.py": "1\n2\n3\n",
    "pkg/sub/two.py": "1\n2\n",
    "gone/x.txt": "x\n",
    "gone/deeper/y.txt": "y\n",
    "moved/m.txt": "".join(f"moved line {i}\n" for i in range(8)),
    "script.sh": "#!/bin/sh\necho hi\n",
    "with space.txt": "s\n",
    ".gitignore": "ignored/\n*.log\n",
}

# One shell script of changes, run in a plain checkout and through an overlay alike.
CHANGES = r"""set -e
printf 'a1\nA2\na3\nA4\n' > a.txt
rm b.txt
rm c.txt && mkdir c.txt && echo inside > c.txt/inside.txt
mkdir -p docs && mv doc.md docs/guide.md
printf '\377\000binary' >> img.bin
rm -rf pkg/sub && mkdir pkg/sub && echo new > pkg/sub/new.py
rm -rf gone
mv moved moved-too
chmod +x pkg/one.py
chmod -x script.sh
ln -s a.txt link-inside
ln -s /etc/hostname link-outside
mkdir -p new/deep && echo n > new/deep/file.txt
echo odd > 'odd name*?.txt' && echo colon > ':(exclude)colon.txt'
echo t > "$(printf 'tab\tname')"
echo s2 >> 'with space.txt'
mkdir -p ignored && echo i > ignored/skip.txt && echo l > debug.log
"""

COMMIT = "git add --all && git commit --quiet -m agent"


async def make_snapshot(tmp_path: Path, files: dict[str, str | bytes] | None = None) -> Snapshot:
    repo = init_repo(tmp_path / "repo", BASE if files is None else files)
    if (repo / "script.sh").exists():
        (repo / "script.sh").chmod(0o755)
    commit_all(repo)
    return await take_snapshot(repo, tmp_path / "snapshot")


@pytest.fixture
async def lower(tmp_path: Path) -> Path:
    snapshot = await make_snapshot(tmp_path)
    dest = tmp_path / "lower"
    await materialize_lower(snapshot, dest)
    return dest


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A folder owned by another user, in a place that user can reach (pytest's is private)."""
    if not IS_ROOT:
        pytest.skip("switching to another user needs root")
    root = Path(tempfile.mkdtemp(prefix="overlay-test-"))
    root.chmod(0o755)
    folder = root / "nobody"
    folder.mkdir()
    os.chown(folder, NOBODY, NOBODY)
    yield folder
    shutil.rmtree(root)


@pytest.fixture
async def public_lower(tmp_path: Path, nobody_dir: Path) -> Path:
    """A lower layer made by root that another user can read."""
    snapshot = await make_snapshot(tmp_path)
    dest = nobody_dir.parent / "lower"
    await materialize_lower(snapshot, dest)
    return dest


def as_nobody(action: Callable[[], bytes]) -> bytes:
    """What ``action`` returns when run in a child process as user ``nobody``."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.close(read)
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            os.write(write, action())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as answer:
        return answer.read()


def nobody_layers(folder: Path) -> TaskLayers:
    return as_layers(as_nobody(lambda: str(create_task_layers(folder / "task").upper).encode()))


def as_layers(upper: bytes) -> TaskLayers:
    root = Path(upper.decode()).parent
    return TaskLayers(upper=root / "upper", work=root / "work", mountpoint=root / "workspace")


def tree_digest(root: Path) -> dict[str, tuple[int, str]]:
    """Every entry under ``root``, .git included: mode and content (or link target)."""
    result: dict[str, tuple[int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                content = os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                content = ""
            result[str(path.relative_to(root))] = (info.st_mode, content)
    return result


def run_in_overlay(
    argv: list[str],
    lower: Path,
    layers: TaskLayers,
    mode: OverlayMode,
    *,
    check: bool = True,
    user: int | None = None,
) -> subprocess.CompletedProcess[bytes]:
    command = overlay_command(argv, lower, layers.upper, layers.work, layers.mountpoint, mode=mode)
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    done = subprocess.run(command, cwd=layers.mountpoint, capture_output=True, check=False)
    if check:
        assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done


def overlay_patch(lower: Path, layers: TaskLayers, mode: OverlayMode, base: str) -> bytes:
    """The task's patch, made inside the overlay with git staging only the upper's paths."""
    changed, deleted = changed_paths_from_upper(layers.upper, lower)
    lists = layers.upper.parent
    (lists / "deleted.lst").write_bytes(pathspec_list(deleted))
    (lists / "changed.lst").write_bytes(pathspec_list(changed))
    script = stage_listed_paths_script(str(lists / "deleted.lst"), str(lists / "changed.lst"))
    script += (
        "git diff --cached --find-renames --no-ext-diff --no-textconv --no-color --binary"
        f" --unified=3 --src-prefix=a/ --dst-prefix=b/ {base} --\n"
    )
    return run_in_overlay(["/bin/sh", "-c", script], lower, layers, mode).stdout


async def plain_patch(snapshot: Snapshot, tmp_path: Path, script: str) -> bytes:
    """The same changes made in a plain checkout, collected by the checkout backend's code."""
    workspace = tmp_path / "plain"
    await create_workspace(snapshot, workspace)
    await asyncio.to_thread(subprocess.run, ["/bin/sh", "-c", script], cwd=workspace, check=True)
    await collect_changes(workspace, snapshot.commit, tmp_path / "plain-out")
    return (tmp_path / "plain-out" / PATCH_FILE).read_bytes()


# ------------------------------------------------------------------------------------------------
# Availability


def test_overlays_are_available_here_in_the_mode_the_user_allows(tmp_path: Path) -> None:
    assert overlay_available(tmp_path)
    assert overlay_mode(tmp_path) == ("mount-namespace" if IS_ROOT else "user-namespace")
    assert overlay_mode(tmp_path / "missing") is None


def test_a_user_other_than_root_gets_user_namespace_overlays(nobody_dir: Path) -> None:
    def probe() -> bytes:
        overlay._modes.clear()  # the answer cached in this process was root's
        return str(overlay_mode(nobody_dir)).encode()

    assert as_nobody(probe) == b"user-namespace"


# ------------------------------------------------------------------------------------------------
# The lower layer


async def test_lower_layer_is_the_snapshot_with_a_stat_cache_an_overlay_can_trust(
    tmp_path: Path, lower: Path
) -> None:
    assert git("config", "core.checkStat", cwd=lower).strip() == "minimal"
    assert git("config", "core.trustctime", cwd=lower).strip() == "false"
    assert git("rev-parse", BASE_REF, cwd=lower) == git("rev-parse", "HEAD", cwd=lower)
    assert git("status", "--porcelain", "--untracked-files=all", cwd=lower) == ""
    # No entry is racily clean: git in a fresh overlay finds nothing to hash or rewrite, so the
    # index is not copied into the task's upper layer.
    layers = create_task_layers(tmp_path / "task")
    mode = overlay_mode(tmp_path)
    assert mode is not None
    done = run_in_overlay(["git", "status", "--porcelain"], lower, layers, mode)
    assert done.stdout == b""
    assert changed_paths_from_upper(layers.upper, lower) == ([], [])
    # (git takes index.lock to try a refresh, so .git itself is copied up, empty.)
    assert list((layers.upper / ".git").iterdir()) == []


# ------------------------------------------------------------------------------------------------
# A task's workspace


def test_creating_a_task_workspace_only_makes_three_empty_folders(tmp_path: Path) -> None:
    layers = create_task_layers(tmp_path / "task")
    assert sorted(p.name for p in (tmp_path / "task").iterdir()) == ["upper", "work", "workspace"]
    assert [p for p in (tmp_path / "task").rglob("*") if not p.is_dir() or any(p.iterdir())] == []
    assert layers.mountpoint == tmp_path / "task" / "workspace"


async def overlay_patch_equals_plain_patch(tmp_path: Path, mode: OverlayMode, script: str) -> bytes:
    """Runs ``script`` through an overlay and in a plain checkout; checks the patches are the same
    bytes and the lower layer untouched, and returns the patch."""
    snapshot = await make_snapshot(tmp_path)
    lower = tmp_path / "lower"
    await materialize_lower(snapshot, lower)
    before = tree_digest(lower)
    layers = create_task_layers(tmp_path / "task")

    run_in_overlay(["/bin/sh", "-c", script], lower, layers, mode)

    patch = overlay_patch(lower, layers, mode, snapshot.commit)
    assert patch == await plain_patch(snapshot, tmp_path, script)
    assert tree_digest(lower) == before
    return patch


@pytest.mark.parametrize("mode", MODES)
async def test_changes_through_an_overlay_give_the_same_patch_as_a_plain_checkout(
    tmp_path: Path, mode: OverlayMode
) -> None:
    patch = await overlay_patch_equals_plain_patch(tmp_path, mode, CHANGES)
    for piece in (
        b"rename from doc.md",
        b"GIT binary patch",
        b"new mode 100755",
        b"deleted file mode 100644",
        b"link-outside",
        b"moved-too/m.txt",
        b"tab\\tname",
    ):
        assert piece in patch
    assert b"ignored/skip.txt" not in patch and b"debug.log" not in patch


@pytest.mark.parametrize("mode", MODES)
async def test_agent_commits_and_deletions_it_staged_are_collected(
    tmp_path: Path, mode: OverlayMode
) -> None:
    # Committed changes, a deletion the index already knows (git rm), then uncommitted work.
    script = (
        f"{CHANGES}{COMMIT}\ngit rm --quiet a.txt && git commit --quiet -m rm\n"
        "echo after-commit >> pkg/one.py\n"
    )
    patch = await overlay_patch_equals_plain_patch(tmp_path, mode, script)
    assert b"diff --git a/a.txt b/a.txt\ndeleted file mode 100644\n" in patch


@pytest.mark.parametrize("mode", MODES)
async def test_a_folder_replaced_by_a_file_and_a_whole_folder_deleted(
    tmp_path: Path, mode: OverlayMode
) -> None:
    script = "rm -rf pkg/sub && echo now-a-file > pkg/sub\nrm -rf gone\n"
    patch = await overlay_patch_equals_plain_patch(tmp_path, mode, script)
    assert b"+++ b/pkg/sub\n" in patch and b"--- a/gone/deeper/y.txt\n" in patch
    upper, lower = tmp_path / "task" / "upper", tmp_path / "lower"
    assert changed_paths_from_upper(upper, lower) == (["pkg/sub"], ["gone"])


@pytest.mark.parametrize("mode", MODES)
async def test_upper_layer_lists_exactly_what_changed(
    tmp_path: Path, lower: Path, mode: OverlayMode
) -> None:
    layers = create_task_layers(tmp_path / "task")
    run_in_overlay(["/bin/sh", "-c", CHANGES], lower, layers, mode)

    changed, deleted = changed_paths_from_upper(layers.upper, lower)

    # Whiteouts are the deletions; opaque folders (deleted, then made again) are deletions too,
    # with their new content among the changes.
    assert deleted == sorted(["b.txt", "c.txt", "doc.md", "gone", "moved", "pkg/sub"])
    renamed_folder = ["moved-too"] if mode == "mount-namespace" else ["moved-too/m.txt"]
    assert changed == sorted([
        "a.txt", "c.txt/inside.txt", "docs/guide.md", "img.bin", "pkg/sub/new.py",
        *renamed_folder, "pkg/one.py", "script.sh", "link-inside", "link-outside",
        "new/deep/file.txt", "odd name*?.txt", ":(exclude)colon.txt", "tab\tname",
        "with space.txt", "ignored/skip.txt", "debug.log",
    ])  # fmt: skip
    for rel in deleted:
        if not (layers.upper / rel).is_dir():
            info = (layers.upper / rel).lstat()
            assert stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def test_a_nested_repository_is_listed_as_one_path(tmp_path: Path, lower: Path) -> None:
    mode = overlay_mode(tmp_path)
    assert mode is not None
    layers = create_task_layers(tmp_path / "task")
    script = "mkdir -p vendor/lib && cd vendor/lib && git init --quiet && echo x > x.c"
    run_in_overlay(["/bin/sh", "-c", script], lower, layers, mode)
    assert changed_paths_from_upper(layers.upper, lower) == (["vendor/lib"], [])


# ------------------------------------------------------------------------------------------------
# What the task cannot do


@pytest.mark.parametrize("mode", MODES)
async def test_root_in_the_task_cannot_write_or_remount_the_lower_layer(
    tmp_path: Path, lower: Path, mode: OverlayMode
) -> None:
    before = tree_digest(lower)
    layers = create_task_layers(tmp_path / "task")
    script = (
        f"id -u; echo x > {lower}/a.txt; echo rc=$?; rm -f {lower}/b.txt; echo rc=$?;"
        f" mount -o remount,rw,bind {lower}; echo rc=$?;"
        f" unshare --user --map-root-user --mount mount -o remount,rw,bind {lower}; echo rc=$?;"
        " echo ok > mine.txt"
    )
    done = run_in_overlay(["/bin/sh", "-c", script], lower, layers, mode)
    assert done.stdout.decode().split() == ["0", "rc=2", "rc=1", "rc=32", "rc=32"]
    assert tree_digest(lower) == before
    assert (layers.upper / "mine.txt").read_text() == "ok\n"


def test_a_user_other_than_root_writes_its_workspace_and_owns_what_it_made(
    nobody_dir: Path, public_lower: Path
) -> None:
    before = tree_digest(public_lower)
    layers = nobody_layers(nobody_dir)
    script = (
        "id -u && cat a.txt >/dev/null && echo new > created.txt && mkdir made"
        " && echo y > made/y.txt && rm b.txt"
    )
    done = run_in_overlay(
        ["/bin/sh", "-c", script], public_lower, layers, "user-namespace", user=NOBODY
    )
    assert done.stdout == b"0\n"
    assert (layers.upper / "created.txt").stat().st_uid == NOBODY
    assert changed_paths_from_upper(layers.upper, public_lower) == (
        ["created.txt", "made/y.txt"],
        ["b.txt"],
    )
    assert tree_digest(public_lower) == before


@pytest.mark.bwrap
@pytest.mark.parametrize("mode", MODES)
def test_bubblewrap_runs_inside_the_overlay(tmp_path: Path, lower: Path, mode: OverlayMode) -> None:
    layers = create_task_layers(tmp_path / "task")
    home = tmp_path / "home"
    home.mkdir()
    bwrap = find_bubblewrap()
    assert bwrap is not None, "bubblewrap does not work here"
    inner = bubblewrap_argv(
        ["/bin/sh", "-c",
         f"cat a.txt && echo edit >> a.txt && echo x > {lower}/c.txt; echo rc=$?;"
         " echo y > /etc/parallelcc-overlay-test; echo rc=$?"],
        bwrap=bwrap, plan=MountPlan(writable=[layers.mountpoint, home]), cwd=layers.mountpoint,
    )  # fmt: skip
    done = run_in_overlay(inner, lower, layers, mode)
    assert done.stdout.decode().split() == ["a1", "a2", "a3", "rc=2", "rc=2"]
    assert changed_paths_from_upper(layers.upper, lower) == (["a.txt"], [])
    assert (lower / "a.txt").read_text() == "a1\na2\na3\n"
    assert not Path("/etc/parallelcc-overlay-test").exists()


# ------------------------------------------------------------------------------------------------
# Clean-up


def test_task_layers_can_be_removed_by_the_user_that_made_them(
    nobody_dir: Path, public_lower: Path
) -> None:
    layers = nobody_layers(nobody_dir)
    run_in_overlay(
        ["/bin/sh", "-c", "rm a.txt"], public_lower, layers, "user-namespace", user=NOBODY
    )
    # The kernel left folders with mode 000 in the work folder, and so may a task.
    assert stat.S_IMODE((layers.work / "work").stat().st_mode) == 0
    (layers.upper / "locked" / "inner").mkdir(parents=True)
    (layers.upper / "locked" / "inner" / "file").write_text("x")
    for folder in (layers.upper / "locked", layers.upper / "locked" / "inner"):
        os.chown(folder, NOBODY, NOBODY)
    (layers.upper / "locked").chmod(0)

    as_nobody(lambda: remove_task_layers(layers.upper.parent) or b"")

    assert not layers.upper.parent.exists()
