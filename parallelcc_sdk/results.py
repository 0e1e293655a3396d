"""Run results as data: the DataFrame schema, the run summary and the run result.

pandas is imported lazily (inside functions and through the module ``__getattr__``) so that
``import parallelcc_sdk`` stays light; ``STATUS_DTYPE`` and ``SCHEMA`` are built on first use.
``load_run`` lives with the run folder's reader (``parallelcc_sdk.runfolder``) and is
re-exported here; that package imports this module, so this one imports it only on use.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ValidationError
from .models import STATUS_ORDER, RunStatus, TaskResult, TaskStatus, count_statuses

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from .land.apply import AppliedBranch
    from .land.conflicts import ConflictReport
    from .land.push import PushedBranch
    from .runfolder.reader import load_run as load_run
    from .views.task import TaskView

    STATUS_DTYPE: pd.CategoricalDtype
    SCHEMA: dict[str, Any]

__all__ = [
    "COLUMNS",
    "SCHEMA",
    "STATUS_DTYPE",
    "RunResult",
    "RunSummary",
    "build_dataframe",
    "load_run",
]

# Column name -> dtype name, except ``status`` whose category dtype needs pandas to exist.
_DTYPE_NAMES: dict[str, str] = {
    "task_id": "string",
    "prompt": "string",
    "status": "category",
    "exit_code": "Int64",
    "started_at": "datetime64[us, UTC]",
    "finished_at": "datetime64[us, UTC]",
    "duration_s": "float64",
    "files_changed": "Int64",
    "lines_added": "Int64",
    "lines_removed": "Int64",
    "cost_usd": "float64",
    "input_tokens": "Int64",
    "output_tokens": "Int64",
    "num_turns": "Int64",
    "error": "string",
    "output_path": "string",
    "sandbox_id": "string",
    "attempts": "Int64",
    "cache_read_tokens": "Int64",
    "cache_creation_tokens": "Int64",
    "session_id": "string",
    "phase": "string",
    "last_output": "string",
    "agent_cost_usd": "float64",
    "sandbox_cost_usd": "float64",
    "isolation": "string",
    # Best-of-N (see bestof): group candidates with df.groupby("candidate_of").
    "candidate_of": "string",
    "candidate": "Int64",
    "selected": "boolean",
    "selection_reason": "string",
    "check_exit_code": "Int64",
}

COLUMNS: list[str] = list(_DTYPE_NAMES)



@functools.cache
def _status_dtype() -> pd.CategoricalDtype:
    import pandas as pd

    return pd.CategoricalDtype(list(STATUS_ORDER))


@functools.cache
def _schema() -> dict[str, Any]:
    status = _status_dtype()
    return {col: status if col == "status" else name for col, name in _DTYPE_NAMES.items()}


def __getattr__(name: str) -> Any:
    # Module-level constants that need pandas are built on first access (PEP 562).
    if name == "STATUS_DTYPE":
        return _status_dtype()
    if name == "SCHEMA":
        return dict(_schema())
    if name == "load_run":
        from .runfolder.reader import load_run

        return load_run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------------
# DataFrame


def _utc(value: datetime | None) -> datetime | None:
    # Naive datetimes are taken as UTC; mixing offsets in one column would defeat the cast.
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _standard_row(result: TaskResult) -> list[Any]:
    row: list[Any] = []
    for column in COLUMNS:
        value = getattr(result, column)
        if column in ("started_at", "finished_at"):
            value = _utc(value)
        elif column == "status":
            value = TaskStatus(value).value
        row.append(value)
    return row


def _metadata_columns(results: Sequence[TaskResult]) -> dict[str, str]:
    """Metadata key -> column name, union over tasks in first-seen order."""
    taken = set(COLUMNS)
    columns: dict[str, str] = {}
    for result in results:
        for key in result.metadata:
            key_str = str(key)
            if key_str in columns:
                continue
            name = key_str
            while name in taken:
                name = f"meta_{name}"
            taken.add(name)
            columns[key_str] = name
    return columns


def build_dataframe(results: Sequence[TaskResult]) -> pd.DataFrame:
    """One row per task in input order: the standard columns, then one column per metadata key.

    A metadata key that clashes with a standard column is renamed ``meta_<key>``. The standard
    columns always have the dtypes of ``SCHEMA``, also for an empty run.
    """
    import pandas as pd

    meta_columns = _metadata_columns(results)
    records = []
    for result in results:
        metadata = {str(k): v for k, v in result.metadata.items()}
        extra = [metadata.get(key) for key in meta_columns]
        records.append(_standard_row(result) + extra)
    frame = pd.DataFrame.from_records(records, columns=COLUMNS + list(meta_columns.values()))
    return frame.astype(_schema())


# ---------------------------------------------------------------------------------------------
# Summary


def _count(results: Iterable[TaskResult], status: TaskStatus) -> int:
    return sum(1 for r in results if r.status == status)


@dataclass(frozen=True)
class RunSummary:
    """Totals of one run.

    The counts are disjoint: ``failure_count`` counts ``failed`` tasks only, ``timed_out_count``
    the tasks that ran out of time. ``sequential_duration_s`` adds up the tasks that ran (those
    with a duration), so tasks cancelled before they started do not inflate ``time_saved_s``.
    """

    run_id: str
    total_tasks: int
    success_count: int
    failure_count: int
    cancelled_count: int
    timed_out_count: int
    total_duration_s: float
    sequential_duration_s: float
    time_saved_s: float
    total_files_changed: int
    total_cost_usd: float | None

    @classmethod
    def from_results(
        cls, run_id: str, results: Sequence[TaskResult], total_duration_s: float
    ) -> RunSummary:
        sequential = float(sum(r.duration_s for r in results if r.duration_s is not None))
        total = float(total_duration_s)
        costs = [r.cost_usd for r in results if r.cost_usd is not None]
        return cls(
            run_id=run_id,
            total_tasks=len(results),
            success_count=_count(results, TaskStatus.COMPLETED),
            failure_count=_count(results, TaskStatus.FAILED),
            cancelled_count=_count(results, TaskStatus.CANCELLED),
            timed_out_count=_count(results, TaskStatus.TIMED_OUT),
            total_duration_s=total,
            sequential_duration_s=sequential,
            time_saved_s=max(0.0, sequential - total),
            total_files_changed=sum(r.files_changed or 0 for r in results),
            total_cost_usd=float(sum(costs)) if costs else None,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        """The inverse of ``to_dict``; keys it does not know are ignored."""
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [name for name in names if name not in data]
        if missing:
            raise ValidationError(f"the run summary is missing the fields {', '.join(missing)}")
        return cls(**{name: data[name] for name in names})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------
# Run result


@dataclass(frozen=True)
class RunResult:
    """A run's task results in input order, its summary, and how the run ended.

    ``state`` is ``finished`` unless the run was stopped early (``cancelled``), interrupted, or
    (a run loaded from disk) is still ``running``.
    """

    run_id: str
    run_dir: Path
    tasks: tuple[TaskResult, ...]
    summary: RunSummary
    state: RunStatus = RunStatus.FINISHED

    @property
    def success(self) -> bool:
        """True only if the run had tasks and every one of them completed."""
        return bool(self.tasks) and all(t.status == TaskStatus.COMPLETED for t in self.tasks)

    @functools.cached_property
    def _frame(self) -> pd.DataFrame:
        return build_dataframe(self.tasks)

    @property
    def df(self) -> pd.DataFrame:
        """One row per task (see ``COLUMNS``); each access returns a fresh copy to edit freely."""
        return self._frame.copy()

    @property
    def report_path(self) -> Path:
        from .runfolder.layout import RunLayout

        return RunLayout(self.run_dir).report

    @property
    def counts(self) -> dict[str, int]:
        """Number of tasks in each status, every status listed."""
        return count_statuses(self.tasks)

    @property
    def best(self) -> dict[str, TaskResult]:
        """The task the user gave → its result: for a best-of-N task, the selected candidate
        (absent when none was selected); any other task, itself."""
        best: dict[str, TaskResult] = {}
        for task in self.tasks:
            if task.candidate_of is None:
                best[task.task_id] = task
            elif task.selected:
                best[task.candidate_of] = task
        return best

    @property
    def setup(self) -> dict[str, Any] | None:
        """The run's set-up (command, exit code, times), read from ``setup/setup.json``; ``None``
        for a run without one."""
        import json

        from .runfolder.layout import RunLayout

        try:
            data = json.loads(RunLayout(self.run_dir).setup_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def __getitem__(self, task_id: str) -> TaskResult:
        for task in self.tasks:
            if task.task_id == task_id:
                return task
        raise KeyError(f"run {self.run_id} has no task {task_id!r}")

    def __repr__(self) -> str:
        counts = ", ".join(f"{status}={n}" for status, n in self.counts.items() if n)
        return (
            f"RunResult(run_id={self.run_id!r}, tasks={len(self.tasks)}, {counts or 'empty'}, "
            f"run_dir={str(self.run_dir)!r})"
        )

    def _repr_html_(self) -> str:
        from .views.html import result_html

        return result_html(self)

    def plot_timeline(self, ax: Axes | None = None) -> Axes:
        """One bar per task from start to finish, coloured by status (needs matplotlib)."""
        from .views.plots import plot_timeline

        return plot_timeline(self, ax=ax)

    def plot_costs(self, ax: Axes | None = None) -> Axes:
        """The cost of each task, coloured by status (needs matplotlib)."""
        from .views.plots import plot_costs

        return plot_costs(self, ax=ax)

    # -- landing the work (see docs/landing.md) -----------------------------------------------

    def conflicts(self, *, repo: str | Path | None = None) -> ConflictReport:
        """Which completed tasks changed the same files and lines, and which of them apply
        cleanly together (a trial merge in a scratch repository; the user's is only read)."""
        from .land.conflicts import find_conflicts

        return find_conflicts(self, repo=repo)

    def plot_conflicts(self, ax: Axes | None = None, *, repo: str | Path | None = None) -> Axes:
        """A heat map of :meth:`conflicts`: conflicting changes per pair of tasks."""
        from .views.plots import plot_conflicts

        return plot_conflicts(self.conflicts(repo=repo), ax=ax)

    def apply(
        self,
        task_ids: str | Sequence[str],
        *,
        branch: str | None = None,
        repo: str | Path | None = None,
    ) -> AppliedBranch:
        """Commits the tasks' changes, one commit per task, on a new branch of the repository
        (default ``parallelcc/<run_id>``) that starts at the commit the run started from. The
        working tree, the index and the checked-out branch are not touched; on a conflict
        nothing at all is changed and :class:`~parallelcc_sdk.ApplyConflictError` says where."""
        from .land.apply import apply_tasks

        return apply_tasks(self, task_ids, branch=branch, repo=repo)

    def push(
        self,
        task_id_or_branch: str,
        *,
        remote: str = "origin",
        branch: str | None = None,
        pull_request: bool = False,
        repo: str | Path | None = None,
    ) -> PushedBranch:
        """Pushes a branch to ``remote``: a branch made by :meth:`apply`, or, given a task id,
        that task's own branch (``parallelcc/<run_id>-<task_id>``, made first if needed).
        ``branch`` names it on the remote; ``pull_request=True`` then opens a pull request
        with the GitHub CLI (``gh``)."""
        from .land.push import push_branch

        return push_branch(
            self, task_id_or_branch, remote=remote, branch=branch,
            pull_request=pull_request, repo=repo,
        )

    def show(self, task_id: str) -> TaskView:
        """One task: the agent's turns, tool calls and results, the cost per turn, and its
        diff. Shown as HTML in a notebook and as text in a terminal (``print`` it)."""
        from .views.task import TaskView

        return TaskView.of(self, task_id)
