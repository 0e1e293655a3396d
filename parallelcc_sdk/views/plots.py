"""Matplotlib plots of a run: a timeline of its tasks and their costs.

Each function takes a RunResult (anything with a ``.df``) or a DataFrame in ``result.df`` form,
draws on ``ax`` (a new figure when omitted) and returns the Axes, as pandas and seaborn do, so the
plots compose with the user's own figures. In a notebook the returned Axes prints nothing as a
cell's last expression: the figure itself is what shows. matplotlib comes with the ``[notebook]``
extra and is imported on call.
"""

from __future__ import annotations

import itertools
import sys
from typing import TYPE_CHECKING, Any

from . import format as fmt
from ._style import STATUS_COLORS

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..land.conflicts import ConflictReport

__all__ = ["plot_conflicts", "plot_costs", "plot_timeline"]

_CONCURRENCY_COLOR = "#37474f"
# Starts and finishes closer than this share of the time axis are drawn as one step: the next
# task starting a few milliseconds after one finished is not a dip worth a spike on the plot.
_STEP_RESOLUTION = 0.005


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


class _ShowsItsFigure:
    """An Axes' ``_ipython_display_``: IPython then prints no ``<Axes: …>`` line for it.

    A figure made through pyplot is shown by the notebook's backend at the end of the cell, so
    there is nothing to add; any other figure would not be shown at all, so show it here.
    """

    def __init__(self, ax: Axes) -> None:
        self.ax = ax

    def __call__(self) -> None:
        figure = self.ax.figure
        if _shown_by_pyplot(figure):
            return
        from IPython.display import display

        display(figure)  # type: ignore[no-untyped-call]


def _shown_by_pyplot(figure: Figure | Any) -> bool:
    pyplot = sys.modules.get("matplotlib.pyplot")
    manager = getattr(getattr(figure, "canvas", None), "manager", None)
    return pyplot is not None and manager is not None and pyplot.fignum_exists(manager.num)


def _finish(ax: Axes) -> Axes:
    # IPython finds an instance attribute as it finds a method. A module-level class, not a
    # lambda, so that the figure can still be pickled.
    ax._ipython_display_ = _ShowsItsFigure(ax)  # type: ignore[attr-defined]
    return ax


def _legend(ax: Axes, statuses: list[str], extra: list[Artist] | None = None) -> None:
    """The legend above the plot area, right-aligned, so it never covers a bar."""
    from matplotlib.patches import Patch

    handles: list[Artist] = [
        Patch(color=STATUS_COLORS.get(s, "#9e9e9e"), label=fmt.status_label(s)) for s in statuses
    ]
    handles += extra or []
    if handles:
        ax.legend(
            handles=handles,
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
            ncol=len(handles),
            frameon=False,
            fontsize="small",
            borderaxespad=0.2,
        )


def concurrency_steps(
    starts: list[float], ends: list[float], resolution: float = 0.0
) -> tuple[list[float], list[int]]:
    """The number of tasks running over time, as the corners of a step function: at
    ``times[i]`` the count becomes ``levels[i]``. Changes less than ``resolution`` apart are
    merged into one step (their net effect), so back-to-back tasks draw a flat line."""
    changes = sorted([(t, 1) for t in starts] + [(t, -1) for t in ends])
    times: list[float] = []
    levels: list[int] = []
    level = 0
    for when, step in changes:
        level += step
        if times and when - times[-1] <= resolution:
            levels[-1] = level
        else:
            times.append(when)
            levels.append(level)
    # Merged groups can leave two corners at one level; the second adds nothing.
    kept_times: list[float] = []
    kept_levels: list[int] = []
    for when, value in zip(times, levels, strict=True):
        if not kept_levels or kept_levels[-1] != value:
            kept_times.append(when)
            kept_levels.append(value)
    return kept_times, kept_levels


