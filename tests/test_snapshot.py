"""The run's snapshot, on real git repositories: what goes in, what stays out, and that the user's
repository is left exactly as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.gitrepo import (
    git,
    make_repo,
    rewritten_within_its_second,
    sleep_into_the_next_second,
    write,
)

from parallelcc_sdk.errors import RepositoryError, SnapshotError
from parallelcc_sdk.snapshot import Snapshot, resolve_repo, take_snapshot

# ------------------------------------------------------------------------------------------------
# Helpers


# Every test runs with a HOME of its own: no git configuration of the machine leaks in.
pytestmark = pytest.mark.usefixtures("pcc_git_env")


def tree_of(snapshot: Snapshot) -> dict[str, tuple[str, bytes]]:
    """``{path: (mode, content)}`` of every file in the snapshot commit."""
    listing = subprocess.run(
        ["git", "--git-dir", str(snapshot.git_dir), "ls-tree", "-r", "-z", snapshot.commit],
        capture_output=True,
        check=True,
    ).stdout
    result: dict[str, tuple[str, bytes]] = {}
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, path = entry.split(b"\t", 1)
        mode, _kind, oid = meta.decode().split()
        content = subprocess.run(
            ["git", "--git-dir", str(snapshot.git_dir), "cat-file", "blob", oid],
            capture_output=True,
            check=True,
        ).stdout
        result[os.fsdecode(path)] = (mode, content)
    return result


def has_object(repo: Path, oid: str) -> bool:
    done = subprocess.run(
        ["git", "cat-file", "-e", oid], cwd=repo, capture_output=True, check=False
    )
    return done.returncode == 0


def files_of(snapshot: Snapshot) -> dict[str, bytes]:
    return {path: content for path, (_mode, content) in tree_of(snapshot).items()}


def parents_of(snapshot: Snapshot) -> list[str]:
    out = subprocess.run(
        [
            "git",
            "--git-dir",
            str(snapshot.git_dir),
            "rev-list",
            "--parents",
            "-n",
            "1",
            snapshot.commit,
        ],
        capture_output=True,
        check=True,
    ).stdout.decode()
    return out.split()[1:]


@dataclass(frozen=True)
class Fingerprint:
    files: dict[str, tuple[object, ...]]
    git_state: dict[str, str]


def fingerprint(repo: Path) -> Fingerprint:
    """Every file and folder under ``repo`` (work tree and .git) with its bytes, mode and symlink
    target, plus what git itself reports about refs, stashes, reflogs and status.

    Modification times are compared too, except where git refreshes them by design without
    changing a byte: objects found through an alternate (protected from pruning that way) and a
    split index's shared file (touched by every command that reads the index, `git status` too).
    """
    entries: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(repo):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(repo).as_posix()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                entries[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                entries[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                refreshed = "/objects/" in f"/{rel}" or name.startswith("sharedindex.")
                mtime = None if refreshed else st.st_mtime_ns
                entries[rel] = ("file", stat.S_IMODE(st.st_mode), digest, mtime)
    return Fingerprint(
        entries,
        {
            "refs": git("for-each-ref", "--format=%(refname) %(objectname)", cwd=repo),
            "stash": git("stash", "list", "--format=%H %gs", cwd=repo),
            "reflog": git("reflog", "--all", "--format=%H %gs", cwd=repo),
            # --no-optional-locks: status must not refresh the index it is fingerprinting.
            "status": git(
                "--no-optional-locks",
                "status",
                "--porcelain=v2",
                "-z",
                "--untracked-files=all",
                "--ignored",
                cwd=repo,
            ),
        },
    )


def assert_unchanged(before: Fingerprint, after: Fingerprint) -> None:
    old, new = before.files, after.files
    assert sorted(set(new) - set(old)) == [], "files appeared in the user's repository"
    assert sorted(set(old) - set(new)) == [], "files vanished from the user's repository"
    changed = sorted(k for k in old if old[k] != new[k])
    assert changed == [], "files changed in the user's repository"
    assert before.git_state == after.git_state


# ------------------------------------------------------------------------------------------------
# resolve_repo


def test_resolve_repo_returns_the_top_level_for_the_top_level_and_a_subdirectory(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo", {"a/b/c.txt": "x\n"})
    assert resolve_repo(repo) == repo.resolve()
    assert resolve_repo(repo / "a" / "b") == repo.resolve()
    assert resolve_repo(str(repo / "a")) == repo.resolve()


def test_resolve_repo_expands_the_home_folder(tmp_path: Path, pcc_git_env: Path) -> None:
    repo = make_repo(pcc_git_env / "project", {"f": "x\n"})
    assert resolve_repo("~/project") == repo.resolve()


def test_resolve_repo_resolves_a_symlinked_path(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"f": "x\n"})
    (tmp_path / "alias").symlink_to(repo)
    assert resolve_repo(tmp_path / "alias") == repo.resolve()


def test_resolve_repo_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(RepositoryError, match="does not exist") as info:
        resolve_repo(missing)
    assert str(missing) in str(info.value)


def test_resolve_repo_file_path(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"f.txt": "x\n"})
    with pytest.raises(RepositoryError, match="is a file") as info:
        resolve_repo(repo / "f.txt")
    assert "f.txt" in str(info.value)


def test_resolve_repo_folder_that_is_not_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    if git("rev-parse", "--git-dir", cwd=plain, check=False):
        pytest.skip("the temporary folder is itself inside a git repository")
    with pytest.raises(RepositoryError, match="not a git repository") as info:
        resolve_repo(plain)
    assert str(plain) in str(info.value)
    assert "git init" in str(info.value)


@pytest.mark.parametrize("where", ["bare", "dot-git"])
def test_resolve_repo_without_a_working_tree(tmp_path: Path, where: str) -> None:
    if where == "bare":
        target = tmp_path / "bare.git"
        git("init", "--quiet", "--bare", str(target), cwd=tmp_path)
    else:
        target = make_repo(tmp_path / "repo", {"f": "x\n"}) / ".git"
    with pytest.raises(RepositoryError, match="no working tree") as info:
        resolve_repo(target)
    assert str(target) in str(info.value)


# ------------------------------------------------------------------------------------------------
# What the snapshot holds


async def test_snapshot_holds_head_plus_every_uncommitted_change_but_not_ignored_files(
    tmp_path: Path,
) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {
            ".gitignore": "*.log\nbuild/\n",
            "a.txt": "a\n",
            "b.txt": "b\n",
            "c.txt": "c\n",
            "d.txt": "d\n",
            "e.txt": "e\n",
            "src/mod.py": "print('hi')\n",
        },
    )
    write(repo, "keep/forced.log", "tracked although ignored\n")
    git("add", "--force", "keep/forced.log", cwd=repo)
    git("commit", "--quiet", "-m", "force-add an ignored file", cwd=repo)
    write(repo, ".git/info/exclude", "# local\nsecret.env\nlocal-only/\n")
    head = git("rev-parse", "HEAD", cwd=repo).strip()
    write(repo, "a.txt", "a edited, not staged\n")  # the first file: the old tool dropped it
    write(repo, "b.txt", "b staged\n")
    git("add", "b.txt", cwd=repo)
    write(repo, "c.txt", "c staged\n")
    git("add", "c.txt", cwd=repo)
    write(repo, "c.txt", "c staged, then edited again\n")  # the working tree wins
    (repo / "d.txt").unlink()  # deleted, not staged
    git("rm", "--quiet", "e.txt", cwd=repo)  # deleted and staged
    write(repo, "staged-new.txt", "new and staged\n")
    git("add", "staged-new.txt", cwd=repo)
    write(repo, "keep/forced.log", "tracked although ignored, edited\n")
    write(repo, "untracked/deep/new file.txt", "untracked\n")
    write(repo, "run.log", "ignored by .gitignore\n")
    write(repo, "build/out.bin", b"\0ignored folder\n")
    write(repo, "secret.env", "TOKEN=ignored by info/exclude\n")
    write(repo, "local-only/notes.txt", "ignored by info/exclude\n")
    (repo / "tool.sh").write_text("#!/bin/sh\n")
    (repo / "tool.sh").chmod(0o755)
    (repo / "link").symlink_to("a.txt")

    snap = await take_snapshot(repo, tmp_path / "snap")

    assert snap.repo == repo
    assert snap.head == head
    assert snap.git_dir == tmp_path / "snap"
    assert parents_of(snap) == [head]
    tree = tree_of(snap)
    assert {path: content for path, (_m, content) in tree.items()} == {
        ".gitignore": b"*.log\nbuild/\n",
        "a.txt": b"a edited, not staged\n",
        "b.txt": b"b staged\n",
        "c.txt": b"c staged, then edited again\n",
        "keep/forced.log": b"tracked although ignored, edited\n",
        "link": b"a.txt",
        "src/mod.py": b"print('hi')\n",
        "staged-new.txt": b"new and staged\n",
        "tool.sh": b"#!/bin/sh\n",
        "untracked/deep/new file.txt": b"untracked\n",
    }
    assert tree["tool.sh"][0] == "100755"
    assert tree["link"][0] == "120000"
    assert tree["a.txt"][0] == "100644"


async def test_snapshot_objects_stay_out_of_the_user_repository(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    write(repo, "a.txt", "a brand new content 8d3f\n")
    write(repo, "new.txt", "another new blob 51c2\n")
    snap = await take_snapshot(repo, tmp_path / "snap")
    for obj in (snap.commit, f"{snap.commit}^{{tree}}", f"{snap.commit}:new.txt"):
        resolved = git("--git-dir", str(snap.git_dir), "rev-parse", obj, cwd=tmp_path).strip()
        assert not has_object(repo, resolved), f"{obj} was written into the user's object store"
    # The snapshot borrows the user's objects instead of copying them.
    assert snap.object_dirs == (snap.git_dir / "objects", (repo / ".git" / "objects").resolve())


async def test_user_repository_is_byte_identical_after_a_snapshot(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "1\n", "b.txt": "2\n", "dir/c.txt": "3\n"})
    git("checkout", "--quiet", "-b", "feature", cwd=repo)
    write(repo, "feature.txt", "feature\n")
    git("add", "feature.txt", cwd=repo)
    git("commit", "--quiet", "-m", "feature work", cwd=repo)
    git("checkout", "--quiet", "main", cwd=repo)
    git("branch", "other", cwd=repo)
    git("tag", "-a", "v1", "-m", "release", cwd=repo)
    write(repo, "a.txt", "stashed change\n")
    git("stash", "push", "--quiet", "-m", "work in progress", cwd=repo)
    git("gc", "--quiet", cwd=repo)  # packed objects and refs, as well as loose ones below
    write(repo, "b.txt", "2 edited\n")
    write(repo, "staged.txt", "staged\n")
    git("add", "staged.txt", cwd=repo)
    (repo / "dir" / "c.txt").unlink()
    write(repo, "untracked/u.txt", "untracked\n")
    write(repo, ".git/info/exclude", "ignored.txt\n")
    write(repo, "ignored.txt", "ignored\n")
    assert git("stash", "list", cwd=repo) != ""
    before = fingerprint(repo)

    snap = await take_snapshot(repo, tmp_path / "snap")

    assert_unchanged(before, fingerprint(repo))
    assert files_of(snap) == {
        "a.txt": b"1\n",
        "b.txt": b"2 edited\n",
        "staged.txt": b"staged\n",
        "untracked/u.txt": b"untracked\n",
    }


async def test_a_second_snapshot_sees_new_changes_and_still_writes_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "1\n"})
    first = await take_snapshot(repo, tmp_path / "snap1")
    write(repo, "a.txt", "2\n")
    before = fingerprint(repo)
    second = await take_snapshot(repo, tmp_path / "snap2")
    assert_unchanged(before, fingerprint(repo))
    assert files_of(first) == {"a.txt": b"1\n"}
    assert files_of(second) == {"a.txt": b"2\n"}
    assert first.commit != second.commit


async def test_snapshot_of_a_repository_with_no_commits(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    write(repo, "staged.txt", "staged\n")
    git("add", "staged.txt", cwd=repo)
    write(repo, "sub/untracked.txt", "untracked\n")
    write(repo, ".gitignore", "*.tmp\n")
    write(repo, "scratch.tmp", "ignored\n")
    before = fingerprint(repo)

    snap = await take_snapshot(repo, tmp_path / "snap")

    assert snap.head is None
    assert parents_of(snap) == []
    assert files_of(snap) == {
        ".gitignore": b"*.tmp\n",
        "staged.txt": b"staged\n",
        "sub/untracked.txt": b"untracked\n",
    }
    assert_unchanged(before, fingerprint(repo))


async def test_snapshot_of_a_fresh_repository_with_no_index_and_no_files(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    assert not (repo / ".git" / "index").exists()
    before = fingerprint(repo)
    snap = await take_snapshot(repo, tmp_path / "snap")
    assert snap.head is None
    assert files_of(snap) == {}
    empty_tree = git("hash-object", "-t", "tree", "--stdin", cwd=repo).strip()
    assert (
        git(
            "--git-dir", str(snap.git_dir), "rev-parse", f"{snap.commit}^{{tree}}", cwd=tmp_path
        ).strip()
        == empty_tree
    )
    assert_unchanged(before, fingerprint(repo))


async def test_snapshot_of_a_linked_worktree(tmp_path: Path) -> None:
    main = make_repo(tmp_path / "main", {"a.txt": "main\n", "b.txt": "b\n"})
    write(main, ".git/info/exclude", "*.secret\n")
    git("worktree", "add", "--quiet", "-b", "feature", str(tmp_path / "wt"), cwd=main)
    wt = tmp_path / "wt"
    write(wt, "a.txt", "feature\n")
    git("commit", "--quiet", "-am", "feature commit", cwd=wt)
    write(wt, "b.txt", "b edited in the worktree\n")
    write(wt, "staged.txt", "staged in the worktree\n")
    git("add", "staged.txt", cwd=wt)
    write(wt, "new/untracked.txt", "untracked in the worktree\n")
    write(wt, "key.secret", "ignored through the shared info/exclude\n")
    write(main, "main-only.txt", "untracked in the main checkout\n")
    before_main, before_wt = fingerprint(main), fingerprint(wt)

    top = resolve_repo(wt / "new")
    assert top == wt.resolve()
    snap = await take_snapshot(top, tmp_path / "snap")

    assert snap.head == git("rev-parse", "HEAD", cwd=wt).strip()
    assert snap.head != git("rev-parse", "HEAD", cwd=main).strip()
    assert files_of(snap) == {
        "a.txt": b"feature\n",
        "b.txt": b"b edited in the worktree\n",
        "new/untracked.txt": b"untracked in the worktree\n",
        "staged.txt": b"staged in the worktree\n",
    }
    assert_unchanged(before_main, fingerprint(main))
    assert_unchanged(before_wt, fingerprint(wt))


async def test_snapshot_keeps_files_a_sparse_checkout_left_out(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"top.txt": "t\n", "far/away.txt": "far\n"})
    git("sparse-checkout", "set", "--no-cone", "/top.txt", cwd=repo)
    assert not (repo / "far").exists()
    snap = await take_snapshot(repo, tmp_path / "snap")
    assert files_of(snap) == {"top.txt": b"t\n", "far/away.txt": b"far\n"}


async def test_snapshot_with_a_split_index(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n", "b.txt": "b\n"})
    git("update-index", "--split-index", cwd=repo)
    assert list((repo / ".git").glob("sharedindex.*"))
    write(repo, "a.txt", "a edited\n")
    write(repo, "c.txt", "c\n")
    git("add", "c.txt", cwd=repo)
    before = fingerprint(repo)
    snap = await take_snapshot(repo, tmp_path / "snap")
    assert files_of(snap) == {"a.txt": b"a edited\n", "b.txt": b"b\n", "c.txt": b"c\n"}
    assert_unchanged(before, fingerprint(repo))


async def test_snapshot_folder_inside_the_work_tree_is_not_part_of_the_snapshot(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    write(repo, "runs/previous.txt", "an untracked file next to the snapshot folder\n")
    snap = await take_snapshot(repo, repo / "runs" / "snap shot[1]")
    assert files_of(snap) == {
        "a.txt": b"a\n",
        "runs/previous.txt": b"an untracked file next to the snapshot folder\n",
    }


async def test_snapshot_is_not_signed_even_when_the_user_signs_commits(
    tmp_path: Path, pcc_git_env: Path
) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    write(repo, "a.txt", "edited\n")
    with (pcc_git_env / ".gitconfig").open("a") as config:
        # A signing program that always fails: signing would make the snapshot fail.
        config.write("[commit]\n\tgpgSign = true\n[gpg]\n\tprogram = false\n")
    snap = await take_snapshot(repo, tmp_path / "snap")
    assert files_of(snap) == {"a.txt": b"edited\n"}
    commit = git("--git-dir", str(snap.git_dir), "cat-file", "commit", snap.commit, cwd=tmp_path)
    assert "gpgsig" not in commit


async def test_snapshot_works_with_an_empty_init_template_and_still_applies_info_exclude(
    tmp_path: Path, pcc_git_env: Path
) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    write(repo, ".git/info/exclude", "*.ignored\n")
    write(repo, "x.ignored", "ignored\n")
    write(repo, "a.txt", "edited\n")
    empty_template = tmp_path / "empty-template"
    empty_template.mkdir()
    with (pcc_git_env / ".gitconfig").open("a") as config:
        config.write(f"[init]\n\ttemplateDir = {empty_template}\n")
    snap = await take_snapshot(repo, tmp_path / "snap")
    assert files_of(snap) == {"a.txt": b"edited\n"}


@pytest.mark.parametrize("where", ["global", "repository"])
async def test_snapshot_converts_line_endings_as_the_users_git_add_would_whatever_the_timing(
    tmp_path: Path, pcc_git_env: Path, where: str
) -> None:
    """With core.autocrlf=true the user's git stores CRLF files as LF. The snapshot must do the same
    for every file: files the stat cache calls clean are not rehashed, so converting differently
    would make the snapshot depend on file timestamps."""
    config = pcc_git_env / ".gitconfig" if where == "global" else tmp_path / "repo/.git/config"
    repo = make_repo(tmp_path / "repo")
    with config.open("a") as f:
        f.write("[core]\n\tautocrlf = true\n\tsafecrlf = true\n")
    write(repo, "clean.txt", b"one\r\ntwo\r\n")
    write(repo, "touched.txt", b"one\r\ntwo\r\n")
    git("add", "--all", cwd=repo)
    git("commit", "--quiet", "-m", "crlf files", cwd=repo)
    past = (repo / "clean.txt").stat().st_mtime - 60
    for name in ("clean.txt", "touched.txt"):
        os.utime(repo / name, (past, past))
    git("update-index", "--refresh", cwd=repo)  # stat-clean, and not racy: never rehashed
    future = past + 3600
    os.utime(repo / "touched.txt", (future, future))  # same bytes, new stat data: rehashed
    write(repo, "untracked.txt", b"new\r\n")
    write(repo, "lf.txt", b"plain\n")

    snap = await take_snapshot(repo, tmp_path / "snap")

    assert files_of(snap) == {
        "clean.txt": b"one\ntwo\n",
        "touched.txt": b"one\ntwo\n",
        "untracked.txt": b"new\n",
        "lf.txt": b"plain\n",
    }


async def test_snapshot_sees_an_edit_of_the_same_size_made_in_the_second_of_the_commit(
    tmp_path: Path,
) -> None:
    """git trusts a file's stat data (to the second) only when the file is older than the index;
    a copy of the user's index dated later would hide this edit from the snapshot."""
    for attempt in range(20):
        repo = make_repo(tmp_path / f"repo-{attempt}", {"d.py": "x = 1\n"})
        if rewritten_within_its_second(repo, "d.py", "x = 2\n"):
            break
    else:
        pytest.fail("could not edit a file within the second it was committed in")
    # Snapshotting in a later second: a copy of the index made now would be newer than the edit.
    await sleep_into_the_next_second()
    snap = await take_snapshot(repo, tmp_path / "snap")
    assert files_of(snap) == {"d.py": b"x = 2\n"}


