"""The conflict map of a run: which tasks changed the same files and lines, and which of them can
be applied together.

Two steps. First each completed task's ``changes.patch`` is read: two tasks *overlap* on a file if
both touch it (a rename touches its old and its new path), and *conflict* on it if they change
lines that overlap or touch, or if either deletes, adds, renames or replaces the file as a whole
(binary files included). Then a *trial merge*: every patch is applied, one after another, onto the
state the run started from, in a scratch repository (the user's repository is only read), in the
suggested order (fewest conflicts first). The tasks whose patches applied form the clean set.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ParallelCCError
from ..models import TaskStatus
from ..snapshot import resolve_repo
from ..views import format as fmt
from ._files import PATCH_FILE, task_file
from .base import read_snapshot_record, rebuild_snapshot
from .patch import FileChange, parse_patch
from .scratch import Scratch

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from ..results import RunResult

__all__ = ["ConflictReport", "Overlap", "find_conflicts", "markdown_section"]

# The report's section lists at most this many overlapping files; the rest is one line.
_REPORT_OVERLAP_ROWS = 50
# Above this many tasks the notebook view leaves the matrix out (report.plot() draws it).
_HTML_MATRIX_MAX = 30
# Above this many changed tasks the report's section is one line pointing to result.conflicts():
# the map of every pair would cost the end of the run seconds and fill pages.
REPORT_TASKS_MAX = 200
# Above this many changed tasks the report skips the trial merge, which costs one git process
# per task at the end of the run; result.conflicts() still does it.
REPORT_TRIAL_MERGE_MAX = 50


@dataclass(frozen=True)
class Overlap:
    """A file that two tasks both touch, and whether their changes to it conflict."""

    task: str
    other: str
    path: str
    conflicts: int
    """How many conflicting changes: overlapping line ranges, or 1 for a whole-file clash."""
    detail: str


@dataclass(frozen=True, eq=False)
class ConflictReport:
    """The conflict map of a run (see :meth:`RunResult.conflicts`).

    ``matrix`` counts the conflicting changes of each pair of tasks (task by task, symmetric, zero
    on the diagonal); ``files`` counts the files each pair both touch (the diagonal: the files
    each task touches); ``overlaps`` lists them one row per pair and file. ``order`` is the
    suggested order to apply them, fewest conflicts first; ``clean_set`` the tasks whose patches
    applied one after another in that order; ``conflicting`` the others, each with the reason.
    """

    run_id: str
    tasks: tuple[str, ...]
    matrix: pd.DataFrame
    files: pd.DataFrame
    overlaps: pd.DataFrame
    order: tuple[str, ...]
    clean_set: tuple[str, ...]
    conflicting: Mapping[str, str]
    skipped: Mapping[str, str] = field(default_factory=dict)
    """Tasks left out of the map (not completed, or no changes), each with the reason."""
    trial_merged: bool = True
    """False when the trial merge could not run; ``clean_set`` then comes from the line ranges."""
    note: str | None = None
    """Why the trial merge did not run, when it did not."""

    @property
    def conflict_free(self) -> bool:
        """True if every task with changes applies cleanly together with all the others."""
        return not self.conflicting

    def summary(self) -> str:
        """One sentence: how many tasks apply cleanly together."""
        n = len(self.tasks)
        if n == 0:
            return "No completed task changed anything."
        clean = len(self.clean_set)
        how = "in a trial merge" if self.trial_merged else "judged by their line ranges"
        if clean == n:
            return f"All {n} tasks with changes apply cleanly together ({how})."
        return f"{clean} of {n} tasks with changes apply cleanly together ({how})."

    def to_text(self) -> str:
        """The report for a terminal: the summary, then one line per task and per overlap."""
        lines = [self.summary()]
        if self.note:
            lines.append(f"Trial merge not run: {self.note}")
        if self.tasks:
            lines += ["", "Suggested order (fewest conflicts first):"]
            lines += [f"  {_verdict_symbol(self, t)} {t}  {_verdict(self, t)}" for t in self.order]
        listed = _overlap_rows(self.overlaps)
        if listed:
            lines += ["", "Files changed by more than one task:"]
            lines += [f"  {a} & {b}  {path}  {what}" for a, b, path, what in listed]
        if self.skipped:
            left_out = ", ".join(f"{t} ({why})" for t, why in self.skipped.items())
            lines += ["", f"Left out: {left_out}"]
        return "\n".join(lines)

    def markdown(self) -> list[str]:
        """The ``## Conflicts`` section of ``summary-report.md``, as lines."""
        from ..report import escape_cell

        lines = ["", "## Conflicts", "", escape_cell(self.summary())]
        if self.note:
            lines += ["", f"Trial merge not run: {escape_cell(self.note)}"]
        if not self.tasks:
            return lines
        lines += [
            "",
            "In the suggested order (fewest conflicts first):",
            "",
            "| Order | Task | Conflicts | With | Trial merge |",
            "|---:|:---|---:|:---|:---|",
        ]
        cells_of = self.matrix.to_numpy()
        row_of = {task: i for i, task in enumerate(self.matrix.index)}
        for i, task in enumerate(self.order, 1):
            row = cells_of[row_of[task]]
            others = ", ".join(str(self.matrix.columns[j]) for j in row.nonzero()[0])
            cells = [str(i), task, str(int(row.sum())), others, _verdict(self, task)]
            lines.append("| " + " | ".join(escape_cell(c) for c in cells) + " |")
        listed = _overlap_rows(self.overlaps)
        if listed:
            lines += ["", "| Tasks | File | Changes |", "|:---|:---|:---|"]
            for a, b, path, what in listed[:_REPORT_OVERLAP_ROWS]:
                cells = [f"{a}, {b}", path, what]
                lines.append("| " + " | ".join(escape_cell(c) for c in cells) + " |")
            if len(listed) > _REPORT_OVERLAP_ROWS:
                lines += ["", f"… and {len(listed) - _REPORT_OVERLAP_ROWS} more shared files "
                              "(see `result.conflicts().overlaps`)."]
        return lines

    def plot(self, ax: Axes | None = None) -> Axes:
        """A heat map of ``matrix`` (needs matplotlib)."""
        from ..views.plots import plot_conflicts

        return plot_conflicts(self, ax=ax)

    def _repr_html_(self) -> str:
        from html import escape

        body = f'<pre style="font-size: 12px;">{escape(self.to_text())}</pre>'
        if len(self.tasks) > _HTML_MATRIX_MAX:
            return body  # a table of thousands of cells says less than plot()
        return body + self.matrix.to_html()

    def __repr__(self) -> str:
        return (
            f"ConflictReport(run_id={self.run_id!r}, tasks={len(self.tasks)}, "
            f"clean_set={list(self.clean_set)!r}, conflicting={sorted(self.conflicting)!r})"
        )


