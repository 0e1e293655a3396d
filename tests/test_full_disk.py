"""A full disk under the output folder: the task that cannot write its files fails, saying which
file and why; the others go on; the journal records it; ``pcc.run`` never lets a raw
``OSError`` out.

Each scenario runs ``pcc.run`` in a child process, in a mount namespace of its own where a
small tmpfs is the output folder (``unshare``: as root, or as a user where user namespaces are
allowed). The mount vanishes with the child, so a failing test leaves no mount behind; the
child reports what it saw as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from support.crash import PACKAGE_ROOT
from support.gitrepo import make_repo

NO_SPACE = "no space left on device while writing"

# The scenario's common part: run `tasks` with `command`, report the result (or what was
# raised), the journal as written, and what the SDK logged.
_PRELUDE = """\
import json, logging, sys
from pathlib import Path
import parallelcc_sdk as pcc
from parallelcc_sdk.runfolder import read_journal

disk, report_path, repo = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
warnings = []
handler = logging.Handler()
handler.emit = lambda record: warnings.append(record.getMessage())
logging.getLogger("parallelcc_sdk").addHandler(handler)
report = {}

def run(prompts, command, at_once):
    out = disk / "out"
    try:
        result = pcc.run(
            prompts, repo=repo, output_dir=out, agent=pcc.Command(command),
            backend=pcc.LocalBackend(isolation="none"), max_concurrent=at_once, progress="off",
        )
    except BaseException as exc:
        report["raised"] = {
            "type": type(exc).__name__,
            "message": str(exc),
            "pcc_error": isinstance(exc, pcc.ParallelCCError),
        }
        return
    report["state"] = str(result.state)
    report["tasks"] = [
        {"id": t.task_id, "status": t.status.value, "error": t.error,
         "files_changed": t.files_changed}
        for t in result.tasks
    ]
    run_dir = result.run_dir
    report["files"] = sorted(
        p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()
    )
    journal = read_journal(run_dir)
    report["journal_state"] = journal.recorded_state.value
    report["journal"] = {t.task_id: [t.status.value, t.error] for t in journal.tasks}
