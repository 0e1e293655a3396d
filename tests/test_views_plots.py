"""The timeline and cost plots draw what the DataFrame says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import matplotlib
import pytest

from parallelcc_sdk.models import TaskResult, TaskStatus
from parallelcc_sdk.results import build_dataframe
from parallelcc_sdk.views._style import STATUS_COLORS
from parallelcc_sdk.views.plots import plot_costs, plot_timeline

matplotlib.use("Agg")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _task(i: int, status: TaskStatus, start: float | None, end: float | None, cost: float | None):
    return TaskResult(
        task_id=f"t{i}",
        prompt="p",
        status=status,
        started_at=None if start is None else T0 + timedelta(seconds=start),
        finished_at=None if end is None else T0 + timedelta(seconds=end),
        duration_s=None if start is None or end is None else end - start,
        cost_usd=cost,
    )


@pytest.fixture
def df():
    return build_dataframe(
        [
            _task(1, TaskStatus.COMPLETED, 0, 4, 0.10),
            _task(2, TaskStatus.FAILED, 1, 2, 0.05),
            _task(3, TaskStatus.COMPLETED, 1.5, 3, None),
            _task(4, TaskStatus.CANCELLED, None, None, None),
        ]
    )


def test_timeline_has_one_bar_per_task_coloured_by_status_and_shows_concurrency(df) -> None:
    ax = plot_timeline(df)
    bars = ax.patches
    assert len(bars) == 4
    assert [round(b.get_x(), 3) for b in bars[:3]] == [0, 1, 1.5]
    assert [round(b.get_width(), 3) for b in bars] == [4, 1, 1.5, 0]
    assert matplotlib.colors.to_hex(bars[1].get_facecolor()) == STATUS_COLORS["failed"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["t1", "t2", "t3", "t4"]
    twin = next(a for a in ax.figure.axes if a is not ax)
    (line,) = twin.get_lines()
    assert max(line.get_ydata()) == 3  # t1, t2 and t3 overlap between 1.5 s and 2 s


def test_costs_sum_reported_costs_and_name_missing_ones(df) -> None:
    ax = plot_costs(df)
    assert [round(b.get_height(), 2) for b in ax.patches] == [0.10, 0.05, 0, 0]
    assert "total $0.1500" in ax.get_title()
    assert "2 of 4 tasks reported no cost" in ax.get_title()


def test_plots_take_a_result_and_reject_other_things(df) -> None:
    class Result:
        pass

    result = Result()
    result.df = df  # type: ignore[attr-defined]
    assert len(plot_costs(result).patches) == 4
    with pytest.raises(TypeError, match="RunResult or a DataFrame"):
        plot_timeline([1, 2])
