"""The local E2B-compatible server, driven by the real, unmodified ``e2b`` SDK.

Every test gets a fresh server (``e2b_server`` / ``e2b_env`` fixtures) and talks to it only through
the SDK, configured by E2B_API_KEY / E2B_API_URL / E2B_SANDBOX_URL as a user would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from e2b import (
    AsyncSandbox,
    AuthenticationException,
    CommandExitException,
    FileNotFoundException,
    FilesystemEventType,
    FileType,
    RateLimitException,
    SandboxException,
    SandboxNotFoundException,
    SandboxNotRunningException,
    SandboxQuery,
    SandboxState,
    ServiceBusyException,
    TimeoutException,
)
from e2b.sandbox.filesystem.filesystem import WriteEntry
from e2b_server.fixtures import require_bubblewrap
from e2b_server.server import E2BTestServer

pytestmark = pytest.mark.timeout(60)

REPO_ROOT = Path(__file__).resolve().parent.parent


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    """Waits until ``check()`` is true (output of a background command arrives asynchronously)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def host_has(path: str) -> bool:
    """Whether this machine (outside every sandbox) has ``path``."""
    return os.path.lexists(path)


# -- control plane ----------------------------------------------------------------------------


async def test_create_with_template_metadata_and_envs(e2b_env: E2BTestServer) -> None:
    sbx = await AsyncSandbox.create(
        template="anthropic-claude-code",
        timeout=120,
        metadata={"parallelcc_run_id": "r1", "parallelcc_task_id": "t1"},
        envs={"GREETING": "hello"},
    )
    info = await sbx.get_info()
    assert info.sandbox_id == sbx.sandbox_id
    assert info.template_id == "anthropic-claude-code"
    assert info.metadata == {"parallelcc_run_id": "r1", "parallelcc_task_id": "t1"}
    assert info.state == SandboxState.RUNNING
    assert 115 < (info.end_at - info.started_at).total_seconds() <= 120
    result = await sbx.commands.run("echo $GREETING $E2B_SANDBOX")
    assert result.stdout == "hello true\n"
    assert e2b_env.alive() == [sbx.sandbox_id]
    assert [r.op for r in e2b_env.log.entries("create")] == ["create"]
    assert e2b_env.log.entries("create")[0].status == 201
    assert await sbx.get_metrics() == []


async def test_create_with_the_same_idempotency_key_gives_the_same_sandbox(
    e2b_env: E2BTestServer,
) -> None:
    first = await AsyncSandbox.create(idempotency_key="run-1-task-1")
    again = await AsyncSandbox.create(idempotency_key="run-1-task-1")
    other = await AsyncSandbox.create(idempotency_key="run-1-task-2")
    assert first.sandbox_id == again.sandbox_id != other.sandbox_id
    assert sorted(e2b_env.alive()) == sorted([first.sandbox_id, other.sandbox_id])


