"""The shared change collection: the in-sandbox command obeys nothing the task planted, and the
host-side unpack writes nothing outside ``changed-files/`` whatever the archive says.

The byte-level behaviour (patches, counts, copies) is in test_workspace.py and in the backend
conformance suite; here are the hostile cases.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from support.e2e import tree_state
from support.gitrepo import git, make_repo, write

from parallelcc_sdk.collection import (
    ARCHIVE_NAME,
    CHANGED_FILES_DIR,
    PATCH_FILE,
    collect_command,
    unpack_changes,
)
from parallelcc_sdk.contract import ChangeStats
from parallelcc_sdk.errors import ChangeCollectionError
from parallelcc_sdk.snapshot import Snapshot, take_snapshot
from parallelcc_sdk.workspace import collect_changes, create_workspace

pytestmark = pytest.mark.usefixtures("pcc_git_env")

# ------------------------------------------------------------------------------------------------
# Crafted archives


def archive(*members: tuple[str, str, bytes | str], meta: bool = True) -> bytes:
    """A tar of (name, kind, data) members: kind is file, exec, dir, symlink, hardlink or fifo."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        all_members = list(members)
        if meta:
            all_members += [
                ("patch", "file", b"diff --git a/x b/x\n"),
                ("numstat", "file", b"1\t0\tx\x00"),
                ("name-status", "file", b"A\x00x\x00"),
            ]
        for name, kind, data in all_members:
            info = tarfile.TarInfo(name)
            payload = data.encode() if isinstance(data, str) else data
            if kind in ("file", "exec"):
                info.size = len(payload)
                info.mode = 0o755 if kind == "exec" else 0o644
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[kind]
            info.linkname = payload.decode()
            tar.addfile(info)
    return buffer.getvalue()


@pytest.fixture
def area(tmp_path: Path) -> tuple[Path, Path]:
    """``dest`` (a task folder holding another file) and ``outside`` (must never change)."""
    dest = tmp_path / "task-1"
    dest.mkdir()
    (dest / "metadata.json").write_text("{}")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep\n")
    return dest, outside


def assert_rejected(data: bytes, dest: Path, tmp_path: Path, match: str) -> None:
    before = {
        k: v for k, v in tree_state(tmp_path).items() if not k.startswith(f"{dest.name}/")
    }
    with pytest.raises(ChangeCollectionError, match=match):
        unpack_changes(data, dest)
    after = {k: v for k, v in tree_state(tmp_path).items() if not k.startswith(f"{dest.name}/")}
    assert after == before, "something was written outside the task folder"
    # Nothing of a rejected archive is kept; the task folder's own files are.
    assert sorted(p.name for p in dest.iterdir()) == ["metadata.json"]


def test_a_well_formed_archive_is_unpacked_with_modes_and_links(
    area: tuple[Path, Path],
) -> None:
    dest, outside = area
    stats = unpack_changes(
        archive(
            ("files", "dir", ""),
            ("files/src", "dir", ""),
            ("files/src/a.py", "file", "print(1)\n"),
            ("files/run.sh", "exec", "#!/bin/sh\n"),
            ("files/inner", "symlink", "src/a.py"),
            ("files/out", "symlink", str(outside / "keep.txt")),
        ),
        dest,
    )
    assert stats == ChangeStats(files_changed=1, lines_added=1, paths=("x",))
    files = dest / CHANGED_FILES_DIR
    assert (files / "src/a.py").read_text() == "print(1)\n"
    assert os.access(files / "run.sh", os.X_OK) and not os.access(files / "src/a.py", os.X_OK)
    assert os.readlink(files / "inner") == "src/a.py"
    # A link that points outside is kept as a link, never followed.
    assert os.readlink(files / "out") == str(outside / "keep.txt")
    assert (outside / "keep.txt").read_text() == "keep\n"
    assert (dest / PATCH_FILE).read_bytes() == b"diff --git a/x b/x\n"


