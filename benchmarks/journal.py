"""The run journal's cost per task state change, at N = 100 / 1,000 / 10,000 tasks.

Each task goes through the updates the engine writes (running, sandbox id, completed). Three ways
to record them are timed, as the time the caller (the event loop) spends per update:

- rewrite:  the whole run.json rewritten atomically at each update (the former journal);
- append:   one line appended to journal.jsonl, unbuffered, on the caller's thread (the SDK's);
- thread:   the line handed to a background writer thread through a queue (the alternative).

Then reading back: ``load_run`` of the unfinished run (replaying every line) and ``list_runs``
of the finished one. Run:

    python benchmarks/journal.py [--sizes 100 1000 10000] [--rewrite-samples 40]
"""

from __future__ import annotations

import argparse
import json
import queue
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from parallelcc_sdk.models import TaskResult, TaskStatus
from parallelcc_sdk.runfolder import list_runs, load_run
from parallelcc_sdk.runfolder.codec import TASK_FIELDS, encode_journal_line, task_fields_to_json
from parallelcc_sdk.runfolder.writer import RunJournal, write_json_atomic

CONFIG = {"max_concurrent": 8, "backend": {"name": "local"}, "agent": {"name": "claude"}}


def make_tasks(n: int) -> list[TaskResult]:
    prompt = "Refactor the module and add tests for every public function. " * 4
    return [
        TaskResult(task_id=f"task-{i}", prompt=prompt, metadata={"repo": f"r{i % 7}", "i": i})
        for i in range(1, n + 1)
    ]


def updates_of(task: TaskResult) -> list[TaskResult]:
    now = datetime.now(UTC)
    running = task.replace(status=TaskStatus.RUNNING, started_at=now, attempts=1)
    opened = running.replace(sandbox_id=f"local-{task.task_id}")
    done = opened.replace(
        status=TaskStatus.COMPLETED,
        exit_code=0,
        finished_at=now,
        duration_s=61.5,
        files_changed=3,
        lines_added=40,
        lines_removed=7,
        cost_usd=0.0421,
        input_tokens=12000,
        output_tokens=900,
        num_turns=6,
        last_output="All tests pass.",
        changed_paths=("src/a.py", "src/b.py", "tests/test_a.py"),
    )
    return [running, opened, done]


class ThreadedJournal(RunJournal):
    """The alternative: lines are encoded and written by one background thread."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._queue: queue.SimpleQueue[tuple[str, dict[str, object]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def update(self, result: TaskResult) -> None:
        previous = self._records.get(result.task_id)
        assert previous is not None
        names = [n for n in TASK_FIELDS if getattr(previous, n) != getattr(result, n)]
        self._records[result.task_id] = result
        self._queue.put((result.task_id, {n: getattr(result, n) for n in names}))

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            task_id, fields = item
            record = self._records[task_id]
            changed = task_fields_to_json(record, fields)
            assert self._lines is not None
            self._lines.write(encode_journal_line(task_id, changed))

    def flush(self) -> None:
        self._queue.put(None)
        self._thread.join()


def time_updates(journal: RunJournal, updates: list[TaskResult]) -> float:
    started = time.perf_counter()
    for update in updates:
        journal.update(update)
    return (time.perf_counter() - started) / len(updates)


def measure(n: int, rewrite_samples: int) -> dict[str, float]:
    tasks = make_tasks(n)
    updates = [u for t in tasks for u in updates_of(t)]
    row: dict[str, float] = {"tasks": n, "updates": len(updates)}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        # The former journal: run.json rewritten at each update (sampled: it is slow).
        old_dir = root / "rewrite"
        old_dir.mkdir()
        old = RunJournal(old_dir, "old", CONFIG, tasks)
        old.write()
        sample = updates[:: max(1, len(updates) // rewrite_samples)][:rewrite_samples]
        started = time.perf_counter()
        for update in sample:
            old._records[update.task_id] = update
            write_json_atomic(old.path, old.to_json())
        row["rewrite_us"] = (time.perf_counter() - started) / len(sample) * 1e6

        run_dir = root / "append"
        run_dir.mkdir()
        journal = RunJournal(run_dir, "append", CONFIG, tasks)
        journal.write()
        row["append_us"] = time_updates(journal, updates) * 1e6

        threaded_dir = root / "thread"
        threaded_dir.mkdir()
        threaded = ThreadedJournal(threaded_dir, "thread", CONFIG, tasks)
        threaded.write()
        started = time.perf_counter()
        row["thread_us"] = time_updates(threaded, updates) * 1e6
        threaded.flush()
        row["thread_drained_us"] = (time.perf_counter() - started) / len(updates) * 1e6

        row["line_bytes"] = (run_dir / "journal.jsonl").stat().st_size / len(updates)
        # Reading back the unfinished run: run.json plus every journal line.
        started = time.perf_counter()
        loaded = load_run(run_dir)
        row["load_unfinished_ms"] = (time.perf_counter() - started) * 1e3
        assert [t.status for t in loaded.tasks] == [TaskStatus.COMPLETED] * n

        started = time.perf_counter()
        journal.finish("finished")
        row["finish_ms"] = (time.perf_counter() - started) * 1e3
        listed = root / "listed"
        listed.mkdir()
        run_dir.rename(listed / "append")
        started = time.perf_counter()
        (info,) = list_runs(listed)
        row["list_finished_ms"] = (time.perf_counter() - started) * 1e3
        assert info.counts["completed"] == n
    return row


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--rewrite-samples", type=int, default=40)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    rows = [measure(n, args.rewrite_samples) for n in args.sizes]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    base = rows[0]
    n0 = f"{base['tasks']:,.0f}"
    print("Per update, on the caller's thread (µs); ratio: to the same column at N=" + n0)
    print()
    print("| tasks  | rewrite | ratio | append | ratio | bytes/line | thread (caller) | ratio "
          "| thread (drained) |")
    print("|-------:|--------:|------:|-------:|------:|-----------:|----------------:|------:"
          "|-----------------:|")
    for row in rows:
        print(
            f"| {row['tasks']:>6,.0f} | {row['rewrite_us']:>7,.0f} "
            f"| {row['rewrite_us'] / base['rewrite_us']:>5.1f} | {row['append_us']:>6.1f} "
            f"| {row['append_us'] / base['append_us']:>5.2f} | {row['line_bytes']:>10.0f} "
            f"| {row['thread_us']:>15.1f} | {row['thread_us'] / base['thread_us']:>5.2f} "
            f"| {row['thread_drained_us']:>16.1f} |"
        )
    print()
    print("Once per run or per read (ms)")
    print()
    print("| tasks  | load_run, unfinished (replay) | finish (final run.json) "
          "| list_runs, finished |")
    print("|-------:|------------------------------:|------------------------:"
          "|--------------------:|")
    for row in rows:
        print(
            f"| {row['tasks']:>6,.0f} | {row['load_unfinished_ms']:>29.1f} "
            f"| {row['finish_ms']:>23.1f} | {row['list_finished_ms']:>19.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
