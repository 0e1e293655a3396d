"""The terminal display of ``parallelcc run`` in a real pseudo-terminal, read back through a
terminal emulator (pyte) at 60, 80 and 200 columns: no line wider than the terminal, no stale
copies of the redrawn region, the summary on the final screen. And off a terminal: no control
characters.

Two emulators read the same bytes: one the size of the pseudo-terminal (what the user sees), and a
much wider and taller one that never wraps or scrolls, where a line that is too long shows as too
long and every copy of the region ever left on screen stays visible.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pexpect
import pyte
import pytest
from support.cli import PARALLELCC, Cli, task_args

SCREENS = Path(__file__).resolve().parents[2] / "docs" / "cli-screens"
BAR = re.compile(r" \d+/\d+ done · ")
ROW = re.compile(r"^[·▶✓✗⊘⏱] (task-\d+) ")

# Six lines of output per task, 0.25 s apart; task-3 fails after them.
STEPS = (
    'for i in 1 2 3 4 5 6; do echo "step $i of $PARALLELCC_TASK_ID: editing src/module_$i.py '
    'and running its tests"; sleep 0.25; done; '
    '[ "$PARALLELCC_TASK_ID" != task-3 ] || '
    '{ echo "AssertionError: expected 3, got 4" >&2; exit 1; }'
)


@dataclass
class Terminal:
    """A pseudo-terminal of ``cols`` x ``rows`` running ``parallelcc``, read by two emulators."""

    cols: int
    rows: int
    screen: pyte.Screen = field(init=False)
    transcript: pyte.Screen = field(init=False)

    def __post_init__(self) -> None:
        self.screen = pyte.Screen(self.cols, self.rows)
        self.transcript = pyte.Screen(self.cols * 4, 1000)
        self._streams = [pyte.ByteStream(self.screen), pyte.ByteStream(self.transcript)]

    def feed(self, data: bytes) -> None:
        for stream in self._streams:
            stream.feed(data)

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def transcript_lines(self) -> list[str]:
        lines = [line.rstrip() for line in self.transcript.display]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def check(self) -> None:
        """What must hold at every moment: nothing too wide, one copy of the region."""
        lines = self.transcript_lines()
        too_wide = [line for line in lines if len(line) > self.cols]
        assert not too_wide, f"lines wider than {self.cols} columns: {too_wide}"
        bars = [line for line in lines if BAR.search(line)]
        assert len(bars) <= 1, f"stale copies of the progress bar: {bars}"
        region = lines[: self._summary_start(lines)]
        ids = [m.group(1) for line in region if (m := ROW.match(line))]
        assert len(ids) == len(set(ids)), f"stale task rows: {ids}"

    @staticmethod
    def _summary_start(lines: list[str]) -> int:
        return next((i for i, line in enumerate(lines) if line.startswith("Run ")), len(lines))


def drive(
    cli: Cli,
    args: list[str],
    cols: int,
    rows: int,
    on_screen: Callable[[Terminal, pexpect.spawn], None] | None = None,
    timeout: float = 60,
) -> tuple[Terminal, int]:
    """Runs ``parallelcc args`` in a pseudo-terminal until it exits, checking every screen."""
    env = dict(cli.env, TERM="xterm-256color")
    child = pexpect.spawn(
        str(PARALLELCC), args, cwd=str(cli.repo), env=env, dimensions=(rows, cols)
    )
    term = Terminal(cols, rows)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                term.feed(child.read_nonblocking(65536, timeout=0.1))
            except pexpect.TIMEOUT:
                pass
            except pexpect.EOF:
                break
            term.check()
            if on_screen is not None:
                on_screen(term, child)
        else:
            raise AssertionError(f"parallelcc did not end within {timeout}s:\n" + dump(term))
    finally:
        child.close(force=True)
    term.check()
    assert child.exitstatus is not None, child.signalstatus
    return term, child.exitstatus


def dump(term: Terminal) -> str:
    return "\n".join(term.lines())


def updating_screens() -> bool:
    return os.environ.get("PARALLELCC_UPDATE_DOCS_SCREENS") == "1"


def save_screen(name: str, term: Terminal, *, everything: bool = False) -> None:
    """Writes the screen (or the whole session) to docs/cli-screens/, only on request, so that a
    test run leaves the work tree clean."""
    if updating_screens():
        SCREENS.mkdir(parents=True, exist_ok=True)
        text = "\n".join(term.transcript_lines()) if everything else dump(term)
        (SCREENS / name).write_text(text.rstrip("\n") + "\n", encoding="utf-8")


@pytest.mark.parametrize("cols", [60, 80, 200])
def test_live_display_fits_the_terminal_and_ends_with_the_summary(cli: Cli, cols: int) -> None:
    rows = 24
    if cols == 80 and updating_screens():
        # A short, plain results path for the docs' dumps (the tests' own paths are long).
        cli.output_dir = Path(tempfile.gettempdir()) / "app" / "parallel-results"
        shutil.rmtree(cli.output_dir, ignore_errors=True)
    args = cli.command_run(STEPS, *task_args([f"task {n}" for n in range(1, 6)]))
    mid: list[list[str]] = []

    def on_screen(term: Terminal, child: pexpect.spawn) -> None:
        # Mid-run: task-3 has failed, two others still run (each with its last output line).
        lines = term.lines()
        running = [line for line in lines if line.startswith("▶ task-") and " step " in line]
        if not mid and len(running) >= 2 and any(line.startswith("✗ task-3") for line in lines):
            mid.append(lines)
            if cols == 80:
                save_screen("run-80x24-mid.txt", term)

    term, status = drive(cli, args, cols, rows, on_screen)
    assert status == 1  # task-3 failed
    assert mid, "never saw two tasks running after task-3 failed:\n" + dump(term)
    during = "\n".join(mid[0])
    took = r"(\d+\.\ds|\d+m \d\ds)"  # as every view writes a duration: 2.4s, 1m 05s
    assert re.search(rf" [0-4]/5 done · {took} · ETA {took} · cost not reported", during) or (
        cols < 80  # the bar line is cut to the width
    )
    # How many finished before task-3 depends on the machine's load; the counts line is exact.
    assert re.search(r"(✓ [12] completed  )?✗ 1 failed  ▶ [2-4] running", during), during

    run_dir = cli.only_run_dir()
    # The final screen shows the summary (its first lines scroll off a short, narrow terminal).
    text = dump(term)
    assert "Time saved" in text and "Cost                 not reported" in text
    assert re.search(r"^Report\b", text, re.MULTILINE)
    assert str(run_dir / "summary-report.md") in "".join(term.lines())  # folded when too long
    assert "✗ task-3 failed" in text and "AssertionError: expected 3, got 4" in text
    everything = "\n".join(term.transcript_lines())
    headline = f"Run {run_dir.name} finished: 5 tasks  ✓ 4 completed  ✗ 1 failed"
    assert everything.count(headline[: cols - 1]) == 1
    # The run folder below the final frame, once.
    assert len(re.findall(r"^Results:", everything, re.MULTILINE)) == 1
    assert "results in" in everything  # and above the region at the start
    if cols == 80:
        save_screen("run-80x24-end.txt", term)
        save_screen("run-80x24-scrollback.txt", term, everything=True)


def test_more_tasks_than_rows_lists_running_and_failed_ones(cli: Cli) -> None:
    rows = 12
    args = cli.command_run(
        'sleep 0.3; [ "$PARALLELCC_TASK_ID" != task-2 ] || exit 1',
        *task_args([f"t{n}" for n in range(1, 21)]),
        "--max-concurrent",
        "4",
    )
    seen_note: list[str] = []

    def on_screen(term: Terminal, child: pexpect.spawn) -> None:
        lines = term.lines()
        note = [line for line in lines if line.startswith("not listed: ")]
        if note and not any(line.startswith("Run ") for line in lines):
            seen_note.append(note[0])
            region = lines[next(i for i, line in enumerate(lines) if BAR.search(line)) :]
            region = [line for line in region if line]
            assert len(region) <= rows - 1, region

    term, status = drive(cli, args, 80, rows, on_screen)
    assert status == 1
    assert seen_note and "pending" in seen_note[0]
    assert "finished: 20 tasks" in "\n".join(term.transcript_lines())


def test_ctrl_c_in_the_terminal(cli: Cli) -> None:
    args = cli.command_run("echo working; sleep 30", *task_args(["a", "b", "c"]))
    interrupted: list[bool] = []

    def on_screen(term: Terminal, child: pexpect.spawn) -> None:
        lines = term.lines()
        running = sum(1 for line in lines if line.startswith("▶ task-") and "working" in line)
        if not interrupted and running == 3:
            interrupted.append(True)
            child.sendintr()

    term, status = drive(cli, args, 80, 24, on_screen)
    assert status == 130
    text = dump(term)
    assert "SIGINT received" in text
    assert "interrupted: 3 tasks" in text and "3 cancelled" in text
    assert cli.leftovers(cli.only_run_dir()) == ([], [])


def test_off_a_terminal_there_are_no_control_characters(cli: Cli) -> None:
    command = (
        r'printf "\033[31mred\033[0m \033]0;title\007 bell\a tab\t cr\r\n"; '
        r'[ "$PARALLELCC_TASK_ID" = task-1 ] || '
        r'{ printf "\033[1mbold error\033[0m\n" >&2; exit 2; }'
    )
    done = cli.run(*cli.command_run(command, *task_args(["one", "two"])))
    assert done.returncode == 1
    for name, text in (("stdout", done.stdout), ("stderr", done.stderr)):
        controls = sorted(
            {f"{ord(c):#04x}" for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0}
        )
        assert not controls, f"control characters on {name}: {controls}\n{text}"
    assert "[1/2]" in done.stderr or "[2/2]" in done.stderr  # one line per state change
    assert "bold error" in done.stdout  # the failed task's error, cleaned, in the summary