async def test_sdk_keyword_options_work_without_environment(
    e2b_server: E2BTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("E2B_API_KEY", "E2B_API_URL", "E2B_SANDBOX_URL"):
        monkeypatch.delenv(name, raising=False)
    sbx = await AsyncSandbox.create(**e2b_server.sdk_options)
    assert (await sbx.commands.run("echo ok")).stdout == "ok\n"
    assert await AsyncSandbox.kill(sbx.sandbox_id, **e2b_server.sdk_options) is True


async def test_list_filters_by_metadata_and_pages(e2b_env: E2BTestServer) -> None:
    run1 = [await AsyncSandbox.create(metadata={"run": "r1", "n": str(i)}) for i in range(3)]
    await AsyncSandbox.create(metadata={"run": "r2"})

    paginator = AsyncSandbox.list(query=SandboxQuery(metadata={"run": "r1"}))
    found = await paginator.next_items()
    assert sorted(s.sandbox_id for s in found) == sorted(s.sandbox_id for s in run1)
    assert not paginator.has_next

    pages: list[list[str]] = []
    paginator = AsyncSandbox.list(query=SandboxQuery(metadata={"run": "r1"}), limit=2)
    while paginator.has_next:
        pages.append([s.sandbox_id for s in await paginator.next_items()])
    assert [len(p) for p in pages] == [2, 1]

    await run1[0].pause()
    running = AsyncSandbox.list(
        query=SandboxQuery(metadata={"run": "r1"}, state=[SandboxState.RUNNING])
    )
    assert {s.sandbox_id for s in await running.next_items()} == {
        run1[1].sandbox_id,
        run1[2].sandbox_id,
    }


async def test_kill_ends_the_sandbox_and_later_calls_fail_as_on_e2b(
    e2b_env: E2BTestServer,
) -> None:
    sbx = await AsyncSandbox.create()
    assert await sbx.kill() is True
    assert await sbx.kill() is False
    assert e2b_env.alive() == []
    with pytest.raises(SandboxNotFoundException):
        await sbx.get_info()
    with pytest.raises(SandboxNotFoundException):
        await sbx.set_timeout(30)
    with pytest.raises(SandboxNotRunningException):
        await sbx.commands.run("true")
    with pytest.raises(SandboxNotRunningException):
        await sbx.files.read("/home/user/x")
    assert e2b_env.record(sbx.sandbox_id).end_reason == "killed"


async def test_expiry_kills_a_running_command_and_set_timeout_extends(
    e2b_env: E2BTestServer,
) -> None:
    extended = await AsyncSandbox.create(timeout=1)
    await extended.set_timeout(30)
    pausing = await AsyncSandbox.create(timeout=1, lifecycle={"on_timeout": "pause"})
    expiring = await AsyncSandbox.create(timeout=1)
    started = time.monotonic()
    with pytest.raises(SandboxNotRunningException):
        await expiring.commands.run("sleep 20")
    assert 0.8 < time.monotonic() - started < 5
    assert e2b_env.record(expiring.sandbox_id).end_reason == "timeout"
    with pytest.raises(SandboxNotFoundException):
        await expiring.get_info()
    assert (await extended.commands.run("echo still here")).stdout == "still here\n"
    assert (await pausing.get_info()).state == SandboxState.PAUSED
    await pausing.kill()
    assert e2b_env.alive() == [extended.sandbox_id]
    await extended.set_timeout(0)
    await eventually(lambda: e2b_env.alive() == [])


async def test_connect_resumes_a_paused_sandbox_with_its_files(e2b_env: E2BTestServer) -> None:
    sbx = await AsyncSandbox.create()
    await sbx.files.write("/home/user/kept.txt", "kept")
    await sbx.pause()
    assert (await sbx.get_info()).state == SandboxState.PAUSED
    with pytest.raises(SandboxNotRunningException):
        await sbx.commands.run("true")
    resumed = await AsyncSandbox.connect(sbx.sandbox_id, timeout=60)
    assert (await resumed.get_info()).state == SandboxState.RUNNING
    assert await resumed.files.read("/home/user/kept.txt") == "kept"


# -- commands ---------------------------------------------------------------------------------


async def test_foreground_command_streams_stdout_and_stderr_apart_in_order(
    e2b_env: E2BTestServer,
) -> None:
    sbx = await AsyncSandbox.create()
    out: list[str] = []
    err: list[str] = []
    script = "for i in $(seq 1 200); do echo out$i; echo err$i >&2; done"
    result = await sbx.commands.run(script, on_stdout=out.append, on_stderr=err.append)
    assert "".join(out) == "".join(f"out{i}\n" for i in range(1, 201)) == result.stdout
    assert "".join(err) == "".join(f"err{i}\n" for i in range(1, 201)) == result.stderr
    assert result.exit_code == 0


async def test_output_arrives_while_the_command_runs(e2b_env: E2BTestServer) -> None:
    sbx = await AsyncSandbox.create()
    arrivals: list[tuple[str, float]] = []
    await sbx.commands.run(
        "echo one; sleep 0.3; echo two",
        on_stdout=lambda chunk: arrivals.append((chunk, time.monotonic())),
    )
    assert [chunk for chunk, _ in arrivals] == ["one\n", "two\n"]
    assert arrivals[1][1] - arrivals[0][1] > 0.2


async def test_large_output_and_non_utf8_bytes(e2b_env: E2BTestServer) -> None:
    sbx = await AsyncSandbox.create()
    big = await sbx.commands.run("seq 1 300000")
    assert big.stdout == "".join(f"{i}\n" for i in range(1, 300001))
    assert len(big.stdout) > 1_900_000
    binary = await sbx.commands.run(r"printf 'a\377\376b\n'; printf '\200x' >&2")
    assert binary.stdout == "a\ufffd\ufffdb\n"
    assert binary.stderr == "\ufffdx"


async def test_exit_code_and_kill_are_reported_like_envd(e2b_env: E2BTestServer) -> None:
    sbx = await AsyncSandbox.create()
    with pytest.raises(CommandExitException) as failed:
        await sbx.commands.run("echo partial; exit 3")
    assert (failed.value.exit_code, failed.value.stdout) == (3, "partial\n")
    assert failed.value.error == "exit status 3"

    handle = await sbx.commands.run("sleep 30", background=True)
    assert [p.pid for p in await sbx.commands.list()] == [handle.pid]
    assert await sbx.commands.kill(handle.pid) is True
    with pytest.raises(CommandExitException) as killed:
        await handle.wait()
    assert (killed.value.exit_code, killed.value.error) == (-1, "signal: killed")
    assert await sbx.commands.list() == []
    assert await sbx.commands.kill(handle.pid) is False


async def test_background_command_with_stdin_and_a_second_listener(
    e2b_env: E2BTestServer,
) -> None:
    sbx = await AsyncSandbox.create()
    first: list[str] = []
    handle = await sbx.commands.run("cat", background=True, stdin=True, on_stdout=first.append)
    second: list[str] = []
    follower = await sbx.commands.connect(handle.pid, on_stdout=second.append)
    await sbx.commands.send_stdin(handle.pid, "hello\n")
    await eventually(lambda: "".join(first) == "hello\n" and "".join(second) == "hello\n")
    await sbx.commands.send_stdin(handle.pid, b"bytes\n")
    await sbx.commands.close_stdin(handle.pid)
    result = await handle.wait()
    assert (result.exit_code, result.stdout) == (0, "hello\nbytes\n")
    assert (await follower.wait()).stdout == "hello\nbytes\n"


async def test_command_timeout_ends_the_stream_and_the_process(e2b_env: E2BTestServer) -> None:
    sbx = await AsyncSandbox.create()
    started = time.monotonic()
    with pytest.raises(TimeoutException):
        await sbx.commands.run("sleep 30", timeout=0.5)
    assert time.monotonic() - started < 3
    await eventually(lambda: not e2b_env.registry.find(sbx.sandbox_id).commands)  # type: ignore[union-attr]


@pytest.mark.bwrap
async def test_cwd_envs_and_user_as_the_sdk_asks(e2b_env: E2BTestServer) -> None:
    require_bubblewrap(e2b_env)
    sbx = await AsyncSandbox.create(envs={"SANDBOX_VAR": "s", "BOTH": "sandbox"})
    default = await sbx.commands.run("id -un; echo $HOME; pwd")
    assert default.stdout == "user\n/home/user\n/home/user\n"
    result = await sbx.commands.run(
        "id -un; pwd; echo $SANDBOX_VAR $BOTH $ONLY_HERE; echo $HOME",
        cwd="/workspace",
        envs={"BOTH": "command", "ONLY_HERE": "c"},
        user="root",
    )
    assert result.stdout == "root\n/workspace\ns command c\n/root\n"


# -- files ------------------------------------------------------------------------------------


async def test_files_write_and_read_bytes_and_text(e2b_env: E2BTestServer) -> None:
    sbx = await AsyncSandbox.create()
    every_byte = bytes(range(256)) * 64
    await sbx.files.write("/home/user/data.bin", every_byte)
    assert bytes(await sbx.files.read("/home/user/data.bin", format="bytes")) == every_byte
    await sbx.files.write("notes/hello.txt", "héllo\n")
    assert await sbx.files.read("/home/user/notes/hello.txt") == "héllo\n"
    assert e2b_env.log.bytes_in("files.upload") >= len(every_byte)
    assert e2b_env.log.bytes_out("files.download") >= len(every_byte)
    with pytest.raises(FileNotFoundException):
        await sbx.files.read("/home/user/missing.txt")


async def test_several_files_go_up_in_one_request(e2b_env: E2BTestServer) -> None:
    sbx = await AsyncSandbox.create()
    files: list[WriteEntry] = [
        {"path": "/workspace/a.txt", "data": "a"},
        {"path": "/workspace/deep/er/b.bin", "data": b"\x00\x01"},
        {"path": "/home/user/c.txt", "data": "c"},
    ]
    infos = await sbx.files.write_files(files)
    assert [i.path for i in infos] == [f["path"] for f in files]
    assert e2b_env.log.count("files.upload") == 1
    assert await sbx.files.read("/workspace/deep/er/b.bin", format="bytes") == b"\x00\x01"
    assert e2b_env.host_path(sbx.sandbox_id, "/workspace/a.txt").read_text() == "a"  # type: ignore[union-attr]


async def test_make_dir_list_rename_and_remove(e2b_env: E2BTestServer) -> None:
    sbx = await AsyncSandbox.create()
    assert await sbx.files.make_dir("/workspace/dir/sub") is True
    assert await sbx.files.make_dir("/workspace/dir/sub") is False
    await sbx.files.write("/workspace/dir/file.txt", "12345")
    entries = await sbx.files.list("/workspace/dir")
    assert [(e.name, e.type, e.path) for e in entries] == [
        ("file.txt", FileType.FILE, "/workspace/dir/file.txt"),
        ("sub", FileType.DIR, "/workspace/dir/sub"),
    ]
    assert entries[0].size == 5
    deep = await sbx.files.list("/workspace", depth=3)
    assert {e.path for e in deep} == {
        "/workspace/dir",
        "/workspace/dir/file.txt",
        "/workspace/dir/sub",
    }
    moved = await sbx.files.rename("/workspace/dir/file.txt", "/home/user/moved.txt")
    assert moved.path == "/home/user/moved.txt"
    assert await sbx.files.exists("/workspace/dir/file.txt") is False
    await sbx.files.remove("/workspace/dir")
    assert await sbx.files.exists("/workspace/dir") is False
    assert (await sbx.files.get_info("/home/user/moved.txt")).size == 5
    with pytest.raises(SandboxException):
        await sbx.files.write("/etc/not-yours", "x")


async def test_watch_dir_reports_a_new_file(e2b_env: E2BTestServer) -> None:
    sbx = await AsyncSandbox.create()
    events: list[tuple[str, FilesystemEventType]] = []
    watch = await sbx.files.watch_dir("/workspace", lambda e: events.append((e.name, e.type)))
    await sbx.files.write("/workspace/new.txt", "x")
    await eventually(lambda: ("new.txt", FilesystemEventType.CREATE) in events)
    await watch.stop()  # type: ignore[no-untyped-call]


# -- fork -------------------------------------------------------------------------------------


async def test_fork_gives_each_child_its_own_copy(e2b_env: E2BTestServer) -> None:
    base = await AsyncSandbox.create(metadata={"run": "r1"})
    await base.files.write("/workspace/snapshot.txt", "v1")
    children = await base.fork(count=3, timeout=60)
    assert all(isinstance(c, AsyncSandbox) for c in children)
    forks = [c for c in children if isinstance(c, AsyncSandbox)]
    assert len({c.sandbox_id for c in forks} | {base.sandbox_id}) == 4
    await forks[0].files.write("/workspace/snapshot.txt", "changed in fork 0")
    for child in forks[1:]:
        assert await child.files.read("/workspace/snapshot.txt") == "v1"
    assert await base.files.read("/workspace/snapshot.txt") == "v1"
    assert e2b_env.log.count("fork") == 1
    assert {e2b_env.record(c.sandbox_id).parent_id for c in forks} == {base.sandbox_id}
    assert (await forks[1].get_info()).metadata == {"run": "r1"}


async def test_refused_fork_raises_before_any_fork(e2b_env: E2BTestServer) -> None:
    base = await AsyncSandbox.create()
    e2b_env.faults.refuse_fork()
    with pytest.raises(SandboxException) as refused:
        await base.fork(count=2)
    assert refused.value.status_code == 403
    assert e2b_env.alive() == [base.sandbox_id]


async def test_one_fork_fails_on_its_own(e2b_env: E2BTestServer) -> None:
    base = await AsyncSandbox.create()
    e2b_env.faults.fail_fork_child(1, 500)
    e2b_env.faults.fail_fork_child(2, 429)
    results = await base.fork(count=4)
    assert isinstance(results[0], AsyncSandbox) and isinstance(results[3], AsyncSandbox)
    assert type(results[1]) is SandboxException and "500" in str(results[1])
    assert isinstance(results[2], RateLimitException)
    assert len(e2b_env.alive()) == 3
    assert (await results[3].commands.run("echo fork")).stdout == "fork\n"


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exception"),
    [(429, RateLimitException), (503, ServiceBusyException), (500, SandboxException)],
)
async def test_create_errors_surface_as_the_sdk_exception(
    e2b_env: E2BTestServer, status: int, exception: type[Exception]
) -> None:
    e2b_env.faults.fail("create", status, retry=False)
    with pytest.raises(exception):
        await AsyncSandbox.create()
    assert e2b_env.alive() == []
    assert [r.status for r in e2b_env.log.entries("create")] == [status]
    assert await AsyncSandbox.create()  # the fault was used up


