"""The conflict map on real runs: tasks whose edits are known to collide or not, a trial merge in a
scratch repository, the suggested order, the report section and the heat map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from support.e2e import diff_states, tree_state
from support.gitrepo import commit_all, git, make_repo, write
from support.landing import NUMBERS, run_edits, set_line

import parallelcc_sdk as pcc

matplotlib.use("Agg")


@pytest.fixture
def repo(tmp_path: Path, pcc_git_env: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {"numbers.txt": NUMBERS, "other.txt": "other\n", "r.txt": "one\ntwo\n"},
    )


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    yield
    plt.close("all")


def pairs(report: pcc.ConflictReport) -> dict[tuple[str, str], int]:
    """The non-zero cells of the matrix above the diagonal."""
    m = report.matrix
    return {(a, b): int(m.loc[a, b]) for i, a in enumerate(m.index) for b in m.columns[i + 1:]
            if m.loc[a, b]}


def test_edits_of_different_lines_and_files_all_apply_together(repo: Path, tmp_path: Path) -> None:
    result = run_edits(repo, tmp_path / "out", {
        "a": set_line(3, "three"),
        "b": set_line(10, "ten"),
        "c": set_line(20, "twenty"),
        "d": "echo new > new.txt",
    })
    report = result.conflicts()

    assert report.tasks == ("a", "b", "c", "d")
    assert pairs(report) == {}
    assert report.trial_merged and report.note is None
    assert report.clean_set == ("a", "b", "c", "d") and report.conflict_free
    assert report.order == ("a", "b", "c", "d")
    # They share a file without conflicting on it: an overlap, not a conflict.
    assert report.files.loc["a", "b"] == 1 and report.files.loc["a", "d"] == 0
    assert report.files.loc["c", "c"] == 1
    shared = report.overlaps[report.overlaps["path"] == "numbers.txt"]
    assert len(shared) == 3 and (shared["conflicts"] == 0).all()
    assert report.summary() == "All 4 tasks with changes apply cleanly together (in a trial merge)."


KNOWN_CLASHES = {
    "a": set_line(5, "A"),
    "b": set_line(5, "B"),  # the same line as a
    "c": set_line(6, "C"),  # the line next to a's and b's: git cannot merge touching edits
    "d": set_line(20, "D"),  # alone
    "e": "git rm -q other.txt",
    "f": "echo more >> other.txt",  # edits the file e deletes
    "g": "git mv r.txt r2.txt",
    "h": "echo three >> r.txt",  # edits the file g renames
    "i": "true",  # changes nothing
    "j": "echo 1 > numbers.txt; exit 3",  # fails
}


def test_known_clashes_give_the_matrix_the_order_and_the_clean_set(
    repo: Path, tmp_path: Path
) -> None:
    result = run_edits(repo, tmp_path / "out", KNOWN_CLASHES)
    report = result.conflicts()

    assert report.tasks == ("a", "b", "c", "d", "e", "f", "g", "h")
    assert pairs(report) == {("a", "b"): 1, ("a", "c"): 1, ("b", "c"): 1, ("e", "f"): 1,
                             ("g", "h"): 1}
    assert (report.matrix.to_numpy() == report.matrix.to_numpy().T).all()
    # Fewest conflicting partners first, input order among equals.
    assert report.order == ("d", "e", "f", "g", "h", "a", "b", "c")
    assert report.trial_merged
    assert report.clean_set == ("d", "e", "g", "a")
    assert set(report.conflicting) == {"f", "h", "b", "c"}
    assert report.conflicting["b"] == "numbers.txt: both changed the same lines (with a)"
    assert report.conflicting["f"].startswith("other.txt: the file is not there")
    assert report.conflicting["h"].endswith("(with g)")
    assert report.skipped == {"i": "changed nothing", "j": "failed, not completed"}
    # A rename touches both its paths; the overlap is listed once.
    renamed = report.overlaps[(report.overlaps["task"] == "g")]
    assert renamed["path"].tolist() == ["r.txt"]
    assert "g renamed r.txt to r2.txt" in renamed["detail"].iloc[0]
    assert report.files.loc["g", "g"] == 2


def test_the_trial_merge_leaves_the_users_repository_as_it_was(repo: Path, tmp_path: Path) -> None:
    result = run_edits(repo, tmp_path / "out", {"a": set_line(5, "A"), "b": set_line(5, "B")})
    before = tree_state(repo)
    report = result.conflicts()
    assert report.clean_set == ("a",) and list(report.conflicting) == ["b"]
    assert diff_states(before, tree_state(repo)) == []


def test_a_run_started_from_uncommitted_changes_is_merged_on_them(
    repo: Path, tmp_path: Path
) -> None:
    # Edited and untracked files are part of what the tasks start from.
    write(repo, "numbers.txt", NUMBERS.replace("1\n", "one\n", 1))
    write(repo, "untracked.txt", "draft\n")
    result = run_edits(repo, tmp_path / "out", {
        "a": set_line(2, "two"),  # next to the uncommitted edit of line 1
        "b": "echo more >> untracked.txt",
    })
    assert (result.run_dir / "snapshot.patch").is_file()
    report = result.conflicts()
    assert report.trial_merged, report.note
    assert report.clean_set == ("a", "b")


def test_without_a_snapshot_record_the_clean_set_comes_from_the_line_ranges(
    repo: Path, tmp_path: Path
) -> None:
    result = run_edits(repo, tmp_path / "out", {
        "a": set_line(5, "A"), "b": set_line(5, "B"), "c": set_line(9, "C"),
    })
    (result.run_dir / "snapshot.json").unlink()
    report = pcc.load_run(result.run_dir).conflicts()
    assert not report.trial_merged
    assert report.note is not None and "snapshot.json" in report.note
    assert report.clean_set == ("c", "a") and report.conflicting == {"b": "conflicts with a"}
    assert "judged by their line ranges" in report.summary()


def test_a_repository_whose_history_lost_the_start_commit_is_named(
    repo: Path, tmp_path: Path
) -> None:
    result = run_edits(repo, tmp_path / "out", {"a": set_line(5, "A"), "b": set_line(7, "B")})
    other = make_repo(tmp_path / "other", {"x.txt": "x\n"})
    report = result.conflicts(repo=other)
    assert not report.trial_merged
    assert report.note is not None and "is no longer in" in report.note


def test_the_report_has_a_conflicts_section_only_with_two_changed_tasks(
    repo: Path, tmp_path: Path
) -> None:
    result = run_edits(repo, tmp_path / "out", {"a": set_line(5, "A"), "b": set_line(5, "B")})
    report = result.report_path.read_text()
    section = report.split("## Conflicts", 1)[1]
    assert "1 of 2 tasks with changes apply cleanly together (in a trial merge)." in section
    assert "| 1 | a | 1 | b | applies |" in section
    assert "| 2 | b | 1 | a | does not apply: numbers.txt: both changed the same lines (with a) |" \
        in section
    assert "| a, b | numbers.txt | same lines: line 5 / line 5 |" in section

    single = run_edits(repo, tmp_path / "out", {"a": set_line(5, "A"), "b": "true"})
    assert "## Conflicts" not in single.report_path.read_text()


def test_the_text_form_lists_the_order_and_the_reasons(repo: Path, tmp_path: Path) -> None:
    result = run_edits(repo, tmp_path / "out", {"a": set_line(5, "A"), "b": set_line(5, "B"),
                                                "c": "false"})
    text = result.conflicts().to_text()
    assert text.splitlines()[:5] == [
        "1 of 2 tasks with changes apply cleanly together (in a trial merge).",
        "",
        "Suggested order (fewest conflicts first):",
        "  ✓ a  applies",
        "  ✗ b  does not apply: numbers.txt: both changed the same lines (with a)",
    ]
    assert "Left out: c (failed, not completed)" in text


def test_the_heat_map_shows_the_matrix_in_the_suggested_order(repo: Path, tmp_path: Path) -> None:
    result = run_edits(repo, tmp_path / "out", {
        "a": set_line(5, "A"), "b": set_line(5, "B"), "c": set_line(20, "C"),
    })
    ax = result.plot_conflicts()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["c", "a", "✗ b"]
    image = ax.get_images()[0].get_array()
    assert np.ma.getmaskarray(image)[0].all()  # c conflicts with nothing: no colour
    assert image[1, 2] == image[2, 1] == 1
    assert [t.get_text() for t in ax.texts] == ["1", "1"]
    assert hasattr(ax, "_ipython_display_")


def test_a_run_without_changes_has_an_empty_map(repo: Path, tmp_path: Path) -> None:
    result = run_edits(repo, tmp_path / "out", {"a": "true"})
    report = result.conflicts()
    assert report.tasks == () and report.clean_set == () and report.matrix.empty
    assert report.summary() == "No completed task changed anything."
    ax = report.plot()
    assert not ax.axison


def test_a_commit_the_agent_made_is_part_of_its_patch(repo: Path, tmp_path: Path) -> None:
    # The patch is measured against the snapshot, so committed work counts like any other.
    command = f"{set_line(5, 'A')} && git -c user.name=x -c user.email=x@y commit -qam agent"
    result = run_edits(repo, tmp_path / "out", {"a": command, "b": set_line(5, "B")})
    report = result.conflicts()
    assert pairs(report) == {("a", "b"): 1}
    commit_all(repo, "later work", allow_empty=True)  # the user's HEAD moved on since the run
    assert git("rev-parse", "HEAD", cwd=repo).strip() != ""
    assert result.conflicts().clean_set == ("a",)


def test_above_the_limit_the_report_judges_by_line_ranges_only(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from parallelcc_sdk.land import conflicts
    from parallelcc_sdk.report import render_report

    result = run_edits(repo, tmp_path / "out", {"a": set_line(5, "A"), "b": set_line(5, "B")})
    monkeypatch.setattr(conflicts, "REPORT_TRIAL_MERGE_MAX", 1)
    section = render_report(result).split("## Conflicts", 1)[1]
    assert "1 of 2 tasks with changes apply cleanly together (judged by their line ranges)." \
        in section
    assert "| 2 | b | 1 | a | does not apply: conflicts with a |" in section
    assert "Run `result.conflicts()` for a trial merge of this many tasks." in section
    monkeypatch.setattr(conflicts, "REPORT_TASKS_MAX", 1)
    section = render_report(result).split("## Conflicts", 1)[1]
    assert section.strip() == (
        "2 completed tasks changed files: run `result.conflicts()` for the conflict map.")
