"""Runs eight tasks in parallel against a small sample repository, on the local backend.

No account and no network are needed: the "agent" is examples/toy_agent.py, run through
``pcc.Command``. Swap in ``agent=pcc.ClaudeCode()`` (the default) to use Claude Code.

    python examples/quickstart.py [--output-dir DIR]
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

import parallelcc_sdk as pcc

TASKS = [
    "append README.md: Run the tests with `pytest`.",
    "create src/app/config.py: DEBUG = False",
    "replace src/app/main.py: print('hello') => print('hello, world')",
    "rename docs/old name.md => docs/usage.md",
    "delete src/app/legacy.py",
    "create tests/test_main.py: def test_truth():\n    assert True",
    "append CHANGELOG.md: - Added a config module.",
    "fail: this task fails on purpose, to show how failures are reported",
]


def make_sample_repo(root: Path) -> Path:
    repo = root / "sample-repo"
    files = {
        "README.md": "# Sample\n",
        "CHANGELOG.md": "# Changelog\n",
        "src/app/main.py": "print('hello')\n",
        "src/app/legacy.py": "OLD = True\n",
        "docs/old name.md": "How to use it.\n",
    }
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git = ["git", "-c", "user.name=Sample", "-c", "user.email=sample@example.com"]
    subprocess.run([*git, "init", "--quiet"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "Initial commit"], cwd=repo, check=True)
    return repo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="./parallel-results")
    args = parser.parse_args()

    agent_script = Path(__file__).with_name("toy_agent.py").resolve()
    agent = pcc.Command(f"{shlex.quote(sys.executable)} {shlex.quote(str(agent_script))}")
    with tempfile.TemporaryDirectory(prefix="parallelcc-sample-") as tmp:
        repo = make_sample_repo(Path(tmp))
        result = pcc.run(
            TASKS, repo=repo, agent=agent, max_concurrent=4, output_dir=args.output_dir
        )

    summary = result.summary
    print(f"\nRun {summary.run_id}: {summary.success_count}/{summary.total_tasks} completed, "
          f"{summary.failure_count} failed, in {summary.total_duration_s:.1f}s "
          f"({summary.time_saved_s:.1f}s saved by running in parallel)")
    columns = ["task_id", "status", "duration_s", "files_changed", "lines_added",
               "lines_removed", "error"]
    with pd.option_context("display.width", 160, "display.max_colwidth", 60):
        print(result.df[columns].to_string(index=False))
    print(f"\nReport: {result.report_path}")
    print(f"Patches and logs: {result.run_dir}/task-N/")
    # One task fails on purpose, so the example succeeds when exactly the others completed.
    return 0 if summary.success_count == len(TASKS) - 1 else 1


if __name__ == "__main__":
    sys.exit(main())
