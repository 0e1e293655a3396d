"""The timeline and cost plots draw what the DataFrame says, read at a glance (a flat concurrency
curve, a legend clear of the bars), and print no ``<Axes …>`` line in a notebook."""

from __future__ import annotations

import os
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.figure import Figure
from support.jupyter import execute, write_venv_kernelspec

from parallelcc_sdk.models import TaskResult, TaskStatus
from parallelcc_sdk.results import build_dataframe
from parallelcc_sdk.views._style import STATUS_COLORS
from parallelcc_sdk.views.plots import concurrency_steps, plot_costs, plot_timeline

matplotlib.use("Agg")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _task(
    i: int, status: TaskStatus, start: float | None, end: float | None, cost: float | None
) -> TaskResult:
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
def df() -> pd.DataFrame:
    return build_dataframe(
        [
            _task(1, TaskStatus.COMPLETED, 0, 4, 0.10),
            _task(2, TaskStatus.FAILED, 1, 2, 0.05),
            _task(3, TaskStatus.COMPLETED, 1.5, 3, None),
            _task(4, TaskStatus.CANCELLED, None, None, None),
        ]
    )


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    yield
    plt.close("all")


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
    assert ax.get_zorder() > twin.get_zorder()  # the bars are drawn over the shaded curve


def back_to_back(slots: int, rounds: int, gap: float) -> list[TaskResult]:
    """``slots`` tasks at a time, each next one starting ``gap`` seconds after one finished."""
    tasks = []
    for r in range(rounds):
        for s in range(slots):
            start = r * (10 + gap) + s * 0.01
            tasks.append(_task(len(tasks) + 1, TaskStatus.COMPLETED, start, start + 10, None))
    return tasks


def test_back_to_back_tasks_draw_a_flat_step_not_a_comb_of_spikes() -> None:
    ax = plot_timeline(build_dataframe(back_to_back(slots=3, rounds=12, gap=0.005)))
    twin = next(a for a in ax.figure.axes if a is not ax)
    (line,) = twin.get_lines()
    levels = list(line.get_ydata())
    # Up to 3 (the starts 10 ms apart are one step on a two-minute axis), flat, then down.
    assert levels == [3, 0]
    assert line.get_drawstyle() == "steps-post"


def test_concurrency_steps_keep_real_changes() -> None:
    assert concurrency_steps([0, 1], [3, 2]) == ([0, 1, 2, 3], [1, 2, 1, 0])
    # A dip that lasts a real while is kept, one shorter than the resolution is merged away.
    assert concurrency_steps([0, 5], [4, 9], resolution=0.1) == ([0, 4, 5, 9], [1, 0, 1, 0])
    assert concurrency_steps([0, 4.05], [4, 9], resolution=0.1) == ([0, 9], [1, 0])
    assert concurrency_steps([], []) == ([], [])


def test_the_legend_sits_outside_the_bars(df) -> None:
    ax = plot_timeline(build_dataframe(back_to_back(slots=3, rounds=4, gap=1)))
    figure = ax.figure
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    legend = ax.get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["completed", "tasks running"]
    legend_box = legend.get_window_extent(renderer)
    plot_box = ax.get_window_extent(renderer)
    assert legend_box.y0 >= plot_box.y1 - 1  # above the plot area, not over a bar


def test_costs_sum_reported_costs_and_name_missing_ones(df) -> None:
    ax = plot_costs(df)
    assert [round(b.get_height(), 2) for b in ax.patches] == [0.10, 0.05, 0, 0]
    title = ax.get_title(loc="left")
    assert "total $0.1500" in title
    assert "2 of 4 tasks reported no cost" in title


def test_costs_with_no_cost_reported_say_there_is_nothing_to_draw() -> None:
    commands = build_dataframe(
        [_task(i, TaskStatus.COMPLETED, 0, 1, None) for i in range(1, 4)]
    )
    ax = plot_costs(commands)
    assert not ax.patches  # no bars, and no empty axis from -0.04 to 0.04
    assert not ax.axison
    (text,) = ax.texts
    assert "No task reported a cost (3 tasks): nothing to draw." in text.get_text()


def test_plots_take_a_result_and_reject_other_things(df) -> None:
    class Result:
        pass

    result = Result()
    result.df = df  # type: ignore[attr-defined]
    assert len(plot_costs(result).patches) == 4
    with pytest.raises(TypeError, match="RunResult or a DataFrame"):
        plot_timeline([1, 2])


def test_a_plot_as_a_cells_last_expression_shows_no_axes_repr(df) -> None:
    from IPython.core.formatters import DisplayFormatter

    formatter = DisplayFormatter()
    # A pyplot figure is shown by the notebook's backend: the returned Axes adds nothing.
    assert formatter.format(plot_timeline(df)) == ({}, {})
    assert formatter.format(plot_costs(df)) == ({}, {})
    # Drawn into the user's own axes, it still returns them (they are the same object).
    _fig, own = plt.subplots()
    assert plot_timeline(df, ax=own) is own


def test_a_plot_on_a_figure_outside_pyplot_shows_that_figure(
    df, monkeypatch: pytest.MonkeyPatch
) -> None:
    import IPython.display

    shown: list[Any] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    figure = Figure()
    ax = plot_timeline(df, ax=figure.add_subplot())
    ax._ipython_display_()  # type: ignore[attr-defined]
    assert shown == [figure]  # no backend would show it otherwise


def test_a_plotted_figure_still_pickles(df) -> None:
    ax = plot_timeline(df)
    copy = pickle.loads(pickle.dumps(ax.figure))
    assert len(copy.axes) == 2


@pytest.mark.kernel
def test_in_a_kernel_the_plot_is_an_image_and_no_axes_line(df, tmp_path: Path) -> None:
    from jupyter_client.manager import start_new_kernel

    write_venv_kernelspec(tmp_path, "venv")
    csv = tmp_path / "results.csv"
    df.to_csv(csv, index=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARALLELCC_", "MPL"))}
    env["JUPYTER_PATH"] = str(tmp_path)
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=env)
    try:
        cell = execute(
            kc,
            "import pandas as pd\n"
            "from parallelcc_sdk.views.plots import plot_timeline\n"
            f"df = pd.read_csv({str(csv)!r}, parse_dates=['started_at', 'finished_at'])\n"
            "plot_timeline(df)",
        )
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert cell.error is None, cell.error
    outputs = cell.outputs
    assert [o["type"] for o in outputs] == ["display_data"], outputs
    assert "image/png" in outputs[0]["data"]
