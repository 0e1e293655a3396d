"""Scale: 1,000 tasks at max_concurrent=100 (``true`` and ``sleep 1``).

Reports the wall time, the orchestrator's CPU seconds per task (this process's own user + system
time: the engine, the backend's bookkeeping, the output files; not the tasks and git processes it
starts), its peak resident memory, and whatever the run left behind: sandbox processes still
alive, folders in the temporary folder.
"""

from __future__ import annotations

import math

from ._common import (
    Report,
    cpu_seconds,
    left_in,
    marked_processes,
    peak_rss_mb,
    private_tempdir,
    progress,
    run_sdk,
    scratch,
    suite_main,
)
from ._repo import make_repo


def run(quick: bool) -> Report:
    report = Report("scale", quick)
    tasks, concurrency = (100, 50) if quick else (1_000, 100)
    table = report.table(
        f"{tasks} tasks at max_concurrent={concurrency}",
        [
            "command",
            "wall s",
            "ideal s",
            "CPU ms/task",
            "peak RSS MB",
            "processes left",
            "folders left",
        ],
    )
    baseline_rss = peak_rss_mb()
    with private_tempdir() as temp, scratch() as tmp:
        repo = make_repo(tmp / "repo", 20, 20_000)
        for command, seconds in (("true", 0.0), ("sleep 1", 1.0)):
            progress(f"{tasks} x {command!r}")
            cpu = cpu_seconds()
            wall, _ = run_sdk(
                repo,
                tasks,
                command,
                max_concurrent=concurrency,
                isolation="auto",
                output_dir=tmp / f"out-{command.replace(' ', '-')}",
            )
            per_task_ms = (cpu_seconds() - cpu) / tasks * 1e3
            processes = marked_processes(str(temp))
            folders = left_in(temp, {tmp.name})
            ideal = math.ceil(tasks / concurrency) * seconds
            table.rows.append(
                [command, wall, ideal, per_task_ms, peak_rss_mb(), len(processes), len(folders)]
            )
            report.check(
                f"{command!r}: orchestrator CPU per task",
                per_task_ms,
                20.0,
                at_most=True,
                unit=" ms",
            )
            report.check(
                f"{command!r}: processes and folders left",
                len(processes) + len(folders),
                0,
                at_most=True,
                unit="",
            )
    table.notes.append(
        f"peak RSS includes the interpreter, pandas and the SDK: {baseline_rss:.0f} MB before"
        " the first run; isolation='auto'"
    )
    return report


if __name__ == "__main__":
    suite_main(run)
