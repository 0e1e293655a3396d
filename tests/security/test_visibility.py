"""A task reads only what is its own, or what it needs from the host.

Attacks that used to work: task-2 read task-1's ``execution.log`` through the run's output folder;
a task read other tasks' workspaces when ``work_dir=`` or ``TMPDIR`` put them outside /tmp; a task
read the user's 0600 files (``~/.npmrc``, keys under ``$HOME``, ``/root``). Each is tried here by
two tasks running at once, against the real bubblewrap sandbox.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from support.attacks import ATTEMPT, copies, report_of
from support.e2e import bubblewrap_backend, local_run_options

import parallelcc_sdk as pcc
from parallelcc_sdk import TaskResult, TaskStatus

pytestmark = pytest.mark.bwrap

# Each task leaves a trace of its own, then waits so that both tasks are running at once.
LEAVE_TRACES = (
    'echo "log line of $PARALLELCC_TASK_ID"; echo "work of $PARALLELCC_TASK_ID" > mine.txt; '
    "sleep 1; "
)
# True when some file matching the glob holds another task's work.
READ_OTHERS = 'cat {glob} | grep -v "of $PARALLELCC_TASK_ID" | grep -q "of task-"'


def side_by_side(
    agent: pcc.Command, repo: Path, out: Path, backend: pcc.LocalBackend
) -> list[tuple[TaskResult, TaskResult]]:
    """Runs two tasks at once; each completed one paired with the other."""
    result = pcc.run(
        ["one", "two"],
        agent=agent,
        max_concurrent=2,
        **local_run_options(repo, out, backend=backend),
    )
    assert [t.status for t in result.tasks] == [TaskStatus.COMPLETED] * 2, result.df.error
    return list(zip(result.tasks, reversed(result.tasks), strict=True))


def sees_itself_not_the_other(
    listing_file: Path, record: TaskResult, other: TaskResult
) -> list[str]:
    """The folder listing a task wrote: its own sandbox is there, the other task's is not."""
    listing = listing_file.read_text().split()
    assert (record.sandbox_id or "").removeprefix("local:") in listing
    assert (other.sandbox_id or "").removeprefix("local:") not in listing
    return listing


def test_a_task_sees_neither_the_run_outputs_nor_other_sandboxes(
    tmp_path: Path, pcc_repo: Path, repo_untouched: Callable[[], None]
) -> None:
    out = tmp_path / "results"
    agent = pcc.Command(
        ATTEMPT
        + LEAVE_TRACES
        + f'ls -A "{out}" > outputs-listing.txt; ls -A /tmp > tmp-listing.txt; '
        f"attempt read-other-log '{READ_OTHERS.format(glob=f'{out}/*/*/execution.log')}'; "
        f"attempt write-outputs 'echo pwned > \"{out}/pwned\"'; "
        f"attempt read-other-workspace '{READ_OTHERS.format(glob='/tmp/parallelcc-*/*/mine.txt')}'"
    )
    for record, other in side_by_side(agent, pcc_repo, out, bubblewrap_backend()):
        assert report_of(record) == {
            "read-other-log": "denied",
            "write-outputs": "denied",
            "read-other-workspace": "denied",
        }
        assert (copies(record) / "outputs-listing.txt").read_text() == ""
        sees_itself_not_the_other(copies(record) / "tmp-listing.txt", record, other)
        # The other task's outputs are intact.
        log = (Path(other.output_path or "") / "execution.log").read_text()
        assert log == f"log line of {other.task_id}\n"
    assert not (out / "pwned").exists()
    repo_untouched()


