"""Applying tasks' changes to a new branch of the user's repository, and pushing it: checked with
git itself, and a refusal that leaves the repository byte for byte as it was."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from support.e2e import diff_states, tree_state
from support.gitrepo import USER_EMAIL, USER_NAME, git, make_repo, write
from support.landing import NUMBERS, run_edits, set_line

import parallelcc_sdk as pcc


@pytest.fixture
def repo(tmp_path: Path, pcc_git_env: Path) -> Path:
    return make_repo(tmp_path / "repo", {"numbers.txt": NUMBERS, "other.txt": "other\n"})


@pytest.fixture
def result(repo: Path, tmp_path: Path) -> pcc.RunResult:
    return run_edits(repo, tmp_path / "out", {
        "a": set_line(5, "A"),
        "b": set_line(5, "B"),  # clashes with a
        "c": set_line(20, "C") + " && printf 'x\\000y' > data.bin",
        "d": "git rm -q other.txt",
        "e": "true",
    })


def log(repo: Path, ref: str) -> list[str]:
    return git("log", "--format=%s|%an <%ae>", ref, cwd=repo).splitlines()


def test_tasks_land_on_a_new_branch_one_commit_each(repo: Path, result: pcc.RunResult) -> None:
    head = git("rev-parse", "HEAD", cwd=repo).strip()
    status_before = git("status", "--porcelain", cwd=repo)

    branch = result.apply(["c", "a", "d"])

    assert branch.branch == f"parallelcc/{result.run_id}" == str(branch)
    assert branch.base == head and [t for t, _ in branch.commits] == ["c", "a", "d"]
    identity = f"{USER_NAME} <{USER_EMAIL}>"
    assert log(repo, branch.branch) == [
        f"parallelcc: d: Task d: git rm -q other.txt|{identity}",
        f"parallelcc: a: Task a: sed -i '5s/.*/A/' numbers.txt|{identity}",
        "parallelcc: c: Task c: sed -i '20s/.*/C/' numbers.txt && printf 'x\\000y' >…"
        f"|{identity}",
        f"initial|{identity}",
    ]
    body = git("log", "-1", "--format=%b", f"{branch.branch}~1", cwd=repo)
    assert body == f"Task a: sed -i '5s/.*/A/' numbers.txt\n\nparallelcc run: {result.run_id}\n\n"
    # The branch holds exactly the three tasks' work, binary file included.
    assert git("show", f"{branch.branch}:numbers.txt", cwd=repo).splitlines()[4] == "A"
    assert git("show", f"{branch.branch}:numbers.txt", cwd=repo).splitlines()[19] == "C"
    assert git("cat-file", "-p", f"{branch.branch}:data.bin", cwd=repo) == "x\0y"
    assert "other.txt" not in git("ls-tree", "--name-only", branch.branch, cwd=repo).split()
    # Nothing else moved: HEAD, the checked-out branch, the index and the files.
    assert git("rev-parse", "HEAD", cwd=repo).strip() == head
    assert git("symbolic-ref", "--short", "HEAD", cwd=repo).strip() == "main"
    assert git("status", "--porcelain", cwd=repo) == status_before == ""
    assert (repo / "numbers.txt").read_text() == NUMBERS


def test_a_conflict_refuses_and_leaves_the_repository_byte_identical(
    repo: Path, result: pcc.RunResult
) -> None:
    before = tree_state(repo)
    with pytest.raises(pcc.ApplyConflictError) as caught:
        result.apply(["a", "c", "b"], branch="land-it")
    error = caught.value
    assert (error.task_id, error.path) == ("b", "numbers.txt")
    assert str(error) == (
        "task 'b' does not apply in numbers.txt after a, c: both changed the same lines; "
        "nothing was changed. See result.conflicts() for an order that applies."
    )
    # Not one object, ref, reflog or index byte: everything was built in a scratch repository.
    assert diff_states(before, tree_state(repo)) == []


def test_bad_requests_are_refused_before_anything_is_built(
    repo: Path, result: pcc.RunResult
) -> None:
    before = tree_state(repo)
    with pytest.raises(pcc.ValidationError, match=r"has no task 'zz'; its tasks are a, b, c"):
        result.apply(["a", "zz"])
    with pytest.raises(pcc.ValidationError, match="at least one task id"):
        result.apply([])
    with pytest.raises(pcc.ValidationError, match="'a' is named more than once"):
        result.apply(["a", "a"])
    with pytest.raises(pcc.ValidationError, match="task 'e' changed nothing"):
        result.apply(["e"])
    with pytest.raises(pcc.ValidationError, match="not a valid git branch name"):
        result.apply(["a"], branch="two..dots")
    with pytest.raises(pcc.BranchExistsError, match="branch 'main' already exists"):
        result.apply(["a"], branch="main")
    assert diff_states(before, tree_state(repo)) == []


def test_a_second_apply_needs_its_own_branch_name(repo: Path, result: pcc.RunResult) -> None:
    first = result.apply("a")
    with pytest.raises(pcc.BranchExistsError, match="pass another name"):
        result.apply("c")
    second = result.apply("c", branch="only-c")
    assert log(repo, "only-c")[0].startswith("parallelcc: c: ")
    assert first.head != second.head


def test_changes_made_on_uncommitted_work_land_without_that_work(
    repo: Path, tmp_path: Path
) -> None:
    # The run starts from an uncommitted edit of line 1; the task edits line 10.
    write(repo, "numbers.txt", NUMBERS.replace("1\n", "uncommitted\n", 1))
    result = run_edits(repo, tmp_path / "out", {"a": set_line(10, "ten"), "b": set_line(2, "2b")})
    branch = result.apply(["a"])
    lines = git("show", f"{branch.branch}:numbers.txt", cwd=repo).splitlines()
    assert lines[0] == "1" and lines[9] == "ten"
    # The user's uncommitted edit is still only in their working tree.
    assert (repo / "numbers.txt").read_text().startswith("uncommitted\n")
    # An edit next to the uncommitted one cannot be separated from it.
    with pytest.raises(pcc.ApplyConflictError, match="uncommitted changes"):
        result.apply(["b"], branch="b-only")


def test_a_run_folder_without_a_snapshot_record_cannot_be_applied(
    repo: Path, result: pcc.RunResult
) -> None:
    (result.run_dir / "snapshot.json").unlink()
    with pytest.raises(pcc.BaseUnavailableError, match=r"has no snapshot\.json"):
        result.apply(["a"])


# -- push ----------------------------------------------------------------------------------------


@pytest.fixture
def remote(repo: Path, tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    git("init", "--quiet", "--bare", str(bare), cwd=tmp_path)
    git("remote", "add", "origin", str(bare), cwd=repo)
    return bare


def test_push_sends_an_applied_branch_to_the_remote(
    repo: Path, result: pcc.RunResult, remote: Path
) -> None:
    branch = result.apply(["a", "c"])
    pushed = result.push(branch.branch, branch="feature/agents")
    assert (pushed.remote, pushed.branch, pushed.commit) == ("origin", "feature/agents",
                                                              branch.head)
    assert git("rev-parse", "refs/heads/feature/agents", cwd=remote).strip() == branch.head
    assert str(pushed) == "origin/feature/agents" and pushed.pull_request_url is None


def test_push_of_a_task_id_makes_and_pushes_that_tasks_branch(
    repo: Path, result: pcc.RunResult, remote: Path
) -> None:
    pushed = result.push("d")
    name = f"parallelcc/{result.run_id}-d"
    assert pushed.local_branch == pushed.branch == name
    assert git("rev-parse", f"refs/heads/{name}", cwd=remote).strip() == pushed.commit
    assert log(remote, name)[0].startswith("parallelcc: d: ")
    # Pushing it again pushes the same branch: nothing new to make.
    assert result.push("d").commit == pushed.commit


def test_push_refusals_name_what_to_fix(
    repo: Path, result: pcc.RunResult, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(pcc.ValidationError, match=r"remote='upstream' is not a remote of .*"
                                                  r"its remotes are origin"):
        result.push("a", remote="upstream")
    with pytest.raises(pcc.ValidationError, match=r"neither a task of run .* nor a branch"):
        result.push("no-such-branch")
    monkeypatch.setenv("PATH", _path_without_gh())
    with pytest.raises(pcc.ValidationError, match="needs the GitHub CLI"):
        result.push("a", pull_request=True)
    # Refused before pushing anything.
    assert git("for-each-ref", cwd=remote) == ""


def test_a_rejected_push_is_a_push_error(
    repo: Path, result: pcc.RunResult, remote: Path
) -> None:
    result.apply(["a"], branch="first")
    result.apply(["c"], branch="second")
    result.push("first", branch="target")
    with pytest.raises(pcc.PushError, match="could not push second to origin"):
        result.push("second", branch="target")  # not a fast-forward: never forced


def test_pull_request_calls_gh_with_the_branch(
    repo: Path, result: pcc.RunResult, remote: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # gh cannot reach GitHub here: a stand-in records how it was called, as gh would print a URL.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "gh-calls"
    gh = bin_dir / "gh"
    gh.write_text(f'#!/bin/sh\nprintf "%s\\n" "$PWD" "$@" > {calls}\n'
                  'echo "https://github.com/example/repo/pull/7"\n')
    gh.chmod(gh.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    pushed = result.push("c", pull_request=True)

    assert pushed.pull_request_url == "https://github.com/example/repo/pull/7"
    cwd, *args = calls.read_text().splitlines()
    assert Path(cwd) == repo
    assert args == ["pr", "create", "--head", f"parallelcc/{result.run_id}-c", "--fill",
                    "--base", "main"]


def _path_without_gh() -> str:
    return os.pathsep.join(
        d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "gh").exists()
    )


def test_a_repository_moved_elsewhere_is_found_with_repo(
    repo: Path, result: pcc.RunResult, tmp_path: Path
) -> None:
    moved = tmp_path / "moved"
    repo.rename(moved)
    with pytest.raises(pcc.RepositoryError, match="does not exist"):
        result.apply(["a"])
    assert result.apply(["a"], repo=moved).repo == moved.resolve()
    make_repo(tmp_path / "unrelated", {"x": "x\n"})
    with pytest.raises(pcc.BaseUnavailableError, match="is no longer in"):
        result.apply(["c"], repo=tmp_path / "unrelated")