@pytest.mark.parametrize(
    ("members", "match"),
    [
        ([("files/../escape.txt", "file", "x")], "leaves its folder"),
        ([("files/a/../../escape.txt", "file", "x")], "leaves its folder"),
        ([("files/../../outside/keep.txt", "file", "x")], "leaves its folder"),
        ([("/tmp/absolute-escape.txt", "file", "x")], "unexpected member"),
        ([("files//etc/escape.txt", "file", "x")], "leaves its folder"),
        ([("../escape.txt", "file", "x")], "unexpected member"),
        ([("files/./a.txt", "file", "x")], "leaves its folder"),
    ],
    ids=["dotdot", "nested-dotdot", "dotdot-into-outside", "absolute", "absolute-under-files",
         "dotdot-at-top", "dot"],
)
def test_paths_that_leave_the_folder_are_rejected(
    area: tuple[Path, Path], tmp_path: Path, members: list[tuple[str, str, str]], match: str
) -> None:
    dest, _ = area
    assert_rejected(archive(*members), dest, tmp_path, match)
    assert not (tmp_path / "escape.txt").exists()


def test_a_member_under_an_outward_symlink_is_rejected(
    area: tuple[Path, Path], tmp_path: Path
) -> None:
    dest, outside = area
    data = archive(
        ("files/link", "symlink", str(outside)),
        ("files/link/planted.txt", "file", "through the link"),
    )
    assert_rejected(data, dest, tmp_path, "under a link")
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]


def test_a_member_under_a_relative_symlink_to_a_parent_is_rejected(
    area: tuple[Path, Path], tmp_path: Path
) -> None:
    dest, outside = area
    data = archive(
        ("files/up", "symlink", "../../outside"),
        ("files/up/planted.txt", "file", "through the link"),
    )
    assert_rejected(data, dest, tmp_path, "under a link")
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]


def test_a_file_written_over_an_earlier_symlink_is_rejected(
    area: tuple[Path, Path], tmp_path: Path
) -> None:
    dest, outside = area
    data = archive(
        ("files/link", "symlink", str(outside / "keep.txt")),
        ("files/link", "file", "overwrite through the link"),
    )
    assert_rejected(data, dest, tmp_path, "twice")
    assert (outside / "keep.txt").read_text() == "keep\n"


def test_a_folder_over_an_earlier_symlink_is_rejected(
    area: tuple[Path, Path], tmp_path: Path
) -> None:
    dest, outside = area
    data = archive(("files/link", "symlink", str(outside)), ("files/link", "dir", ""))
    assert_rejected(data, dest, tmp_path, "clashes")


@pytest.mark.parametrize(
    ("kind", "target"), [("hardlink", "/etc/passwd"), ("hardlink", "files/a"), ("fifo", "")]
)
def test_hard_links_and_special_files_are_rejected(
    area: tuple[Path, Path], tmp_path: Path, kind: str, target: str
) -> None:
    dest, _ = area
    data = archive(("files/a", "file", "a"), ("files/special", kind, target))
    assert_rejected(data, dest, tmp_path, "hard link or a device")


def test_an_archive_without_its_lists_or_not_a_tar_is_rejected(
    area: tuple[Path, Path], tmp_path: Path
) -> None:
    dest, _ = area
    assert_rejected(archive(("files/a", "file", "a"), meta=False), dest, tmp_path, "has no")
    assert_rejected(b"this is not a tar archive" * 40, dest, tmp_path, "cannot be read")


def test_each_unpack_starts_clean(area: tuple[Path, Path]) -> None:
    dest, _ = area
    unpack_changes(archive(("files/first.txt", "file", "1")), dest)
    # An earlier attempt's copies are replaced, even where a link stood.
    (dest / CHANGED_FILES_DIR / "stale-link").symlink_to("/etc")
    unpack_changes(archive(("files/second.txt", "file", "2")), dest)
    assert sorted(p.name for p in (dest / CHANGED_FILES_DIR).iterdir()) == ["second.txt"]
    assert (dest / "metadata.json").read_text() == "{}"