@pytest.mark.parametrize("where", ["work_dir", "TMPDIR"])
def test_other_sandboxes_stay_hidden_wherever_they_are_made(
    where: str,
    tmp_path: Path,
    pcc_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    repo_untouched: Callable[[], None],
) -> None:
    place = tmp_path / "sandboxes"
    place.mkdir()
    # What else lives there is the host's, and stays readable (as in /tmp).
    (place / "host-notes.txt").write_text("host file\n")
    if where == "TMPDIR":
        monkeypatch.setenv("TMPDIR", str(place))
        monkeypatch.setattr(tempfile, "tempdir", None)  # so that gettempdir() reads TMPDIR again
        backend = pcc.LocalBackend(isolation="bubblewrap")
    else:
        backend = pcc.LocalBackend(isolation="bubblewrap", work_dir=place)
    bubblewrap_backend()  # fails loudly where bubblewrap is missing
    others = f"{place}/parallelcc-*/*/mine.txt"
    agent = pcc.Command(
        ATTEMPT
        + LEAVE_TRACES
        + f'ls -A "{place}" > listing.txt; '
        f"attempt read-other-workspace '{READ_OTHERS.format(glob=others)}'; "
        f"attempt write-other-workspace 'for d in \"{place}\"/parallelcc-*/workspace; do "
        f"[ \"$d\" = \"$PWD\" ] || echo pwned > \"$d/pwned\"; done; ls \"{place}\"/*/*/pwned'; "
        f"attempt read-host-file 'grep -q \"host file\" \"{place}/host-notes.txt\"'"
    )
    for record, other in side_by_side(agent, pcc_repo, tmp_path / "results", backend):
        assert report_of(record) == {
            "read-other-workspace": "denied",
            "write-other-workspace": "denied",
            "read-host-file": "done",
        }
        listing = sees_itself_not_the_other(copies(record) / "listing.txt", record, other)
        assert "host-notes.txt" in listing
        assert "pwned" not in json.dumps(record.changed_paths)
    repo_untouched()


def test_a_task_cannot_read_the_users_home_yet_runs_the_tools_installed_there(
    tmp_path: Path,
    pcc_repo: Path,
    pcc_git_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    repo_untouched: Callable[[], None],
) -> None:
    home = pcc_git_env  # $HOME for this test
    secrets = {
        ".npmrc": "//registry.npmjs.org/:_authToken=npm_0123456789abcdef\n",
        ".ssh/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\nnot really\n",
        # A kernel's connection file: its key would let code run outside the sandbox.
        ".local/share/jupyter/runtime/kernel-1.json": '{"key": "hmac-secret-0123456789"}\n',
    }
    for rel, text in secrets.items():
        path = home / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o600)
    tool = home / ".local" / "bin" / "pcc-home-tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho tool ran\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    backend = bubblewrap_backend()  # made after HOME and PATH are set, as a user's would be
    reads = " ".join(f"attempt read:{rel} 'cat \"{home / rel}\"';" for rel in secrets)
    agent = pcc.Command(
        ATTEMPT
        + reads
        + "attempt run-home-tool 'pcc-home-tool | grep -q \"tool ran\"'; "
        "attempt run-python 'python3 -c \"print(1)\"'; "
        f'ls -A /root > root-listing.txt; ls -A "{home}" > home-listing.txt'
    )
    result = pcc.run(
        ["peek"], agent=agent, **local_run_options(pcc_repo, tmp_path / "results", backend=backend)
    )
    record = result.tasks[0]
    assert record.status is TaskStatus.COMPLETED, record.error
    verdicts = report_of(record)
    assert verdicts == {
        **{f"read:{rel}": "denied" for rel in secrets},
        "run-home-tool": "done",
        "run-python": "done",
    }
    # Only the tool folders that PATH and the SDK's Python need are left of the homes.
    exposed = [Path(p) for p in backend.describe()["exposed"]]
    shown_in_root = (copies(record) / "root-listing.txt").read_text().split()
    assert sorted(shown_in_root) == sorted(p.name for p in exposed if p.parent == Path("/root"))
    assert (copies(record) / "home-listing.txt").read_text().split() == [".local"]
    log = (Path(record.output_path or "") / "execution.log").read_text()
    assert "npm_0123456789abcdef" not in log and "hmac-secret" not in log
    repo_untouched()


