"""Reading the files and changed line ranges of a task's ``changes.patch``, as the SDK writes it."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitrepo import make_repo
from support.landing import NUMBERS, run_edits

from parallelcc_sdk.land.patch import FileChange, Span, parse_patch


@pytest.fixture
def patch(tmp_path: Path, pcc_git_env: Path) -> dict[str, FileChange]:
    """The files of one task that edits, inserts, deletes, renames, copies over binary data and
    changes modes, in files with unusual names."""
    repo = make_repo(tmp_path / "repo", {
        "numbers.txt": NUMBERS,
        "tail.txt": "a\nb\nc",  # no newline at the end
        "end.txt": "x\ny",
        "gone.txt": "bye\n",
        "old name.txt": "".join(f"row {i}\n" for i in range(10)),
        "data.bin": b"\x00\x01\x02",
        "run.sh": "echo hi\n",
        "café.txt": "un\n",
    })
    edit = "; ".join([
        "sed -i -e '3s/.*/three/' -e '5d' -e '7s/.*/seven/' -e '20a inserted' numbers.txt",
        "printf 'a\\nB\\nc' > tail.txt",
        "printf 'x\\nY\\n' > end.txt",
        "git rm -q gone.txt",
        "git mv 'old name.txt' 'new name.txt'",
        "echo 'row 10' >> 'new name.txt'",
        "printf '\\000\\003' > data.bin",
        "chmod +x run.sh",
        "echo deux >> café.txt",
        "echo fresh > added.txt",
    ])
    result = run_edits(repo, tmp_path / "out", {"all": edit})
    data = (result.run_dir / "all" / "changes.patch").read_bytes()
    return {change.path: change for change in parse_patch(data)}


def test_every_file_with_its_kind_and_paths(patch: dict[str, FileChange]) -> None:
    assert sorted(patch) == ["added.txt", "café.txt", "data.bin", "end.txt", "gone.txt",
                             "new name.txt", "numbers.txt", "run.sh", "tail.txt"]
    assert patch["added.txt"].kind == "added" and patch["added.txt"].old_path is None
    assert patch["gone.txt"].kind == "deleted" and patch["gone.txt"].new_path is None
    renamed = patch["new name.txt"]
    assert (renamed.kind, renamed.old_path) == ("renamed", "old name.txt")
    assert renamed.paths == {"old name.txt", "new name.txt"}
    assert patch["data.bin"].binary and patch["data.bin"].is_whole_file
    assert patch["run.sh"].mode_changed and patch["run.sh"].spans == ()
    assert not patch["run.sh"].is_whole_file
    assert patch["café.txt"].spans == (Span(2, 2),)


def test_changed_line_ranges_leave_out_the_context(patch: dict[str, FileChange]) -> None:
    # Line 3 replaced, line 5 deleted, line 7 replaced, a line inserted after line 20.
    assert patch["numbers.txt"].spans == (Span(3, 4), Span(5, 6), Span(7, 8), Span(21, 21))
    assert [str(s) for s in patch["numbers.txt"].spans] == [
        "line 3", "line 5", "line 7", "before line 21"]
    assert patch["tail.txt"].spans == (Span(2, 3),)  # no newline at the end, before or after
    assert patch["end.txt"].spans == (Span(2, 3),)  # the last line, newline added
    assert patch["new name.txt"].spans == (Span(11, 11),)


@pytest.mark.parametrize(("a", "b", "meet"), [
    (Span(5, 6), Span(5, 6), True),    # the same line
    (Span(5, 6), Span(6, 7), True),    # adjacent lines: no unchanged line between them
    (Span(5, 6), Span(6, 6), True),    # an insertion right after the edited line
    (Span(5, 6), Span(7, 8), False),   # line 6 between them stays as it was
    (Span(5, 6), Span(7, 7), False),
    (Span(3, 3), Span(3, 3), True),    # two insertions at the same place
    (Span(1, 10), Span(4, 5), True),
])
def test_spans_meet_when_they_overlap_or_touch(a: Span, b: Span, meet: bool) -> None:
    assert a.meets(b) is meet and b.meets(a) is meet


def test_damaged_or_foreign_text_is_not_a_file() -> None:
    assert parse_patch(b"") == []
    assert parse_patch(b"hello\nworld\n") == []
    (change,) = parse_patch(b"diff --git a/x b/x\n@@ bogus @@\n")
    assert (change.path, change.spans) == ("x", ())