def plot_timeline(data: Any, ax: Axes | None = None) -> Axes:
    """One bar per task from its start to its finish, coloured by status, over a shaded step
    curve of the number of tasks running at each moment (the run's concurrency, right axis).

    Times are seconds from the first task's start. Tasks that never started are listed but have
    no bar. Returns the Axes of the bars.
    """
    import pandas as pd
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    df = _frame(data)
    n = len(df)
    ax = _axes(ax, height=min(1.4 + 0.3 * max(n, 1), 12))
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
    ax.set_title("Task timeline", loc="left")
    ax.grid(axis="x", alpha=0.3)

    extra: list[Artist] = []
    ran = start_s.notna()
    if ran.any():
        starts, ends = start_s[ran].tolist(), end_s[ran].tolist()
        span = max(ends) - min(starts)
        times, levels = concurrency_steps(starts, ends, resolution=span * _STEP_RESOLUTION)
        twin = ax.twinx()
        twin.fill_between(
            times, levels, step="post", color=_CONCURRENCY_COLOR, alpha=0.12, linewidth=0
        )
        twin.step(times, levels, where="post", color=_CONCURRENCY_COLOR, linewidth=1, alpha=0.6)
        twin.set_ylabel("tasks running")
        twin.set_ylim(0, max(levels) + 0.5)
        twin.yaxis.set_major_locator(MaxNLocator(integer=True))
        # The curve behind the bars: the bars' axes on top, with its background moved below.
        twin.set_facecolor(ax.get_facecolor())
        twin.patch.set_visible(True)
        ax.patch.set_visible(False)
        ax.set_zorder(twin.get_zorder() + 1)
        extra.append(Line2D([], [], color=_CONCURRENCY_COLOR, label="tasks running"))
    present = [s for s in fmt.DISPLAY_ORDER if s in set(statuses)]
    _legend(ax, present, extra)
    return _finish(ax)


def plot_costs(data: Any, ax: Axes | None = None) -> Axes:
    """One bar per task with its reported cost in USD, coloured by status; the title gives the
    total. Tasks that reported no cost (e.g. plain commands) get no bar, and when no task
    reported one the plot says so instead of drawing an empty axis."""
    df = _frame(data)
    n = len(df)
    costs = df["cost_usd"].astype("float64")
    reported = int(costs.notna().sum())
    ax = _axes(ax, height=4 if reported else 1.5)
    if not reported:
        ax.set_axis_off()
        ax.set_title("Cost per task", loc="left")
        ax.text(
            0.5,
            0.5,
            f"No task reported a cost ({n} task{'s' if n != 1 else ''}): nothing to draw.\n"
            "Plain commands report none; agents such as Claude Code do.",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="#546e7a",
        )
        return _finish(ax)
    statuses = df["status"].astype(str).tolist()
    x = list(range(n))
    ax.bar(
        x,
        costs.fillna(0).tolist(),
        color=[STATUS_COLORS.get(s, "#9e9e9e") for s in statuses],
    )
    ax.set_xticks(x, df["task_id"].astype(str).tolist(), rotation=45 if n > 8 else 0, ha="right")
    ax.set_ylabel("cost (USD)")
    ax.set_ylim(bottom=0)
    title = f"Cost per task (total {fmt.total_cost(float(costs.sum(skipna=True)))})"
    if reported < n:
        title += f"; {n - reported} of {n} tasks reported no cost"
    ax.set_title(title, loc="left")
    ax.grid(axis="y", alpha=0.3)
    present = [s for s in fmt.DISPLAY_ORDER if s in set(statuses)]
    _legend(ax, present)
    return _finish(ax)


def plot_conflicts(report: ConflictReport, ax: Axes | None = None) -> Axes:
    """A heat map of ``report.matrix``: one row and one column per task with changes, each cell
    the number of conflicting changes of that pair, in the suggested order. The tasks that do
    not apply with the rest are marked ✗ on their label."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    tasks = list(report.order)
    n = len(tasks)
    size = min(2.5 + 0.45 * max(n, 1), 12)
    ax = _axes(ax, height=size if n else 1.5)
    if not n:
        ax.set_axis_off()
        ax.set_title("Conflicts", loc="left")
        ax.text(0.5, 0.5, "No completed task changed anything: nothing to compare.",
                ha="center", va="center", transform=ax.transAxes, color="#546e7a")
        return _finish(ax)
    values = report.matrix.loc[tasks, tasks].to_numpy(dtype=float)
    shown = np.where(values > 0, values, np.nan)  # no conflict: the background shows through
    top = max(float(np.nanmax(shown)) if np.isfinite(shown).any() else 1.0, 1.0)
    image = ax.imshow(shown, cmap="Reds", vmin=0, vmax=top * 1.15)
    for i, j in itertools.product(range(n), range(n)):
        if values[i, j] > 0:
            ax.text(j, i, str(int(values[i, j])), ha="center", va="center", fontsize="small",
                    color="white" if values[i, j] > top * 0.6 else "black")
    labels = [f"✗ {t}" if t in report.conflicting else t for t in tasks]
    ax.set_xticks(range(n), labels, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_yticks(range(n), labels)
    ax.set_xticks([x - 0.5 for x in range(1, n)], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, n)], minor=True)
    ax.grid(which="minor", color="#eceff1", linewidth=1)
    ax.tick_params(which="minor", length=0)
    ax.set_title(f"Conflicting changes per pair of tasks\n{report.summary()}", loc="left",
                 fontsize="medium")
    bar = ax.figure.colorbar(image, ax=ax, shrink=0.8, label="conflicting changes")
    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    return _finish(ax)