"""

_REPORT = """
report["warnings"] = warnings
report_path.write_text(json.dumps(report))
"""


@pytest.fixture
def repo(tmp_path: Path, pcc_git_env: Path) -> Path:
    return make_repo(tmp_path / "repo", {"README.md": "# demo\n"})


def on_small_disk(tmp_path: Path, repo: Path, size_kib: int, scenario: str) -> dict[str, Any]:
    """Runs ``scenario`` (after the prelude) with a ``size_kib`` tmpfs as ``disk``."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "scenario.py"
    script.write_text(_PRELUDE + textwrap.dedent(scenario) + _REPORT)
    report = tmp_path / "report.json"
    namespace = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        namespace[1:1] = ["--user", "--map-root-user"]
    mount = f'mount -t tmpfs -o size={size_kib}k tmpfs "$1" && exec "$2" "$3" "$1" "$4" "$5"'
    env = {
        **os.environ,
        "TMPDIR": str(tmp_path),  # the sandboxes stay off the small disk
        "PYTHONPATH": os.pathsep.join(
            [str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    argv = [*namespace, "sh", "-c", mount, "sh", str(disk), sys.executable, str(script)]
    done = subprocess.run(
        [*argv, str(report), str(repo)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if not report.exists() and "mount" in done.stderr and done.returncode != 0:
        pytest.fail(
            "these tests need a small tmpfs in a mount namespace of their own: run them as "
            f"root, or allow user namespaces (unshare --user --mount). {done.stderr.strip()}"
        )
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(report.read_text())
    return data


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in report["tasks"]}


def test_a_task_whose_changes_do_not_fit_fails_and_the_others_go_on(
    tmp_path: Path, repo: Path
) -> None:
    # task-2 makes a 3 MB file that cannot be compressed: neither its patch nor its copy fits
    # on a 1 MiB disk. One task at a time, so the others run after it.
    report = on_small_disk(
        tmp_path,
        repo,
        1024,
        """
        command = (
            'if [ "$PARALLELCC_TASK_ID" = task-2 ]; then'
            ' head -c 3000000 /dev/urandom > big.bin; fi;'
            ' echo "$PARALLELCC_TASK_ID" > "note-$PARALLELCC_TASK_ID.txt"'
        )
        run(["a", "b", "c", "d"], command, 1)
        """,
    )
    assert "raised" not in report, report
    tasks = by_id(report)
    failed = tasks.pop("task-2")
    assert failed["status"] == "failed"
    assert failed["error"].startswith(f"change collection failed: {NO_SPACE} ")
    assert failed["error"].split(f"{NO_SPACE} ")[1].startswith(("changes.patch", "changed-files/"))
    assert "Errno" not in failed["error"]
    for task in tasks.values():
        assert (task["status"], task["error"], task["files_changed"]) == ("completed", None, 1)
        assert f"{task['id']}/changes.patch" in report["files"]
    # What could not be written was taken away again: it freed the disk for the others.
    assert not [f for f in report["files"] if f.startswith(("task-2/changes", "task-2/changed"))]
    # The journal records it, and the run ended with its summary.
    assert report["journal_state"] == "finished"
    assert report["journal"]["task-2"] == ["failed", failed["error"]]
    assert {"summary.json", "summary-report.md", "results.csv"} <= set(report["files"])


def test_a_task_whose_log_fills_the_disk_fails_saying_so(tmp_path: Path, repo: Path) -> None:
    report = on_small_disk(
        tmp_path,
        repo,
        512,
        """
        command = (
            'if [ "$PARALLELCC_TASK_ID" = task-1 ]; then yes "a line of output" | head -c 3000000;'
            ' fi; echo done'
        )
        run(["a", "b", "c"], command, 1)
        """,
    )
    assert "raised" not in report, report
    tasks = by_id(report)
    assert tasks["task-1"]["status"] == "failed"
    assert tasks["task-1"]["error"].startswith(f"{NO_SPACE} task-1/execution.log")
    # The disk stays full (the log is kept): the tasks after it fail too, each saying why.
    for task in report["tasks"]:
        assert task["status"] == "failed" and NO_SPACE in task["error"], task
        assert "Errno" not in task["error"]
    assert any("task-1/execution.log; stopping it" in w for w in report["warnings"])


def test_a_run_folder_that_fills_up_never_escapes_as_an_oserror(
    tmp_path: Path, repo: Path
) -> None:
    # 64 KiB: run.json of 40 tasks takes half of it; the journal, the logs and the records of
    # the tasks soon fill the rest.
    report = on_small_disk(
        tmp_path,
        repo,
        64,
        """
        command = 'echo working; echo "$PARALLELCC_TASK_ID" > "note-$PARALLELCC_TASK_ID.txt"'
        run([f"task {i}" for i in range(40)], command, 4)
        """,
    )
    assert "raised" not in report, report
    assert report["state"] == "finished"
    statuses = {t["status"] for t in report["tasks"]}
    assert statuses <= {"completed", "failed"}
    failed = [t for t in report["tasks"] if t["status"] == "failed"]
    assert failed, "the disk should have filled up: this test would prove nothing"
    for task in failed:
        assert task["error"].startswith((NO_SPACE, "change collection failed: " + NO_SPACE)), task
        assert "Errno" not in task["error"]
    assert any("journal of run" in w and "is behind" in w for w in report["warnings"])


def test_a_full_disk_before_the_run_starts_is_one_clear_error(
    tmp_path: Path, repo: Path
) -> None:
    report = on_small_disk(
        tmp_path,
        repo,
        64,
        """
        try:
            with open(disk / "filler", "wb") as filler:
                while True:
                    filler.write(b"x" * 4096)
                    filler.flush()
        except OSError:
            pass
        run(["a"], "true", 1)
        """,
    )
    raised = report["raised"]
    assert raised["type"] == "OutputWriteError" and raised["pcc_error"], raised
    assert "cannot hold the run's folder (no space left on device)" in raised["message"]
