"""A third backend and a third agent, each written here against the public API alone.

``FolderBackend`` runs commands on this machine in a plain copied folder (no git checkout,
no worktree), using the shared collection command and unpack routine; it passes the core of
the backend conformance suite and runs ``pcc.run`` end to end. ``JsonLinesAgent`` is an agent
whose command prints JSON events; its progress, metrics and secrets flow through a real run.
Nothing outside this file knows about either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from conformance import checks
from conformance.harness import Harness, open_harness
from support.e2e import local_run_options
from support.gitrepo import make_repo

import parallelcc_sdk as pcc

pytestmark = pytest.mark.usefixtures("pcc_git_env")

# ------------------------------------------------------------------------------------------------
# The third backend


class FolderBackend(pcc.Backend):
    """Each sandbox is a folder holding a plain copy of the snapshot's files."""

    name = "folder"

    def __init__(
        self, work_dir: Path, *, transient_opens: int = 0, broken: str | None = None
    ) -> None:
        self.work_dir = work_dir
        self.transient_opens = transient_opens
        self.broken = broken  # "open" or "collect": that step fails for good
        self.runs_started = 0
        self.runs_ended = 0
        self.specs: list[pcc.SandboxSpec] = []

    @property
    def runs_on_host(self) -> bool:
        return True

    def scratch_parent(self) -> Path | None:
        return self.work_dir

    async def start_run(self, run: pcc.RunSpec) -> pcc.PreparedRun:
        self.runs_started += 1
        return await super().start_run(run)

    async def end_run(self, run: pcc.PreparedRun) -> None:
        self.runs_ended += 1
        await super().end_run(run)

    async def open(self, spec: pcc.SandboxSpec) -> pcc.Sandbox:
        self.specs.append(spec)
        if self.transient_opens > 0:
            self.transient_opens -= 1
            raise pcc.TransientBackendError("429 Too Many Requests: sandbox creation rate limit")
        if self.broken == "open":
            raise RuntimeError("the sandbox service said no")
        root = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="box-", dir=self.work_dir))
        return FolderSandbox(root, spec, fail_collect=self.broken == "collect")