def _verdict_symbol(report: ConflictReport, task: str) -> str:
    return "✗" if task in report.conflicting else "✓"


def _verdict(report: ConflictReport, task: str) -> str:
    if task in report.conflicting:
        return f"does not apply: {report.conflicting[task]}"
    return "applies" if report.trial_merged else "no conflict"


def _overlap_rows(overlaps: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    return [
        (str(r.task), str(r.other), str(r.path), str(r.detail))
        for r in overlaps.itertuples(index=False)
    ]


# ---------------------------------------------------------------------------------------------
# Pairwise analysis


def _clash(a: FileChange, b: FileChange, task_a: str, task_b: str) -> tuple[int, str]:
    """How many conflicting changes two tasks' changes to one file make, and in words."""
    if a.is_whole_file or b.is_whole_file:
        return 1, f"{_whole(a, task_a)}; {_whole(b, task_b)}"
    meeting = [(x, y) for x in a.spans for y in b.spans if x.meets(y)]
    count = len(meeting) + (1 if a.mode_changed and b.mode_changed else 0)
    if not count:
        return 0, f"different lines ({_ranges(a)} / {_ranges(b)})"
    where = ", ".join(f"{x} / {y}" for x, y in meeting) or "mode"
    return count, f"same lines: {where}"


def _whole(change: FileChange, task: str) -> str:
    if change.kind == "renamed":
        return f"{task} renamed {change.old_path} to {change.new_path}"
    if change.kind == "copied":
        return f"{task} copied {change.old_path} to {change.new_path}"
    if change.binary and change.kind == "modified":
        return f"{task} changed the binary file"
    if change.kind == "modified":
        return f"{task} edited {_ranges(change)}"
    return f"{task} {change.kind} it"


def _ranges(change: FileChange) -> str:
    if not change.spans:
        return "the mode" if change.mode_changed else "nothing"
    return ", ".join(str(s) for s in change.spans)


@dataclass
class _Pairwise:
    tasks: list[str]
    touched: dict[str, frozenset[str]]
    counts: dict[tuple[str, str], int]
    shared: dict[tuple[str, str], int]
    overlaps: list[Overlap]
    position: dict[str, int]


def _pairwise(changes: Mapping[str, Sequence[FileChange]]) -> _Pairwise:
    tasks = list(changes)
    touched = {t: frozenset(p for c in changes[t] for p in c.paths) for t in tasks}
    # Only tasks that share a path are compared: the work follows the overlaps, not n².
    by_path: dict[str, list[tuple[str, FileChange]]] = {}
    for task in tasks:
        for change in changes[task]:
            for path in change.paths:
                by_path.setdefault(path, []).append((task, change))
    position = {t: i for i, t in enumerate(tasks)}
    seen: set[tuple[int, int]] = set()
    counts: dict[tuple[str, str], int] = {}
    shared: dict[tuple[str, str], int] = {}
    overlaps: list[Overlap] = []
    for entries in by_path.values():
        sharing = sorted({task for task, _ in entries}, key=position.__getitem__)
        for ta, tb in itertools.combinations(sharing, 2):
            shared[(ta, tb)] = shared.get((ta, tb), 0) + 1
        for (ta, ca), (tb, cb) in itertools.combinations(entries, 2):
            if ta == tb:
                continue
            if position[ta] > position[tb]:
                (ta, ca), (tb, cb) = (tb, cb), (ta, ca)
            key = (id(ca), id(cb))
            if key in seen:  # a rename shared by its old and its new path is one overlap
                continue
            seen.add(key)
            n, detail = _clash(ca, cb, ta, tb)
            overlaps.append(Overlap(ta, tb, ca.path if ca.path in cb.paths else cb.path, n,
                                    detail))
            counts[(ta, tb)] = counts.get((ta, tb), 0) + n
    return _Pairwise(tasks, touched, counts, shared, overlaps, position)


def _suggested_order(pw: _Pairwise) -> list[str]:
    partners = {t: 0 for t in pw.tasks}
    totals = {t: 0 for t in pw.tasks}
    for (a, b), n in pw.counts.items():
        if n:
            partners[a] += 1
            partners[b] += 1
            totals[a] += n
            totals[b] += n
    return sorted(pw.tasks, key=lambda t: (partners[t], totals[t], pw.position[t]))


def _frames(pw: _Pairwise) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    import numpy as np
    import pandas as pd

    n = len(pw.tasks)
    counts = np.zeros((n, n), dtype="int64")
    shared = np.zeros((n, n), dtype="int64")
    for cells, pairs in ((counts, pw.counts), (shared, pw.shared)):
        for (a, b), value in pairs.items():
            i, j = pw.position[a], pw.position[b]
            cells[i, j] = cells[j, i] = value
    for task in pw.tasks:
        shared[pw.position[task], pw.position[task]] = len(pw.touched[task])
    index = pd.Index(pw.tasks, name="task")
    columns = pd.Index(pw.tasks, name="other")
    matrix = pd.DataFrame(counts, index=index, columns=columns)
    files = pd.DataFrame(shared, index=index, columns=columns)
    overlaps = pd.DataFrame(
        [(o.task, o.other, o.path, o.conflicts, o.detail) for o in pw.overlaps],
        columns=["task", "other", "path", "conflicts", "detail"],
    ).astype({"task": "string", "other": "string", "path": "string", "conflicts": "int64",
              "detail": "string"})
    return matrix, files, overlaps.sort_values(["task", "other", "path"], ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Trial merge


def _trial_merge(
    result: RunResult, order: Sequence[str], patches: Mapping[str, bytes], repo: Path | None,
    pw: _Pairwise,
) -> tuple[list[str], dict[str, str]]:
    record = read_snapshot_record(Path(result.run_dir))
    top = resolve_repo(repo if repo is not None else record.repo)
    clean: list[str] = []
    conflicting: dict[str, str] = {}
    with Scratch(top) as scratch:
        rebuild_snapshot(record, scratch)
        scratch.narrow_to(set().union(*pw.touched.values()))
        tree = scratch.write_tree()
        for task in order:
            outcome = scratch.apply(patches[task], three_way=True)
            if outcome.applied:
                tree = scratch.write_tree()
                clean.append(task)
                continue
            scratch.read_tree(tree)
            where = outcome.path or "the patch"
            touching = [c for c in clean if outcome.path and outcome.path in pw.touched[c]]
            clashing = [c for c in touching if pw.counts.get(_pair(task, c, pw), 0)]
            others = clashing or touching
            also = f" (with {', '.join(others)})" if others else ""
            conflicting[task] = f"{where}: {outcome.reason}{also}"
    return clean, conflicting


def _pair(a: str, b: str, pw: _Pairwise) -> tuple[str, str]:
    """The key of a pair of tasks in ``pw.counts``: in input order."""
    return (a, b) if pw.position[a] < pw.position[b] else (b, a)


def _greedy(order: Sequence[str], pw: _Pairwise) -> tuple[list[str], dict[str, str]]:
    """The clean set judged by line ranges alone, when no trial merge can run."""
    clean: list[str] = []
    conflicting: dict[str, str] = {}
    for task in order:
        clashes = [c for c in clean if pw.counts.get(_pair(task, c, pw), 0)]
        if clashes:
            conflicting[task] = f"conflicts with {', '.join(clashes)}"
        else:
            clean.append(task)
    return clean, conflicting


def _changed_tasks(result: RunResult) -> tuple[dict[str, bytes], dict[str, str]]:
    patches: dict[str, bytes] = {}
    skipped: dict[str, str] = {}
    for task in result.tasks:
        if task.status != TaskStatus.COMPLETED:
            skipped[task.task_id] = f"{fmt.status_label(task.status)}, not completed"
            continue
        try:
            data = task_file(result, task.task_id, PATCH_FILE).read_bytes()
        except FileNotFoundError:
            skipped[task.task_id] = f"no {PATCH_FILE} in its folder"
            continue
        except OSError as exc:
            skipped[task.task_id] = f"cannot read its {PATCH_FILE}: {exc}"
            continue
        if not data.strip():
            skipped[task.task_id] = "changed nothing"
            continue
        patches[task.task_id] = data
    return patches, skipped


def find_conflicts(
    result: RunResult, *, repo: str | Path | None = None, trial_merge: bool = True
) -> ConflictReport:
    """The conflict map of ``result`` (see :class:`ConflictReport`).

    ``repo`` is the repository the run started from (default: the one it recorded). Without a
    usable record of the run's starting state, or with ``trial_merge=False``, the clean set is
    judged from the line ranges alone and ``note`` says why.
    """
    patches, skipped = _changed_tasks(result)
    changes = {task: parse_patch(data) for task, data in patches.items()}
    pw = _pairwise(changes)
    order = _suggested_order(pw)
    matrix, files, overlaps = _frames(pw)
    note: str | None = None
    merged = False
    clean: list[str] = []
    conflicting: dict[str, str] = {}
    if trial_merge and order:
        try:
            clean, conflicting = _trial_merge(
                result, order, patches, Path(repo) if repo is not None else None, pw
            )
            merged = True
        except ParallelCCError as exc:
            note = str(exc)
    if not merged:
        clean, conflicting = _greedy(order, pw)
    return ConflictReport(
        run_id=result.run_id,
        tasks=tuple(pw.tasks),
        matrix=matrix,
        files=files,
        overlaps=overlaps,
        order=tuple(order),
        clean_set=tuple(clean),
        conflicting=conflicting,
        skipped=skipped,
        trial_merged=merged,
        note=note,
    )


def markdown_section(result: RunResult) -> list[str]:
    """The ``## Conflicts`` section of the run's report; a failure becomes one line in it (the
    report must be written whatever happens here)."""
    changed = sum(
        1 for t in result.tasks if t.status == TaskStatus.COMPLETED and (t.files_changed or 0) > 0
    )
    if changed > REPORT_TASKS_MAX:
        return ["", "## Conflicts", "", f"{changed} completed tasks changed files: run "
                "`result.conflicts()` for the conflict map."]
    try:
        report = find_conflicts(result, trial_merge=changed <= REPORT_TRIAL_MERGE_MAX)
    except (ParallelCCError, OSError, ValueError) as exc:
        return ["", "## Conflicts", "", f"Could not build the conflict map: {exc}"]
    if not report.tasks:
        return []  # the records say files changed, but no task folder holds a patch
    lines = report.markdown()
    if changed > REPORT_TRIAL_MERGE_MAX:
        lines += ["", "Run `result.conflicts()` for a trial merge of this many tasks."]
    return lines