def test_a_changed_files_folder_that_is_a_link_is_replaced_not_followed(
    area: tuple[Path, Path],
) -> None:
    dest, outside = area
    (dest / CHANGED_FILES_DIR).symlink_to(outside)
    (dest / PATCH_FILE).symlink_to(outside / "keep.txt")
    unpack_changes(archive(("files/a.txt", "file", "a")), dest)
    assert not (dest / CHANGED_FILES_DIR).is_symlink()
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]
    assert (outside / "keep.txt").read_text() == "keep\n"


def test_an_archive_is_read_from_a_file_but_never_through_a_link(
    area: tuple[Path, Path], tmp_path: Path
) -> None:
    dest, _ = area
    real = tmp_path / "real.tar"
    real.write_bytes(archive(("files/a.txt", "file", "a")))
    assert unpack_changes(real, dest).paths == ("x",)
    link = tmp_path / "link.tar"
    link.symlink_to(real)
    with pytest.raises(ChangeCollectionError, match="cannot be read"):
        unpack_changes(link, dest)


# ------------------------------------------------------------------------------------------------
# The command: nothing the task planted in the workspace runs


async def workspace_of(tmp_path: Path) -> tuple[Snapshot, Path]:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n", "b.txt": "b\n"})
    snapshot = await take_snapshot(repo, tmp_path / "snapshot.git")
    workspace = tmp_path / "ws"
    await create_workspace(snapshot, workspace)
    return snapshot, workspace


async def test_hooks_fsmonitor_filters_and_diff_drivers_of_the_task_never_run(
    tmp_path: Path, pcc_git_env: Path
) -> None:
    snapshot, ws = await workspace_of(tmp_path)
    ran = tmp_path / "ran"
    ran.mkdir()
    hook = f'#!/bin/sh\ntouch "{ran}/$(basename "$0")"\n'
    hooks = ws / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in ("post-index-change", "pre-commit", "reference-transaction"):
        write(hooks, name, hook).chmod(0o755)
    with (ws / ".git" / "config").open("a") as config:
        config.write(
            f'[core]\n\tfsmonitor = "touch {ran}/fsmonitor"\n\thooksPath = {hooks}\n'
            f'[filter "evil"]\n\tclean = "touch {ran}/clean; cat"\n'
            f'\tsmudge = "touch {ran}/smudge; cat"\n'
            f'\trequired = true\n[diff "evil"]\n\ttextconv = "touch {ran}/textconv; cat"\n'
            f'[diff]\n\texternal = "touch {ran}/external"\n'
        )
    # The user's own global config cannot reach in either.
    with (pcc_git_env / ".gitconfig").open("a") as config:
        config.write(f'[diff]\n\texternal = "touch {ran}/global-external"\n')
    write(ws, ".gitattributes", "* filter=evil diff=evil\n")
    write(ws, "a.txt", "a\nmore\n")

    stats = await collect_changes(ws, snapshot.commit, tmp_path / "out")

    assert sorted(p.name for p in ran.iterdir()) == []
    assert stats.paths == (".gitattributes", "a.txt")
    assert stats.lines_added == 2
    assert (tmp_path / "out" / CHANGED_FILES_DIR / "a.txt").read_text() == "a\nmore\n"


async def test_an_edit_of_the_same_size_in_the_second_of_the_checkout_is_seen(
    tmp_path: Path,
) -> None:
    # git's stat cache cannot tell such an edit from none: git re-reads a file whose time is not
    # older than the index ("racily clean"). So the collection's copy of the index keeps the
    # index's time, or, made a second later, it would vouch for the file unread.
    snapshot, ws = await workspace_of(tmp_path)
    checked_out = (ws / "a.txt").stat().st_mtime_ns
    write(ws, "a.txt", "A\n")
    os.utime(ws / "a.txt", ns=(checked_out, checked_out))
    os.utime(ws / ".git" / "index", ns=(checked_out, checked_out))
    await asyncio.sleep(1.1)

    stats = await collect_changes(
        ws, snapshot.commit, tmp_path / "out", object_dirs=snapshot.object_dirs
    )

    assert stats == ChangeStats(files_changed=1, lines_added=1, lines_removed=1, paths=("a.txt",))


