"""Workspaces and change collection, on real git repositories.

Every scenario checks the whole contract: ``changes.patch`` applies with ``git apply --binary``
to a fresh copy of the snapshot and reproduces the workspace, the counts are exact, and
``changed-files/`` holds exactly the added or modified files.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support.gitrepo import (
    SAMPLE_FILES,
    commit_all,
    git,
    git_bytes,
    init_repo,
    make_repo,
    rewritten_within_its_second,
    sleep_into_the_next_second,
    write,
)

from parallelcc_sdk.models import ChangeStats
from parallelcc_sdk.snapshot import Snapshot, take_snapshot
from parallelcc_sdk.workspace import (
    BASE_REF,
    CHANGED_FILES_DIR,
    PATCH_FILE,
    collect_changes,
    create_workspace,
    parse_name_status,
    parse_numstat,
)

# ------------------------------------------------------------------------------------------------
# Helpers


# Every test runs with a HOME of its own: no git configuration of the machine leaks in.
pytestmark = pytest.mark.usefixtures("pcc_git_env")


def untar(archive: bytes, into: Path) -> None:
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def filesystem_allows(tmp_path: Path, name: str) -> bool:
    try:
        write(tmp_path / "probe", name, "")
    except OSError:
        return False
    return True


State = dict[str, tuple[str, object]]


def state_of(root: Path, skip: set[str] | None = None) -> State:
    """Each file and symlink under ``root`` outside ``.git``: bytes and exec bit, or target."""
    result: State = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root and ".git" in dirnames:
            dirnames.remove(".git")
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if skip and rel in skip:
                continue
            if path.is_symlink():
                result[rel] = ("link", os.readlink(path))
            else:
                executable = bool(path.stat().st_mode & stat.S_IXUSR)
                result[rel] = ("exec" if executable else "file", path.read_bytes())
    return result


BASE = SAMPLE_FILES


async def setup(
    tmp_path: Path, files: dict[str, str | bytes] | None = None
) -> tuple[Snapshot, Path]:
    """A user repository with ``files`` committed, its snapshot, and a workspace checked out."""
    repo = init_repo(tmp_path / "repo", BASE if files is None else files)
    if (repo / "script.sh").exists():
        (repo / "script.sh").chmod(0o755)
    commit_all(repo, allow_empty=True)
    snapshot = await take_snapshot(repo, tmp_path / "snapshot")
    workspace = tmp_path / "ws"
    await create_workspace(snapshot, workspace)
    return snapshot, workspace


async def collect_and_verify(
    snapshot: Snapshot, workspace: Path, dest: Path, *, not_collected: set[str] | None = None
) -> ChangeStats:
    """Runs collect_changes, then checks the patch and the copies against the workspace."""
    stats = await collect_changes(workspace, snapshot.commit, dest)
    patch = dest / PATCH_FILE
    assert patch.is_file()

    # A fresh copy of the snapshot, made without the code under test.
    fresh = dest.parent / f"fresh-{dest.name}"
    fresh.mkdir()
    archive = git_bytes(
        "--git-dir",
        str(snapshot.git_dir),
        "-c",
        "core.autocrlf=false",
        "archive",
        "--format=tar",
        snapshot.commit,
        cwd=dest.parent,
    )
    untar(archive, fresh)
    git("init", "--quiet", cwd=fresh)
    if patch.stat().st_size:
        git("apply", "--binary", "--whitespace=nowarn", str(patch), cwd=fresh)
    assert state_of(fresh) == state_of(workspace, skip=not_collected), (
        "the patch applied to the snapshot does not reproduce the workspace"
    )

    ws_state = state_of(workspace)
    copies = state_of(dest / CHANGED_FILES_DIR) if (dest / CHANGED_FILES_DIR).exists() else {}
    assert copies == {path: ws_state[path] for path in stats.paths}
    assert stats.files_changed == len(stats.paths) + len(stats.deleted_paths)
    assert len(set(stats.paths)) == len(stats.paths)
    assert not set(stats.paths) & set(stats.deleted_paths)
    return stats


# ------------------------------------------------------------------------------------------------
# create_workspace


async def test_workspace_is_a_checkout_of_the_snapshot_on_its_own_branch(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", BASE)
    (repo / "script.sh").chmod(0o755)
    (repo / "link").symlink_to("src/d.py")
    commit_all(repo)
    write(repo, "a.txt", "uncommitted edit\n")
    write(repo, "new/untracked.txt", "untracked\n")
    (repo / "b.txt").unlink()
    expected = state_of(repo)
    snapshot = await take_snapshot(repo, tmp_path / "snapshot")
    snapshot_before = {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in snapshot.git_dir.rglob("*")
        if p.is_file()
    }

    workspace = tmp_path / "ws"
    await create_workspace(snapshot, workspace)

    assert state_of(workspace) == expected
    assert state_of(workspace)["script.sh"][0] == "exec"
    assert git("symbolic-ref", "HEAD", cwd=workspace).strip() == "refs/heads/parallelcc/task"
    assert git("rev-parse", "HEAD", cwd=workspace).strip() == snapshot.commit
    assert git("rev-parse", BASE_REF, cwd=workspace).strip() == snapshot.commit
    assert git("status", "--porcelain", "--untracked-files=all", cwd=workspace) == ""
    # The workspace borrows the snapshot's objects instead of copying them.
    alternates = (workspace / ".git/objects/info/alternates").read_text().splitlines()
    assert alternates == [str(d) for d in snapshot.object_dirs]
    assert not [
        p
        for p in (workspace / ".git/objects").rglob("*")
        if p.is_file() and p.parent.name not in ("info", "pack")
    ]

    # Work and commits in the workspace never write into the snapshot.
    write(workspace, "a.txt", "agent edit\n")
    git("commit", "--quiet", "-am", "agent", cwd=workspace)
    await collect_changes(workspace, snapshot.commit, tmp_path / "out")
    snapshot_after = {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in snapshot.git_dir.rglob("*")
        if p.is_file()
    }
    assert snapshot_after == snapshot_before


async def test_workspace_checkout_keeps_bytes_whatever_core_autocrlf_says(
    tmp_path: Path, pcc_git_env: Path
) -> None:
    repo = make_repo(
        tmp_path / "repo", {"unix.txt": b"one\ntwo\n", "windows.txt": b"one\r\ntwo\r\n"}
    )
    snapshot = await take_snapshot(repo, tmp_path / "snapshot")
    with (pcc_git_env / ".gitconfig").open("a") as config:
        config.write("[core]\n\tautocrlf = true\n")
    workspace = tmp_path / "ws"

    await create_workspace(snapshot, workspace)

    assert (workspace / "unix.txt").read_bytes() == b"one\ntwo\n"
    assert (workspace / "windows.txt").read_bytes() == b"one\r\ntwo\r\n"
    stats = await collect_and_verify(snapshot, workspace, tmp_path / "out")
    assert stats == ChangeStats()


# ------------------------------------------------------------------------------------------------
# collect_changes


async def test_no_changes_gives_an_empty_patch_and_zeros(tmp_path: Path) -> None:
    snapshot, workspace = await setup(tmp_path)
    stats = await collect_and_verify(snapshot, workspace, tmp_path / "out")
    assert stats == ChangeStats(
        files_changed=0, lines_added=0, lines_removed=0, paths=(), deleted_paths=()
    )
    assert (tmp_path / "out" / PATCH_FILE).read_bytes() == b""


async def test_edit_of_the_first_file_in_sorted_order_is_counted_with_the_others(
    tmp_path: Path,
) -> None:
    snapshot, workspace = await setup(tmp_path)
    write(workspace, "a.txt", "a1\nA2\na3\nA4\n")  # +2 -1: the first path, which the old tool lost
    write(workspace, "c.txt", "c1\nc2\n")  # +1
    write(workspace, "src/d.py", "x = 1\n")  # -1
    stats = await collect_and_verify(snapshot, workspace, tmp_path / "out")
    assert stats == ChangeStats(
        files_changed=3,
        lines_added=3,
        lines_removed=2,
        paths=("a.txt", "c.txt", "src/d.py"),
        deleted_paths=(),
    )


async def test_new_files_in_new_nested_folders(tmp_path: Path) -> None:
    snapshot, workspace = await setup(tmp_path)
    write(workspace, "new/deep/er/x.txt", "1\n2\n3\n")
    write(workspace, "new/y.md", "y\n")
    write(workspace, "src/util/z.py", "z\n")
    write(workspace, "empty.txt", "")
    stats = await collect_and_verify(snapshot, workspace, tmp_path / "out")
    assert stats == ChangeStats(
        files_changed=4,
        lines_added=5,
        lines_removed=0,
        paths=("empty.txt", "new/deep/er/x.txt", "new/y.md", "src/util/z.py"),
        deleted_paths=(),
    )


async def test_deleted_files_and_a_deleted_folder(tmp_path: Path) -> None:
    snapshot, workspace = await setup(tmp_path)
    (workspace / "b.txt").unlink()
    shutil.rmtree(workspace / "pkg")
    stats = await collect_and_verify(snapshot, workspace, tmp_path / "out")
    assert stats == ChangeStats(
        files_changed=3,
        lines_added=0,
        lines_removed=7,
        paths=(),
        deleted_paths=("b.txt", "pkg/one.py", "pkg/sub/two.py"),
    )
    assert not (tmp_path / "out" / CHANGED_FILES_DIR / "b.txt").exists()


async def test_deletions_mixed_with_edits_keep_every_entry(tmp_path: Path) -> None:
    snapshot, workspace = await setup(tmp_path)
    (workspace / "a.txt").unlink()  # the first entry is a deletion
    write(workspace, "b.txt", "b1\nb2\nb3\n")
    (workspace / "c.txt").unlink()
    write(workspace, "zzz.txt", "last\n")
    stats = await collect_and_verify(snapshot, workspace, tmp_path / "out")
    assert stats == ChangeStats(
        files_changed=4,
        lines_added=2,
        lines_removed=4,
        paths=("b.txt", "zzz.txt"),
        deleted_paths=("a.txt", "c.txt"),
    )


async def test_renames_are_counted_once(tmp_path: Path) -> None:
    snapshot, workspace = await setup(tmp_path)
    (workspace / "docs").mkdir()
    (workspace / "doc.md").rename(workspace / "docs" / "guide.md")  # pure rename
    (workspace / "a.txt").unlink()
    write(workspace, "renamed.txt", "a1\na2\nA3\n")  # rename with an edit: +1 -1
    stats = await collect_and_verify(snapshot, workspace, tmp_path / "out")
    assert stats == ChangeStats(
        files_changed=2,
        lines_added=1,
        lines_removed=1,
        paths=("docs/guide.md", "renamed.txt"),
        deleted_paths=(),
    )
    patch = (tmp_path / "out" / PATCH_FILE).read_text()
    assert "rename from doc.md\nrename to docs/guide.md\n" in patch
    assert "rename from a.txt\nrename to renamed.txt\n" in patch


async def test_binary_files_added_and_modified_count_no_lines(tmp_path: Path) -> None:
    snapshot, workspace = await setup(tmp_path)
    blob = bytearray(bytes(range(256)) * 4)  # img.bin as committed
    blob[10:20] = b"\xff" * 10
    write(workspace, "img.bin", bytes(blob) + b"\0tail")
    write(workspace, "assets/photo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(200)))
    write(workspace, "c.txt", "c1\nc2\n")
    stats = await collect_and_verify(snapshot, workspace, tmp_path / "out")
    assert stats == ChangeStats(
        files_changed=3,
        lines_added=1,
        lines_removed=0,
        paths=("assets/photo.png", "c.txt", "img.bin"),
        deleted_paths=(),
    )
    assert b"GIT binary patch" in (tmp_path / "out" / PATCH_FILE).read_bytes()


async def test_mode_change_only_is_a_changed_file_with_no_lines(tmp_path: Path) -> None:
    snapshot, workspace = await setup(tmp_path)
    (workspace / "c.txt").chmod(0o755)
    (workspace / "script.sh").chmod(0o644)
    stats = await collect_and_verify(snapshot, workspace, tmp_path / "out")
    assert stats == ChangeStats(
        files_changed=2,
        lines_added=0,
        lines_removed=0,
        paths=("c.txt", "script.sh"),
        deleted_paths=(),
    )
    patch = (tmp_path / "out" / PATCH_FILE).read_text()
    assert "old mode 100644\nnew mode 100755\n" in patch
    assert "old mode 100755\nnew mode 100644\n" in patch
    assert os.access(tmp_path / "out" / CHANGED_FILES_DIR / "c.txt", os.X_OK)


async def test_symlinks_added_and_a_file_replaced_by_a_symlink(tmp_path: Path) -> None:
    snapshot, workspace = await setup(tmp_path)
    (workspace / "latest").symlink_to("src/d.py")  # +1: a link's content is its target
    (workspace / "c.txt").unlink()
    (workspace / "c.txt").symlink_to("a.txt")  # type change: -1 +1, one file
    (workspace / "srcdir").symlink_to("src", target_is_directory=True)  # +1
    stats = await collect_and_verify(snapshot, workspace, tmp_path / "out")
    assert stats == ChangeStats(
        files_changed=3,
        lines_added=3,
        lines_removed=1,
        paths=("c.txt", "latest", "srcdir"),
        deleted_paths=(),
    )
    copies = tmp_path / "out" / CHANGED_FILES_DIR
    assert os.readlink(copies / "latest") == "src/d.py"
    assert os.readlink(copies / "srcdir") == "src"


async def test_a_file_replaced_by_a_folder_of_the_same_name(tmp_path: Path) -> None:
    snapshot, workspace = await setup(tmp_path)
    (workspace / "c.txt").unlink()
    write(workspace, "c.txt/inside.txt", "inside\n")
    stats = await collect_and_verify(snapshot, workspace, tmp_path / "out")
    assert stats == ChangeStats(
        files_changed=2,
        lines_added=1,
        lines_removed=1,
        paths=("c.txt/inside.txt",),
        deleted_paths=("c.txt",),
    )


async def test_unusual_path_names(tmp_path: Path) -> None:
    base = ["with space.txt", 'dq"uote.txt', "sq'uote.txt", "é.txt", "-dash.txt"]
    if filesystem_allows(tmp_path, "tab\tname.txt"):
        base.append("tab\tname.txt")
    new = ["日本/語.txt", "-new dash.txt", 'new "quoted" dir/it\'s.txt', "back\\slash.txt"]
    if filesystem_allows(tmp_path, "new\nline.txt"):
        new.append("new\nline.txt")
    snapshot, workspace = await setup(tmp_path, {"plain.txt": "p\n", **{n: f"{n}\n" for n in base}})
    edited = [n for n in base if n not in ("sq'uote.txt", "é.txt")]
    for name in edited:
        write(workspace, name, f"{name}\nmore\n")  # +1 each
    (workspace / "sq'uote.txt").unlink()  # -1
    write(workspace, "日本/é moved.txt", "é.txt\n")  # a pure rename of é.txt
    (workspace / "é.txt").unlink()
    for name in new:
        write(workspace, name, "new\n")  # +1 each

    stats = await collect_and_verify(snapshot, workspace, tmp_path / "out")

    assert stats.deleted_paths == ("sq'uote.txt",)
    assert sorted(stats.paths) == sorted([*edited, "日本/é moved.txt", *new])
    assert stats.files_changed == len(edited) + 1 + len(new) + 1
    assert stats.lines_added == len(edited) + len(new)
    assert stats.lines_removed == 1


async def test_commits_made_by_the_agent_count_with_uncommitted_work(tmp_path: Path) -> None:
    snapshot, workspace = await setup(tmp_path)
    write(workspace, "a.txt", "a1\na2\na3\na4\n")  # +1, committed
    git("commit", "--quiet", "-am", "first agent commit", cwd=workspace)
    git("rm", "--quiet", "b.txt", cwd=workspace)  # -2, committed
    write(workspace, "committed-new.txt", "new\n")  # +1, committed
    git("add", "committed-new.txt", cwd=workspace)
    git("commit", "--quiet", "-m", "second agent commit", cwd=workspace)
    write(workspace, "c.txt", "C1\n")  # +1 -1, staged only
    git("add", "c.txt", cwd=workspace)
    write(workspace, "uncommitted.txt", "u\n")  # +1, untracked
    write(workspace, "committed-new.txt", "new\nnewer\n")  # +1 more, on top of a commit
    assert git("rev-list", "--count", f"{snapshot.commit}..HEAD", cwd=workspace).strip() == "2"

    stats = await collect_and_verify(snapshot, workspace, tmp_path / "out")

    assert stats == ChangeStats(
        files_changed=5,
        lines_added=5,
        lines_removed=3,
        paths=("a.txt", "c.txt", "committed-new.txt", "uncommitted.txt"),
        deleted_paths=("b.txt",),
    )


async def test_changes_undone_by_a_later_commit_are_not_counted(tmp_path: Path) -> None:
    snapshot, workspace = await setup(tmp_path)
    write(workspace, "a.txt", "temporary\n")
    git("commit", "--quiet", "-am", "try something", cwd=workspace)
    write(workspace, "a.txt", BASE["a.txt"])
    git("commit", "--quiet", "-am", "revert it", cwd=workspace)
    stats = await collect_and_verify(snapshot, workspace, tmp_path / "out")
    assert stats == ChangeStats()


async def test_new_files_hidden_by_the_workspace_gitignore_are_not_collected(
    tmp_path: Path,
) -> None:
    snapshot, workspace = await setup(tmp_path, {**BASE, ".gitignore": "*.log\nbuild/\n"})
    write(workspace, "debug.log", "ignored\n")
    write(workspace, "build/out.bin", b"\0ignored\n")
    write(workspace, ".gitignore", "*.log\nbuild/\ntmp/\n")  # +1: the agent adds a rule
    write(workspace, "tmp/scratch.txt", "ignored by the new rule\n")
    write(workspace, "kept.txt", "collected\n")  # +1
    stats = await collect_and_verify(
        snapshot,
        workspace,
        tmp_path / "out",
        not_collected={"debug.log", "build/out.bin", "tmp/scratch.txt"},
    )
    assert stats == ChangeStats(
        files_changed=2,
        lines_added=2,
        lines_removed=0,
        paths=(".gitignore", "kept.txt"),
        deleted_paths=(),
    )
    assert not (tmp_path / "out" / CHANGED_FILES_DIR / "debug.log").exists()


async def test_patch_is_standard_whatever_the_users_diff_config(
    tmp_path: Path, pcc_git_env: Path
) -> None:
    with (pcc_git_env / ".gitconfig").open("a") as config:
        config.write(
            "[diff]\n\tnoprefix = true\n\tmnemonicPrefix = true\n\trenames = copies\n"
            "\texternal = false\n\tcontext = 0\n"
            "[color]\n\tui = always\n[core]\n\tquotePath = true\n"
        )
    snapshot, workspace = await setup(tmp_path)
    write(workspace, "a.txt", "a1\nA2\na3\n")
    write(workspace, "é new.txt", "new\n")
    stats = await collect_and_verify(snapshot, workspace, tmp_path / "out")
    assert stats == ChangeStats(
        files_changed=2,
        lines_added=2,
        lines_removed=1,
        paths=("a.txt", "é new.txt"),
        deleted_paths=(),
    )
    patch = (tmp_path / "out" / PATCH_FILE).read_bytes()
    assert patch.startswith(b"diff --git a/a.txt b/a.txt\n")
    assert b"\x1b[" not in patch


async def test_collect_changes_works_when_the_user_rejects_crlf_conversions(
    tmp_path: Path, pcc_git_env: Path
) -> None:
    with (pcc_git_env / ".gitconfig").open("a") as config:
        config.write("[core]\n\tsafecrlf = true\n")
    snapshot, workspace = await setup(tmp_path, {".gitattributes": "* text=auto\n", "a.txt": "a\n"})
    write(workspace, "windows.txt", b"one\r\ntwo\r\n")
    stats = await collect_changes(workspace, snapshot.commit, tmp_path / "out")
    assert stats.paths == ("windows.txt",)
    assert stats.lines_added == 2


async def test_collect_changes_into_an_existing_folder(tmp_path: Path) -> None:
    snapshot, workspace = await setup(tmp_path)
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "metadata.json").write_text("{}")
    write(workspace, "c.txt", "c1\nc2\n")
    stats = await collect_and_verify(snapshot, workspace, dest)
    assert stats.paths == ("c.txt",)
    assert (dest / "metadata.json").read_text() == "{}"


async def test_an_edit_of_the_same_size_in_the_second_of_the_checkout_is_collected(
    tmp_path: Path,
) -> None:
    """git trusts a file's stat data (to the second) only when the file is older than the index;
    a copy of the workspace's index dated later would hide this edit."""
    for attempt in range(20):
        snapshot, workspace = await setup(tmp_path / str(attempt), {"d.py": "x = 1\n"})
        if rewritten_within_its_second(workspace, "d.py", "x = 2\n"):
            break
    else:
        pytest.fail("could not edit a file within the second it was checked out in")
    # Collecting in a later second: a copy of the index made now would be newer than the edit.
    await sleep_into_the_next_second()
    stats = await collect_changes(workspace, snapshot.commit, tmp_path / "out")
    assert stats.paths == ("d.py",)