def test_what_is_hidden_and_exposed_is_configurable_and_recorded(
    tmp_path: Path, pcc_repo: Path, pcc_git_env: Path, repo_untouched: Callable[[], None]
) -> None:
    data = tmp_path / "customer-data"
    data.mkdir()
    (data / "customers.csv").write_text("alice,bob\n")
    shared = pcc_git_env / "shared-models"
    shared.mkdir()
    (shared / "model.txt").write_text("weights\n")
    bubblewrap_backend()
    backend = pcc.LocalBackend(isolation="bubblewrap", hide=[data], expose=[shared])
    agent = pcc.Command(
        ATTEMPT
        + f"attempt read-hidden 'cat \"{data}/customers.csv\"'; "
        f"attempt read-exposed 'grep -q weights \"{shared}/model.txt\"'; "
        f"attempt write-exposed 'echo pwned > \"{shared}/model.txt\"'"
    )
    result = pcc.run(
        ["x"], agent=agent, **local_run_options(pcc_repo, tmp_path / "results", backend=backend)
    )
    record = result.tasks[0]
    assert record.status is TaskStatus.COMPLETED, record.error
    assert report_of(record) == {
        "read-hidden": "denied",
        "read-exposed": "done",
        "write-exposed": "denied",
    }
    assert (shared / "model.txt").read_text() == "weights\n"
    config = json.loads((result.run_dir / "run.json").read_text())["config"]["backend"]
    assert str(data) in config["hidden"] and str(pcc_git_env) in config["hidden"]
    assert str(shared) in config["exposed"]
    repo_untouched()


def test_bad_hide_and_expose_values_are_one_sentence_errors() -> None:
    with pytest.raises(pcc.ValidationError, match=r"hide=\.\.\.\) must be a list of paths"):
        pcc.LocalBackend(hide="/opt/data")  # type: ignore[arg-type]
    with pytest.raises(pcc.ValidationError, match=r"expose=\.\.\.\) holds 3"):
        pcc.LocalBackend(expose=[3])  # type: ignore[list-item]


def test_a_task_reads_its_own_runs_snapshot_but_not_another_runs(
    tmp_path: Path, pcc_repo: Path, repo_untouched: Callable[[], None]
) -> None:
    # What a run that is still going (or died) keeps in its scratch folder, beside this run's.
    place = tmp_path / "sandboxes"
    other_run = place / "parallelcc-run.another-run.ab12"
    (other_run / "snapshot.git").mkdir(parents=True)
    (other_run / "snapshot.git" / "secret.txt").write_text("work of task-x\n")
    backend = pcc.LocalBackend(isolation="bubblewrap", work_dir=place)
    bubblewrap_backend()  # fails loudly where bubblewrap is missing
    agent = pcc.Command(
        ATTEMPT
        + f'ls -A "{place}" > listing.txt; '
        # The workspace borrows the run's snapshot objects: git must be able to read them.
        "attempt read-own-snapshot 'git cat-file -e refs/parallelcc/base^{commit}'; "
        f"attempt read-other-run 'cat \"{other_run}/snapshot.git/secret.txt\"'; "
        f"attempt write-own-snapshot 'for d in \"{place}\"/parallelcc-run.*/snapshot.git; do "
        'touch "$d/objects/pwned" && exit 0; done; exit 1\''
    )
    result = pcc.run(["one"], agent=agent, **local_run_options(pcc_repo, tmp_path / "out",
                                                              backend=backend))
    record = result.tasks[0]
    assert record.status is TaskStatus.COMPLETED, record.error
    assert report_of(record) == {
        "read-own-snapshot": "done",
        "read-other-run": "denied",
        "write-own-snapshot": "denied",
    }
    listing = (copies(record) / "listing.txt").read_text().split()
    assert other_run.name not in listing
    assert any(name.startswith(f"parallelcc-run.{result.run_id}.") for name in listing)
    repo_untouched()
