"""Matplotlib plots of a finished run: a timeline of tasks and their costs.

Each function takes a RunResult (anything with a ``.df``) or a DataFrame in ``result.df`` form,
draws on ``ax`` (a new figure when omitted) and returns the Axes, so plots compose with the
user's own figures. matplotlib comes with the ``[notebook]`` extra and is imported on call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._style import STATUS_COLORS

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes


def _frame(data: Any) -> pd.DataFrame:
    import pandas as pd

    frame = data if isinstance(data, pd.DataFrame) else getattr(data, "df", None)
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"expected a RunResult or a DataFrame like result.df, got {type(data).__name__}"
        )
    return frame


def _axes(ax: Axes | None, height: float) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _fig, new_ax = plt.subplots(figsize=(9, height), layout="constrained")
    return new_ax


def _legend(ax: Axes, statuses: list[str], **kwargs: Any) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=STATUS_COLORS.get(s, "#9e9e9e"), label=s) for s in statuses]
    if handles:
        ax.legend(handles=handles, title="status", frameon=False, **kwargs)


def plot_timeline(data: Any, ax: Axes | None = None) -> Axes:
    """One bar per task from its start to its finish, coloured by status, with the number of tasks
    running at each moment drawn as a step line on a second axis (the run's concurrency).

    Times are seconds from the first task's start. Tasks that never started are listed but have
    no bar. Returns the Axes of the bars.
    """
    import pandas as pd

    df = _frame(data)
    n = len(df)
    ax = _axes(ax, height=min(1.2 + 0.3 * max(n, 1), 12))
    started = df["started_at"]
    if started.notna().any():
        origin = started.min()
        start_s = (started - origin).dt.total_seconds()
        end_s = (df["finished_at"] - origin).dt.total_seconds()
        # A task still running (a live handle.df) extends to the latest known moment.
        end_s = end_s.fillna(end_s.max() if end_s.notna().any() else start_s.max())
    else:
        start_s = end_s = pd.Series([float("nan")] * n, index=df.index)

    labels = df["task_id"].astype(str).tolist()
    statuses = df["status"].astype(str).tolist()
    y = list(range(n))
    widths = (end_s - start_s).clip(lower=0).fillna(0).tolist()
    lefts = start_s.fillna(0).tolist()
    colors = [STATUS_COLORS.get(s, "#9e9e9e") for s in statuses]
    ax.barh(y, widths, left=lefts, color=colors, height=0.6)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()  # first task at the top, as in the table
    ax.set_xlabel("seconds since the first task started")
    ax.set_title("Task timeline")
    ax.grid(axis="x", alpha=0.3)

    events = sorted(
        [(s, 1) for s in start_s.dropna().tolist()] + [(e, -1) for e in end_s.dropna().tolist()],
        key=lambda p: (p[0], p[1]),  # at equal times, count the finish before the start
    )
    if events:
        from matplotlib.ticker import MaxNLocator

        times, running, level = [0.0], [0], 0
        for t, step in events:
            level += step
            times.append(t)
            running.append(level)
        twin = ax.twinx()
        twin.step(times, running, where="post", color="#37474f", linewidth=1.2, alpha=0.7)
        twin.set_ylabel("tasks running")
        twin.set_ylim(0, max(running) + 1)
        twin.yaxis.set_major_locator(MaxNLocator(integer=True))
    present = [s for s in STATUS_COLORS if s in set(statuses)]
    _legend(ax, present, loc="lower right", fontsize="small")
    return ax


def plot_costs(data: Any, ax: Axes | None = None) -> Axes:
    """One bar per task with its reported cost in USD, coloured by status; the title gives the
    total. Tasks that reported no cost (e.g. plain commands) get no bar."""
    df = _frame(data)
    n = len(df)
    ax = _axes(ax, height=4)
    costs = df["cost_usd"].astype("float64")
    statuses = df["status"].astype(str).tolist()
    x = list(range(n))
    ax.bar(
        x,
        costs.fillna(0).tolist(),
        color=[STATUS_COLORS.get(s, "#9e9e9e") for s in statuses],
    )
    ax.set_xticks(x, df["task_id"].astype(str).tolist(), rotation=45 if n > 8 else 0, ha="right")
    ax.set_ylabel("cost (USD)")
    reported = int(costs.notna().sum())
    total = float(costs.sum(skipna=True))
    title = f"Cost per task (total ${total:.4f})"
    if reported < n:
        title += f" — {n - reported} of {n} tasks reported no cost"
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    present = [s for s in STATUS_COLORS if s in set(statuses)]
    _legend(ax, present, fontsize="small")
    return ax