def fake_virtualenv(root: Path, megabytes: int = 3) -> int:
    """A tree like ``python -m venv`` makes, of about ``megabytes``; returns its file bytes."""
    size = 0
    for i in range(megabytes * 4):
        data = f"# module {i}\n".encode() * (256 * 1024 // 12)
        write(root, f".venv/lib/python3.11/site-packages/pkg{i % 7}/m{i}.py", data)
        size += len(data)
    write(root, ".venv/pyvenv.cfg", "home = /usr/bin\n")
    (root / ".venv/bin").mkdir()
    (root / ".venv/bin/python").symlink_to("/usr/bin/python3")
    return size


async def test_what_is_never_source_is_left_out_and_named_unless_the_snapshot_tracks_it(
    tmp_path: Path,
) -> None:
    tracked_cache = "src/__pycache__/kept.cpython-311.pyc"
    snapshot, workspace = await setup(
        tmp_path, {**BASE, tracked_cache: b"\0old", "web/node_modules/vendored.js": "v1\n"}
    )
    venv_bytes = fake_virtualenv(workspace)
    write(workspace, "src/d.py", "x = 1\ny = 3\n")  # the task's real edit
    write(workspace, tracked_cache, b"\0new")  # tracked by the snapshot: a change
    write(workspace, "web/node_modules/vendored.js", "v2\n")  # tracked: a change
    write(workspace, "web/node_modules/new.js", "n\n")  # new in a tracked folder: left out
    write(workspace, "src/__pycache__/new.cpython-311.pyc", b"\0")
    write(workspace, "pkg/__pycache__/one.cpython-311.pyc", b"\0")
    write(workspace, "stray.pyc", b"\0")
    for cache in (".pytest_cache", ".mypy_cache", ".ruff_cache", "frontend/node_modules/x"):
        write(workspace, f"{cache}/CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n")
    # An agent that stages and commits everything does not get the virtualenv into its patch.
    git("add", "--all", "--force", cwd=workspace)
    git("commit", "--quiet", "-m", "agent commits everything", cwd=workspace)

    left_out = {
        path
        for path in state_of(workspace)
        if path.startswith((".venv/", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/"))
        or path.endswith(("new.js", "x/CACHEDIR.TAG", "new.cpython-311.pyc", "one.cpython-311.pyc"))
        or path == "stray.pyc"
    }
    stats = await collect_and_verify(snapshot, workspace, tmp_path / "out", not_collected=left_out)

    assert stats.paths == (tracked_cache, "src/d.py", "web/node_modules/vendored.js")
    assert stats.excluded_paths == (
        ".mypy_cache/",
        ".pytest_cache/",
        ".ruff_cache/",
        ".venv/",
        "frontend/",  # a new folder that holds only node_modules/ is one entry
        "pkg/__pycache__/",
        "src/__pycache__/new.cpython-311.pyc",
        "stray.pyc",
        "web/node_modules/new.js",
    )
    assert stats.excluded_bytes is not None
    assert venv_bytes < stats.excluded_bytes < venv_bytes + 200_000
    patch = (tmp_path / "out" / PATCH_FILE).read_bytes()
    assert b".venv" not in patch and b"stray.pyc" not in patch


async def test_a_real_virtualenv_made_by_the_task_stays_out_of_its_changes(tmp_path: Path) -> None:
    snapshot, workspace = await setup(tmp_path)
    venv = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venv", "--without-pip", ".venv", cwd=workspace
    )
    assert await venv.wait() == 0
    write(workspace, "a.txt", "a1\na2\na3\na4\n")
    stats = await collect_and_verify(
        snapshot,
        workspace,
        tmp_path / "out",
        not_collected={p for p in state_of(workspace) if p.startswith(".venv/")},
    )
    assert (stats.paths, stats.lines_added, stats.excluded_paths) == (("a.txt",), 1, (".venv/",))
    assert stats.excluded_bytes is not None and stats.excluded_bytes > 0


async def test_exclude_changes_replaces_the_never_source_patterns(tmp_path: Path) -> None:
    snapshot, workspace = await setup(tmp_path)
    fake_virtualenv(workspace, megabytes=1)
    write(workspace, "out.log", "log\n")
    kept = await collect_changes(
        workspace, snapshot.commit, tmp_path / "all", exclude_changes=()
    )
    assert ".venv/pyvenv.cfg" in kept.paths and "out.log" in kept.paths
    assert (kept.excluded_paths, kept.excluded_bytes) == ((), 0)
    logs = await collect_changes(
        workspace, snapshot.commit, tmp_path / "logs", exclude_changes=["*.log"]
    )
    assert ".venv/pyvenv.cfg" in logs.paths and logs.excluded_paths == ("out.log",)
    assert logs.excluded_bytes == 4


async def test_nothing_left_out_measures_zero(tmp_path: Path) -> None:
    snapshot, workspace = await setup(tmp_path)
    write(workspace, "a.txt", "changed\n")
    stats = await collect_changes(workspace, snapshot.commit, tmp_path / "out")
    assert (stats.excluded_paths, stats.excluded_bytes) == ((), 0)


# ------------------------------------------------------------------------------------------------
# parse_numstat / parse_name_status on literal `git diff -z` output


def test_parse_numstat_empty() -> None:
    assert parse_numstat(b"") == (0, 0)


def test_parse_numstat_sums_plain_entries() -> None:
    assert parse_numstat(b"3\t1\ta.txt\x005\t0\tdir/b c.txt\x000\t7\tgone.txt\x00") == (8, 8)


def test_parse_numstat_binary_entries_count_no_lines() -> None:
    assert parse_numstat(b"-\t-\timg.png\x001\t2\tx.txt\x00-\t-\tnew.bin\x00") == (1, 2)


def test_parse_numstat_rename_paths_are_not_read_as_entries() -> None:
    # With -z a rename is "added\tremoved\t\0old\0new\0"; its paths may look like entries.
    raw = b"2\t1\t\x009\t9\told\x0050\t50\tnew\x004\t0\tz.txt\x00"
    assert parse_numstat(raw) == (6, 1)


def test_parse_numstat_path_with_tabs() -> None:
    assert parse_numstat(b"1\t0\ttab\tin\tname.txt\x002\t2\tnext\x00") == (3, 2)


def test_parse_numstat_rename_of_a_binary_file() -> None:
    assert parse_numstat(b"-\t-\t\x00a.bin\x00b.bin\x001\t1\tc\x00") == (1, 1)


def test_parse_name_status_empty() -> None:
    assert parse_name_status(b"") == ([], [])


def test_parse_name_status_every_kind_of_entry() -> None:
    raw = (
        b"M\x00a.txt\x00"
        b"D\x00b.txt\x00"
        b"A\x00new dir/c.txt\x00"
        b"R100\x00old.txt\x00moved/new.txt\x00"
        b"C075\x00src.txt\x00copy.txt\x00"
        b"T\x00link\x00"
        b"M\x00z.txt\x00"
    )
    present, deleted = parse_name_status(raw)
    assert present == ["a.txt", "new dir/c.txt", "moved/new.txt", "copy.txt", "link", "z.txt"]
    assert deleted == ["b.txt"]


def test_parse_name_status_paths_that_look_like_statuses() -> None:
    raw = b"R090\x00M\x00D\x00D\x00M\x00A\x00R100\x00"
    present, deleted = parse_name_status(raw)
    assert present == ["D", "R100"]
    assert deleted == ["M"]


def test_parse_name_status_keeps_quotes_newlines_and_undecodable_bytes() -> None:
    raw = (
        b'M\x00"quoted".txt\x00A\x00new\nline.txt\x00D\x00bad\xff.txt\x00A\x00\xe6\x97\xa5.txt\x00'
    )
    present, deleted = parse_name_status(raw)
    assert present == ['"quoted".txt', "new\nline.txt", "日.txt"]
    assert deleted == [os.fsdecode(b"bad\xff.txt")]
    assert os.fsencode(deleted[0]) == b"bad\xff.txt"


async def test_parsers_agree_with_real_git_output(tmp_path: Path) -> None:
    snapshot, workspace = await setup(tmp_path)
    (workspace / "doc.md").rename(workspace / "moved.md")
    write(workspace, "a.txt", "a1\n")
    (workspace / "b.txt").unlink()
    git("add", "--all", cwd=workspace)
    args = ("diff", "--cached", "--find-renames", snapshot.commit)
    numstat = git_bytes(*args, "--numstat", "-z", cwd=workspace)
    name_status = git_bytes(*args, "--name-status", "-z", cwd=workspace)
    assert b"R100\x00doc.md\x00moved.md\x00" in name_status
    assert parse_numstat(numstat) == (0, 4)
    assert parse_name_status(name_status) == (["a.txt", "moved.md"], ["b.txt"])