class FolderSandbox(pcc.Sandbox):
    def __init__(self, root: Path, spec: pcc.SandboxSpec, *, fail_collect: bool) -> None:
        self.root = root
        self.spec = spec
        self.fail_collect = fail_collect
        self.sandbox_id = f"folder:{root.name}"
        self.workspace = root / "ws"
        self.home = root / "home"
        self.closed = 0

    @property
    def context(self) -> pcc.AgentContext:
        return pcc.AgentContext(workspace=str(self.workspace), home=str(self.home))

    def describe(self) -> Mapping[str, Any]:
        return {"folder": str(self.root)}

    async def prepare(self) -> None:
        self.workspace.mkdir()
        self.home.mkdir()
        snapshot = self.spec.snapshot
        git_archive = ("git", "--git-dir", str(snapshot.git_dir), "archive", snapshot.commit)
        await _run(f"{_quote(git_archive)} | tar -x -C {_quote([str(self.workspace)])}")

    async def exec(self, invocation: pcc.Invocation, on_line: pcc.LineHandler) -> int:
        await asyncio.to_thread(_write_files, invocation.files)
        env = {**os.environ, **invocation.env, "HOME": str(self.home)}
        proc = await asyncio.create_subprocess_exec(
            *invocation.argv,
            cwd=self.workspace,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdin and proc.stdout and proc.stderr

        async def feed(writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                writer.write(invocation.stdin)
                await writer.drain()
                writer.close()

        async def pump(reader: asyncio.StreamReader, stream: pcc.Stream) -> None:
            splitter = pcc.LineSplitter()
            while chunk := await reader.read(65536):
                for line in splitter.feed(chunk):
                    on_line(stream, line)
            for line in splitter.finish():
                on_line(stream, line)

        try:
            await asyncio.gather(
                feed(proc.stdin), pump(proc.stdout, "stdout"), pump(proc.stderr, "stderr")
            )
            return await proc.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise

    async def collect(self, dest: Path) -> pcc.ChangeStats:
        if self.fail_collect:
            raise pcc.ChangeCollectionError("change collection failed: the disk went away")
        snapshot = self.spec.snapshot
        out = self.root / "collect"
        shutil.rmtree(out, ignore_errors=True)
        argv = pcc.collect_command(
            str(self.workspace),
            snapshot.commit,
            str(out),
            object_dirs=[str(d) for d in snapshot.object_dirs],
            exclude_file=str(snapshot.exclude_file) if snapshot.exclude_file.exists() else None,
        )
        await _run(_quote(argv))
        return await asyncio.to_thread(pcc.unpack_changes, out / "changes.tar", dest)

    async def close(self) -> None:
        self.closed += 1
        await asyncio.to_thread(shutil.rmtree, self.root, True)


def _write_files(files: Sequence[pcc.SandboxFile]) -> None:
    for file in files:
        Path(file.path).parent.mkdir(parents=True, exist_ok=True)
        Path(file.path).write_bytes(file.content)
        os.chmod(file.path, file.mode)


def _quote(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


async def _run(script: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", script, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(err.decode(errors="replace"))


# -- the core of the conformance suite --------------------------------------------------------


@pytest.fixture
async def harness(tmp_path: Path, work_dir: Path) -> AsyncIterator[Harness]:
    async with open_harness(FolderBackend(work_dir), tmp_path) as h:
        yield h


async def test_folder_backend_prepares_the_snapshot(harness: Harness) -> None:
    await checks.check_prepare_fills_the_workspace_with_the_snapshot(harness)


async def test_folder_backend_streams_output(harness: Harness) -> None:
    await checks.check_exec_streams_lines_in_order_with_stdout_and_stderr_apart(harness)
    await checks.check_exec_carries_a_ten_megabyte_line_and_invalid_utf8(harness)
    await checks.check_exec_passes_stdin_env_files_and_the_exit_code(harness)


# A plain folder has no .git: the scenarios that need git in the workspace do not apply.
CORE_SCENARIOS = [s for s in checks.SCENARIOS if not s.needs_git]


@pytest.mark.parametrize("scenario", CORE_SCENARIOS, ids=[s.name for s in CORE_SCENARIOS])
async def test_folder_backend_collects_the_change_matrix(
    harness: Harness, scenario: checks.Scenario
) -> None:
    await checks.check_collect_scenario(harness, scenario)


async def test_folder_backend_closes_twice(harness: Harness) -> None:
    await checks.check_close_is_safe_twice_and_after_async_with(harness)
    await checks.check_collect_twice_replaces_the_earlier_copies(harness)


# -- end to end --------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"notes.txt": "start\n", "old.txt": "old\n"})


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def run_on(
    backend: FolderBackend,
    repo: Path,
    command: str,
    prompts: Sequence[str] = ("x",),
    **options: Any,
) -> pcc.RunResult:
    return pcc.run(
        list(prompts),
        agent=pcc.Command(command),
        **local_run_options(repo, backend.work_dir.parent / "results", backend=backend, **options),
    )


def test_a_run_on_the_folder_backend(repo: Path, work_dir: Path) -> None:
    backend = FolderBackend(work_dir)
    result = run_on(
        backend,
        repo,
        'echo "$PARALLELCC_TASK_ID" >> notes.txt; rm old.txt; echo done',
        ["one", "two", "three"],
        task_timeout=120,
        max_concurrent=2,
    )
    assert result.success, result.df[["task_id", "status", "error"]]
    for record in result.tasks:
        assert record.changed_paths == ("notes.txt",)
        assert record.deleted_paths == ("old.txt",)
        assert (record.files_changed, record.lines_added, record.lines_removed) == (2, 1, 1)
        assert record.sandbox_id and record.sandbox_id.startswith("folder:")
        assert record.sandbox_info["folder"].startswith(str(work_dir))
        copy = Path(record.output_path or "") / "changed-files" / "notes.txt"
        assert copy.read_text() == f"start\n{record.task_id}\n"
        metadata = json.loads((Path(record.output_path or "") / "metadata.json").read_text())
        assert metadata["deleted_paths"] == ["old.txt"]
    assert pcc.load_run(result.run_dir).tasks[0].deleted_paths == ("old.txt",)
    # The run's work was done once; every attempt got its labels and time limit.
    assert (backend.runs_started, backend.runs_ended) == (1, 1)
    assert sorted(os.listdir(work_dir)) == []
    for spec in backend.specs:
        assert spec.run_id == result.run_id and spec.time_limit_s == 120
        assert spec.labels == {
            "parallelcc_run_id": result.run_id,
            "parallelcc_task_id": spec.task_id,
            "parallelcc_attempt": "1",
        }


def test_a_transient_backend_failure_is_retried(repo: Path, work_dir: Path) -> None:
    backend = FolderBackend(work_dir, transient_opens=1)
    result = run_on(backend, repo, "echo hi > hi.txt", retries=1, retry_backoff_s=0.01)
    (record,) = result.tasks
    assert (record.status, record.attempts, record.error) == (pcc.TaskStatus.COMPLETED, 2, None)
    assert [s.attempt for s in backend.specs] == [1, 2]
    assert backend.specs[1].labels["parallelcc_attempt"] == "2"
    log = (Path(record.output_path or "") / "execution.log").read_text()
    assert "transient failure; retrying" in log


def test_a_transient_backend_failure_without_retries_left_is_the_tasks_failure(
    repo: Path, work_dir: Path
) -> None:
    result = run_on(FolderBackend(work_dir, transient_opens=5), repo, "true")
    (record,) = result.tasks
    assert (record.status, record.attempts) == (pcc.TaskStatus.FAILED, 1)
    assert "TransientBackendError: 429 Too Many Requests" in (record.error or "")


def test_any_other_backend_failure_is_final(repo: Path, work_dir: Path) -> None:
    backend = FolderBackend(work_dir, broken="open")
    result = run_on(backend, repo, "true", retries=3, retry_backoff_s=0.01)
    (record,) = result.tasks
    assert (record.status, record.attempts) == (pcc.TaskStatus.FAILED, 1)
    assert record.error == "RuntimeError: the sandbox service said no"


def test_a_task_whose_changes_cannot_be_collected_is_not_completed(
    repo: Path, work_dir: Path
) -> None:
    result = run_on(FolderBackend(work_dir, broken="collect"), repo, "echo work > work.txt")
    (record,) = result.tasks
    assert record.status is pcc.TaskStatus.FAILED
    assert record.exit_code == 0
    assert record.error == "change collection failed: the disk went away"
    assert record.files_changed is None
    assert not result.success


# ------------------------------------------------------------------------------------------------
# The third agent


class JsonLinesAgent(pcc.Agent):
    """Runs a script that prints one JSON event per line: ``turn`` events, then a ``result``."""

    name = "json-lines"

    def __init__(self, token: str) -> None:
        self.token = token

    def secrets(self) -> tuple[str, ...]:
        return (self.token,)

    def invocation(self, task: pcc.Task, context: pcc.AgentContext) -> pcc.Invocation:
        config = f"{context.home}/.jsonagent/config"
        script = (
            'test "$(cat "$1")" = "token=$AGENT_TOKEN" || exit 3; '
            """echo '{"type": "turn", "n": 1, "cost": 0.01, "tool": "Write"}'; """
            'cat > answer.txt; echo "using $AGENT_TOKEN" >&2; '
            """echo '{"type": "turn", "n": 2, "cost": 0.02, "tool": "Edit"}'; """
            """printf '{"type": "result", "cost": 0.03, "in": 120, "out": 45, "turns": 2, """
            """"text": "wrote answer.txt with %s"}\\n' """
            '"$AGENT_TOKEN"'
        )
        return pcc.Invocation(
            argv=("/bin/sh", "-c", script, "json-agent", config),
            stdin=task.prompt.encode(),
            env={"AGENT_TOKEN": self.token},
            files=(pcc.SandboxFile(config, f"token={self.token}".encode(), 0o600),),
            secrets=(self.token,),
        )

    def parser(self, task: pcc.Task) -> pcc.OutputParser:
        return _JsonLinesParser()


class _JsonLinesParser(pcc.OutputParser):
    def __init__(self) -> None:
        self.result: dict[str, Any] | None = None

    def feed(self, stream: pcc.Stream, line: str) -> Sequence[pcc.Progress]:
        if stream != "stdout":
            return ()
        event = json.loads(line)
        if event["type"] == "turn":
            return (
                pcc.Progress(
                    message=f"turn {event['n']} · {event['tool']}",
                    raw=event,
                    data={"turn": event["n"], "tool": event["tool"]},
                    cost_usd=event["cost"],
                ),
            )
        self.result = event
        return (pcc.Progress(message="done", raw=event, cost_usd=event["cost"], final=True),)

    def finish(self, exit_code: int | None) -> pcc.AgentOutcome:
        if exit_code != 0 or self.result is None:
            return pcc.AgentOutcome(pcc.TaskStatus.FAILED, error=f"exit code {exit_code}")
        result = self.result
        metrics = pcc.AgentMetrics(
            cost_usd=result["cost"],
            input_tokens=result["in"],
            output_tokens=result["out"],
            num_turns=result["turns"],
            final_text=result["text"],
        )
        return pcc.AgentOutcome(pcc.TaskStatus.COMPLETED, metrics=metrics)


def test_a_run_with_the_third_agent(repo: Path, tmp_path: Path) -> None:
    token = "tok-6c1f0e9a2b7d4c3e"
    events: list[pcc.Event] = []
    result = pcc.run(
        ["the answer is 42"],
        agent=JsonLinesAgent(token),
        listeners=[events.append],
        **local_run_options(repo, tmp_path / "results"),
    )
    (record,) = result.tasks
    assert record.status is pcc.TaskStatus.COMPLETED, record.error
    assert (record.cost_usd, record.input_tokens, record.output_tokens, record.num_turns) == (
        0.03,
        120,
        45,
        2,
    )
    assert record.final_text == "wrote answer.txt with [REDACTED]"
    assert record.last_output == "done"
    task_dir = Path(record.output_path or "")
    assert (task_dir / "changed-files" / "answer.txt").read_text() == "the answer is 42"
    raw_events = [json.loads(line) for line in (task_dir / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in raw_events] == ["turn", "turn", "result"]
    progress = [e for e in events if e.type is pcc.EventType.TASK_PROGRESS]
    assert [e.data.get("tool") for e in progress] == ["Write", "Edit", None]
    # The token never reaches the run folder.
    for path in result.run_dir.rglob("*"):
        if path.is_file():
            assert token not in path.read_text(errors="replace"), path
    df = result.df
    assert df.loc[0, "cost_usd"] == 0.03 and df.loc[0, "num_turns"] == 2