async def test_a_git_file_redirect_is_not_followed(tmp_path: Path) -> None:
    snapshot, ws = await workspace_of(tmp_path)
    elsewhere = tmp_path / "elsewhere.git"
    git("init", "--quiet", "--bare", str(elsewhere), cwd=tmp_path)
    before = tree_state(elsewhere)


    shutil.rmtree(ws / ".git")
    write(ws, ".git", f"gitdir: {elsewhere}\n")
    write(ws, "b.txt", "b\nB\n")

    stats = await collect_changes(
        ws, snapshot.commit, tmp_path / "out", object_dirs=snapshot.object_dirs
    )

    assert stats == ChangeStats(files_changed=1, lines_added=1, paths=("b.txt",))
    assert tree_state(elsewhere) == before


async def test_a_workspace_whose_git_folder_is_gone_or_garbage_is_measured_from_the_base(
    tmp_path: Path,
) -> None:
    snapshot, ws = await workspace_of(tmp_path)
    (ws / ".git" / "index").write_bytes(b"DIRC garbage that is not an index")
    (ws / "a.txt").unlink()
    stats = await collect_changes(
        ws, snapshot.commit, tmp_path / "out1", object_dirs=snapshot.object_dirs
    )
    assert stats == ChangeStats(files_changed=1, lines_removed=1, deleted_paths=("a.txt",))



    shutil.rmtree(ws / ".git")
    stats = await collect_changes(
        ws, snapshot.commit, tmp_path / "out2", object_dirs=snapshot.object_dirs
    )
    assert stats == ChangeStats(files_changed=1, lines_removed=1, deleted_paths=("a.txt",))


async def test_a_base_commit_nowhere_to_be_found_fails_cleanly(tmp_path: Path) -> None:
    snapshot, ws = await workspace_of(tmp_path)


    shutil.rmtree(ws / ".git")  # its alternates were the only way to the snapshot's objects
    with pytest.raises(ChangeCollectionError, match=r"base commit \w+ is not in the object store"):
        await collect_changes(ws, snapshot.commit, tmp_path / "out")
    assert not (tmp_path / "out" / PATCH_FILE).exists()


async def test_the_command_ignores_git_variables_of_its_environment(tmp_path: Path) -> None:
    snapshot, ws = await workspace_of(tmp_path)
    write(ws, "a.txt", "changed\n")
    out = tmp_path / "out"
    argv = collect_command(
        str(ws), snapshot.commit, str(out), object_dirs=[str(d) for d in snapshot.object_dirs]
    )
    env = {
        "PATH": os.environ["PATH"],
        "GIT_DIR": str(tmp_path / "nowhere"),
        "GIT_WORK_TREE": str(tmp_path),
        "GIT_INDEX_FILE": str(tmp_path / "index"),
        "GIT_CONFIG_PARAMETERS": "'core.fsmonitor'='touch /tmp/never'",
        "GIT_EXTERNAL_DIFF": "false",
    }
    done = run_plain(argv, env)
    assert done.returncode == 0, done.stderr.decode()
    stats = unpack_changes(out / ARCHIVE_NAME, tmp_path / "task")
    assert stats == ChangeStats(files_changed=1, lines_added=1, lines_removed=1, paths=("a.txt",))


def run_plain(argv: tuple[str, ...], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, env=env, capture_output=True, check=False)


def test_a_path_with_a_newline_cannot_become_an_alternate() -> None:
    with pytest.raises(ValueError, match="newline"):
        collect_command("/ws", "abc", "/out", object_dirs=["/a\n/etc"])
