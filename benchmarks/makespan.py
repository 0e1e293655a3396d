"""Makespan: N tasks of ``sleep 0.5`` at max_concurrent=20 vs the ideal and the shell pipeline.

The ideal is ceil(N / max_concurrent) x task time, what a scheduler with no overhead takes. On
the large repository each task also appends a line to one file, so there is a change to collect.
"""

from __future__ import annotations

import math

from ._common import Report, progress, run_sdk, scratch, suite_main
from ._repo import make_repo
from .shell_pipeline import run_shell_pipeline

SLEEP_S = 0.5
CONCURRENCY = 20


def run(quick: bool) -> Report:
    report = Report("makespan", quick)
    table = report.table(
        "wall time vs the ideal and the shell pipeline (same N, same repository)",
        ["repository", "files", "MB", "N", "who", "wall s", "ideal s", "÷ ideal", "÷ shell"],
    )
    isolations = ["auto"] if quick else ["none", "bubblewrap"]
    with scratch() as tmp:
        # -- a small repository: the overhead of the SDK itself
        small = make_repo(tmp / "small", 50, 50_000)
        n = 200
        ideal = math.ceil(n / CONCURRENCY) * SLEEP_S
        progress(f"small repo: shell pipeline, {n} tasks")
        shell = run_shell_pipeline(small, n, CONCURRENCY, f"sleep {SLEEP_S}", tmp / "shell-small")
        table.rows.append(
            ["small", 50, 0.05, n, "shell pipeline", shell, ideal, shell / ideal, 1.0]
        )
        for isolation in isolations:
            progress(f"small repo: SDK, isolation={isolation}, {n} tasks")
            wall, _ = run_sdk(
                small,
                n,
                f"sleep {SLEEP_S}",
                max_concurrent=CONCURRENCY,
                isolation=isolation,
                output_dir=tmp / f"out-small-{isolation}",
            )
            table.rows.append(
                [
                    "small",
                    50,
                    0.05,
                    n,
                    f"SDK ({isolation})",
                    wall,
                    ideal,
                    wall / ideal,
                    wall / shell,
                ]
            )
            report.check(
                f"small repo, N={n}, {isolation}: wall ÷ ideal",
                wall / ideal,
                1.10,
                at_most=True,
                unit="x",
            )
            report.check(
                f"small repo, N={n}, {isolation}: shell ÷ SDK",
                shell / wall,
                1.0,
                at_most=False,
                unit="x",
            )

        # -- a large repository: what grows with the repository
        files, size = (1_000, 10_000_000) if quick else (20_000, 210_000_000)
        progress(f"generating a {files}-file repository of {size // 1_000_000} MB")
        large = make_repo(tmp / "large", files, size)
        command = f'sleep {SLEEP_S} && echo "$PARALLELCC_TASK_ID" >> README.md'
        shell_n = 20 if quick else 40
        ideal = math.ceil(shell_n / CONCURRENCY) * SLEEP_S
        progress(f"large repo: shell pipeline, {shell_n} tasks")
        shell = run_shell_pipeline(
            large,
            shell_n,
            CONCURRENCY,
            f'sleep {SLEEP_S} && echo "$TASK" >> README.md',
            tmp / "shell-large",
        )
        mb = round(size / 1e6)
        table.rows.append(
            ["large", files, mb, shell_n, "shell pipeline", shell, ideal, shell / ideal, 1.0]
        )
        for isolation in isolations:
            for n in [shell_n] if quick else [shell_n, 200]:
                ideal = math.ceil(n / CONCURRENCY) * SLEEP_S
                progress(f"large repo: SDK, isolation={isolation}, {n} tasks")
                wall, result = run_sdk(
                    large,
                    n,
                    command,
                    max_concurrent=CONCURRENCY,
                    isolation=isolation,
                    output_dir=tmp / f"out-large-{isolation}-{n}",
                )
                assert result.summary.total_files_changed == n
                vs_shell = wall / shell if n == shell_n else float("nan")
                table.rows.append(
                    [
                        "large",
                        files,
                        mb,
                        n,
                        f"SDK ({isolation})",
                        wall,
                        ideal,
                        wall / ideal,
                        vs_shell,
                    ]
                )
                if n == shell_n:
                    report.check(
                        f"large repo, N={n}, {isolation}: shell ÷ SDK",
                        shell / wall,
                        10.0,
                        at_most=False,
                        unit="x",
                    )
                else:
                    report.check(
                        f"large repo, N={n}, {isolation}: wall ÷ ideal",
                        wall / ideal,
                        1.25,
                        at_most=True,
                        unit="x",
                    )
    table.notes.append(
        f"max_concurrent={CONCURRENCY}; task = sleep {SLEEP_S}"
        " (+ append a line to README.md on the large repository)"
    )
    return report


if __name__ == "__main__":
    suite_main(run)