async def test_sdk_retries_429_and_503_by_itself(e2b_env: E2BTestServer) -> None:
    e2b_env.faults.fail("create", 429)
    e2b_env.faults.fail("create", 503)
    sbx = await AsyncSandbox.create()
    assert [r.status for r in e2b_env.log.entries("create")] == [429, 503, 201]
    assert e2b_env.alive() == [sbx.sandbox_id]


async def test_dropped_connection_is_a_transport_error(e2b_env: E2BTestServer) -> None:
    e2b_env.faults.drop("create")
    with pytest.raises(httpx.TransportError):
        await AsyncSandbox.create()
    (dropped,) = e2b_env.log.entries("create")
    assert (dropped.status, dropped.fault) == (0, "drop")
    assert e2b_env.alive() == []


async def test_bad_api_key_is_401(e2b_env: E2BTestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2B_API_KEY", "e2b_wrong")
    with pytest.raises(AuthenticationException):
        await AsyncSandbox.create()
    with pytest.raises(AuthenticationException):
        await AsyncSandbox.list().next_items()
    assert e2b_env.alive() == []
    assert [r.status for r in e2b_env.log.entries()] == [401, 401]


async def test_delayed_answers(e2b_env: E2BTestServer) -> None:
    e2b_env.faults.delay("create", 0.4, times=1)
    started = time.monotonic()
    await AsyncSandbox.create()
    assert time.monotonic() - started >= 0.4
    assert e2b_env.log.entries("create")[0].duration >= 0.4


async def test_server_kills_a_sandbox_mid_command(e2b_env: E2BTestServer) -> None:
    victim = await AsyncSandbox.create(metadata={"task": "victim"})
    bystander = await AsyncSandbox.create(metadata={"task": "bystander"})
    e2b_env.faults.kill_sandbox_during("sleep", metadata={"task": "victim"}, after=0.2)
    with pytest.raises(SandboxNotRunningException):
        await victim.commands.run("echo started; sleep 20")
    assert e2b_env.record(victim.sandbox_id).end_reason == "fault"
    assert (await bystander.commands.run("sleep 0.1; echo fine")).stdout == "fine\n"

    handle = await bystander.commands.run("sleep 20", background=True)
    assert e2b_env.kill_sandbox(bystander.sandbox_id) is True
    with pytest.raises(SandboxNotRunningException):
        await handle.wait()
    assert e2b_env.alive() == []


# -- isolation --------------------------------------------------------------------------------


@pytest.mark.bwrap
async def test_a_command_cannot_write_outside_its_sandbox(e2b_env: E2BTestServer) -> None:
    require_bubblewrap(e2b_env)
    one = await AsyncSandbox.create()
    other = await AsyncSandbox.create()
    await other.files.write("/home/user/secret.txt", "other's")
    other_folder = e2b_env.record(other.sandbox_id).folder
    marker = f"e2b-server-test-{one.sandbox_id}"
    script = f"""
        touch /etc/{marker} 2>/dev/null && echo wrote-etc
        touch /usr/{marker} 2>/dev/null && echo wrote-usr
        ls {other_folder} 2>/dev/null && echo saw-other
        ls {e2b_env.root} 2>/dev/null | grep . && echo saw-root
        cat /home/user/secret.txt 2>/dev/null && echo saw-secret
        ls /home
        echo mine > /tmp/{marker}; echo mine > /root/{marker}; echo ok
    """
    result = await one.commands.run(script, user="root")
    assert result.stdout == "user\nok\n"
    for folder in ("/etc", "/usr", "/tmp", "/root"):
        assert not host_has(f"{folder}/{marker}")
    assert e2b_env.host_path(one.sandbox_id, f"/root/{marker}", "root").read_text() == "mine\n"  # type: ignore[union-attr]


@pytest.mark.bwrap
async def test_a_planted_symlink_does_not_lead_file_calls_out(e2b_env: E2BTestServer) -> None:
    require_bubblewrap(e2b_env)
    sbx = await AsyncSandbox.create()
    await sbx.commands.run(
        "ln -s /etc/hostname /home/user/to-etc; ln -s /root /home/user/to-root", user="root"
    )
    with pytest.raises(SandboxException):
        await sbx.files.write("/home/user/to-etc", "overwritten")
    hostname = await asyncio.to_thread(Path("/etc/hostname").read_bytes)
    assert hostname != b"overwritten"
    await sbx.files.write("/home/user/to-root/inside.txt", "stays in the sandbox")
    assert not host_has("/root/inside.txt")
    assert (await sbx.commands.run("cat /root/inside.txt", user="root")).stdout == (
        "stays in the sandbox"
    )


async def test_without_bubblewrap_commands_run_in_the_sandbox_folder(tmp_path: Path) -> None:
    with E2BTestServer(tmp_path, isolation="none") as server:
        sbx = await AsyncSandbox.create(**server.sdk_options)
        await sbx.files.write("note.txt", "written by the files API")
        result = await sbx.commands.run("cat note.txt; echo; echo $HOME; pwd")
        home = server.host_path(sbx.sandbox_id, "/home/user")
        assert result.stdout == f"written by the files API\n{home}\n{home}\n"


# -- observing the server ---------------------------------------------------------------------


async def test_request_log_alive_counts_and_debug_endpoints(e2b_env: E2BTestServer) -> None:
    sandboxes = await asyncio.gather(*(AsyncSandbox.create() for _ in range(3)))
    await sandboxes[0].files.write("/workspace/x.txt", "12345")
    await asyncio.gather(*(s.kill() for s in sandboxes))
    later = await AsyncSandbox.create()
    assert e2b_env.max_alive() == 3
    assert [n for _, n in e2b_env.alive_over_time()] == [1, 2, 3, 2, 1, 0, 1]
    assert e2b_env.alive() == [later.sandbox_id]

    (upload,) = e2b_env.log.entries("files.upload")
    assert (upload.method, upload.path, upload.sandbox_id) == (
        "POST",
        "/files",
        sandboxes[0].sandbox_id,
    )
    assert upload.bytes_in > 5 and upload.bytes_out > 0 and upload.status == 200
    assert e2b_env.log.count("kill") == 3

    async with httpx.AsyncClient(base_url=e2b_env.url) as client:
        log = (await client.get("/_debug/log", params={"op": "kill"})).json()
        assert len(log) == 3 and {entry["status"] for entry in log} == {204}
        state = (await client.get("/_debug/sandboxes")).json()
        assert state["alive"] == [later.sandbox_id] and state["max_alive"] == 3
        routed_by_host = await client.get(
            "/health", headers={"host": f"49983-{later.sandbox_id}.e2b.local"}
        )
        assert routed_by_host.status_code == 204
        fault = {"kind": "fail", "op": "create", "status": 503, "retry": False}
        assert (await client.post("/_debug/faults", json=fault)).status_code == 204
        with pytest.raises(ServiceBusyException):
            await AsyncSandbox.create()
        assert (await client.post(f"/_debug/sandboxes/{later.sandbox_id}/kill")).status_code == 204
    assert e2b_env.alive() == []


def test_runs_by_hand_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("E2B_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.e2b_server", "--port", "0", "--root", str(tmp_path)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        exports: dict[str, str] = {}
        while len(exports) < 3:
            line = server.stdout.readline()
            assert line, "the server exited before printing its settings"
            if line.strip().startswith("export "):
                name, _, value = line.strip().removeprefix("export ").partition("=")
                exports[name] = value
        script = (
            "import asyncio, e2b\n"
            "async def main():\n"
            "    sbx = await e2b.AsyncSandbox.create()\n"
            "    print((await sbx.commands.run('echo by-hand')).stdout, end='')\n"
            "asyncio.run(main())\n"
        )
        client = subprocess.run(
            [sys.executable, "-c", script],
            env={**env, **exports},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert client.stdout == "by-hand\n", client.stderr
        assert any(tmp_path.iterdir())
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=15) == 0
        assert not any(tmp_path.iterdir())
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