async def test_snapshot_stores_bytes_as_they_are_by_default(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"committed.txt": b"one\r\ntwo\r\n"})
    write(repo, "untracked.txt", b"new\r\n")
    write(repo, "mixed.txt", b"a\r\nb\n")
    snap = await take_snapshot(repo, tmp_path / "snap")
    assert files_of(snap) == {
        "committed.txt": b"one\r\ntwo\r\n",
        "untracked.txt": b"new\r\n",
        "mixed.txt": b"a\r\nb\n",
    }


async def test_snapshot_of_unusual_file_names(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"plain.txt": "p\n"})
    names = ["with space.txt", 'dq"uote.txt', "sq'uote.txt", "é.txt", "日本/語.txt", "-dash.txt"]
    for extra in ("tab\tname.txt", "new\nline.txt"):
        try:
            write(tmp_path / "probe", extra, "")
        except OSError:
            continue
        names.append(extra)
    for name in names:
        write(repo, name, f"{name}\n")
    snap = await take_snapshot(repo, tmp_path / "snap")
    assert files_of(snap) == {"plain.txt": b"p\n", **{n: f"{n}\n".encode() for n in names}}


async def test_failed_snapshot_raises_snapshot_error_and_leaves_no_folder(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    if git("rev-parse", "--git-dir", cwd=plain, check=False):
        pytest.skip("the temporary folder is itself inside a git repository")
    into = tmp_path / "snap"
    with pytest.raises(SnapshotError, match="could not snapshot"):
        await take_snapshot(plain, into)
    assert not into.exists()


async def test_snapshot_can_be_read_without_the_snapshot_folder_of_another_run(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    first = await take_snapshot(repo, tmp_path / "one")
    second = await take_snapshot(repo, tmp_path / "two")
    shutil.rmtree(first.git_dir)
    assert files_of(second) == {"a.txt": b"a\n"}


async def test_excluded_folders_inside_the_work_tree_are_left_out_but_tracked_files_stay(
    tmp_path: Path,
) -> None:
    # The default output folder (./parallel-results) lies inside the repository: earlier runs'
    # results must not be copied into every task's workspace.
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n", "results/kept.txt": "tracked\n"})
    write(repo, "results/run-1/run.json", "{}")
    write(repo, "results/run-1/task-1/changes.patch", "diff\n")
    write(repo, "other/new.txt", "new\n")
    snap = await take_snapshot(repo, tmp_path / "snap.git", exclude=[repo / "results"])
    files = files_of(snap)
    assert "other/new.txt" in files
    assert files["results/kept.txt"] == b"tracked\n"
    assert not [p for p in files if p.startswith("results/run-1")]


async def test_excluded_folders_outside_the_work_tree_change_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    write(repo, "b.txt", "b\n")
    snap = await take_snapshot(repo, tmp_path / "snap.git", exclude=[tmp_path / "elsewhere"])
    assert set(files_of(snap)) == {"a.txt", "b.txt"}
