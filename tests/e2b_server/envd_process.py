"""envd's process service (``process.Process``): start, follow, list, feed and signal commands.

Served with the SDK's own generated Connect stubs, so the wire format (Connect protocol, JSON
codec, stream envelopes, error bodies) is exactly what its client expects. Streams end the way
envd ends them: an ``end`` event with Go's exit status; DEADLINE_EXCEEDED (and the process
killed) when the call's ``connect-timeout-ms`` runs out; UNAVAILABLE when the sandbox dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from typing import Any

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext
from e2b.envd.process import process_pb as pb
from e2b.envd.process.process_connect import Process
from protobuf import Oneof

from .envd_common import keepalive_interval, one_of, rpc_sandbox, rpc_user
from .faults import Faults
from .processes import Command, Event
from .sandboxes import Registry, Sandbox

SIGNALS = {pb.Signal.SIGKILL: signal.SIGKILL, pb.Signal.SIGTERM: signal.SIGTERM}


def _start_event(pid: int) -> pb.ProcessEvent:
    return pb.ProcessEvent(event=one_of("start", pb.ProcessEvent.StartEvent(pid=pid)))


def _to_proto(event: Event) -> pb.ProcessEvent:
    kind, value = event
    if kind == "stdout" or kind == "stderr":
        assert isinstance(value, bytes)
        data = pb.ProcessEvent.DataEvent(output=one_of(kind, value))
        return pb.ProcessEvent(event=one_of("data", data))
    assert kind == "end" and value is not None and not isinstance(value, bytes)
    end = pb.ProcessEvent.EndEvent(
        exit_code=value.exit_code, exited=value.exited, status=value.status, error=value.error
    )
    return pb.ProcessEvent(event=one_of("end", end))


_KEEPALIVE = pb.ProcessEvent(event=one_of("keepalive", pb.ProcessEvent.KeepAlive()))


class ProcessService(Process):
    def __init__(self, registry: Registry, faults: Faults) -> None:
        self.registry = registry
        self.faults = faults

    def _command(self, sandbox: Sandbox, selector: pb.ProcessSelector | None) -> Command:
        choice = selector.selector if selector is not None else None
        pid = choice.value if choice is not None and choice.field == "pid" else None
        tag = choice.value if choice is not None and choice.field == "tag" else None
        command = self.registry.find_command(sandbox, pid, tag)
        if command is None:
            what = f"pid {pid}" if pid is not None else f"tag {tag!r}"
            raise ConnectError(Code.NOT_FOUND, f"process with {what} not found")
        return command

    async def _follow(
        self,
        sandbox: Sandbox,
        command: Command,
        queue: asyncio.Queue[Event],
        ctx: RequestContext[Any, Any],
        *,
        kill_on_deadline: bool,
    ) -> AsyncIterator[pb.ProcessEvent]:
        """The command's events for one stream, with keepalives and the call's deadline."""
        interval = keepalive_interval(ctx.request_headers)
        try:
            while True:
                remaining = ctx.timeout_ms
                wait = interval if remaining is None else min(interval, remaining / 1000)
                try:
                    event = await asyncio.wait_for(queue.get(), max(0.0, wait))
                except TimeoutError:
                    remaining = ctx.timeout_ms
                    if remaining is not None and remaining <= 0:
                        if kill_on_deadline:
                            # envd ties the process to the Start call's deadline.
                            command.send_signal(signal.SIGKILL)
                        raise ConnectError(
                            Code.DEADLINE_EXCEEDED, "context deadline exceeded"
                        ) from None
                    yield _KEEPALIVE
                    continue
                if event[0] == "lost":
                    raise ConnectError(
                        Code.UNAVAILABLE,
                        f"the connection to sandbox {sandbox.sandbox_id} ended before the "
                        "stream completed",
                    )
                yield _to_proto(event)
                if event[0] == "end":
                    return
        finally:
            command.unlisten(queue)

    async def start(
        self, request: pb.StartRequest, ctx: RequestContext[pb.StartRequest, pb.StartResponse]
    ) -> AsyncIterator[pb.StartResponse]:
        sandbox = rpc_sandbox(self.registry, ctx.request_headers)
        user = rpc_user(ctx.request_headers)
        if request.pty is not None:
            raise ConnectError(Code.UNIMPLEMENTED, "PTY is not served by the local E2B server")
        config = request.process or pb.ProcessConfig()
        if not config.cmd:
            raise ConnectError(Code.INVALID_ARGUMENT, "process.cmd is required")
        cwd = config.cwd if config.has_field("cwd") and config.cwd else user.home
        resolved = sandbox.layout.resolve(cwd, user)
        if resolved.host is None or not resolved.host.is_dir():
            raise ConnectError(Code.INVALID_ARGUMENT, f"cwd '{cwd}' does not exist")
        command = await self.registry.start_command(
            sandbox,
            user=user,
            cmd=config.cmd,
            args=config.args,
            envs=config.envs,
            cwd=resolved.path,
            host_cwd=resolved.host,
            # Absent means true: older SDKs always kept stdin open.
            stdin=request.stdin if request.has_field("stdin") else True,
            tag=request.tag if request.has_field("tag") else None,
        )
        queue = command.listen()
        command.run()
        kill_after = self.faults.kill_delay(
            sandbox.sandbox_id, sandbox.metadata, command.command_line
        )
        if kill_after is not None:
            self.registry.schedule_kill(sandbox, kill_after, reason="fault")
        yield pb.StartResponse(event=_start_event(command.pid))
        async for event in self._follow(sandbox, command, queue, ctx, kill_on_deadline=True):
            yield pb.StartResponse(event=event)

    async def connect(
        self,
        request: pb.ConnectRequest,
        ctx: RequestContext[pb.ConnectRequest, pb.ConnectResponse],
    ) -> AsyncIterator[pb.ConnectResponse]:
        sandbox = rpc_sandbox(self.registry, ctx.request_headers)
        command = self._command(sandbox, request.process)
        queue = command.listen()
        yield pb.ConnectResponse(event=_start_event(command.pid))
        async for event in self._follow(sandbox, command, queue, ctx, kill_on_deadline=False):
            yield pb.ConnectResponse(event=event)

    async def list(
        self, request: pb.ListRequest, ctx: RequestContext[pb.ListRequest, pb.ListResponse]
    ) -> pb.ListResponse:
        sandbox = rpc_sandbox(self.registry, ctx.request_headers)
        return pb.ListResponse(
            processes=[
                pb.ProcessInfo(
                    config=pb.ProcessConfig(cmd=c.cmd, args=c.args, envs=c.envs, cwd=c.cwd),
                    pid=c.pid,
                    tag=c.tag,
                )
                for c in sandbox.commands.values()
            ]
        )

    async def send_input(
        self,
        request: pb.SendInputRequest,
        ctx: RequestContext[pb.SendInputRequest, pb.SendInputResponse],
    ) -> pb.SendInputResponse:
        sandbox = rpc_sandbox(self.registry, ctx.request_headers)
        command = self._command(sandbox, request.process)
        await self._write(command, request.input)
        return pb.SendInputResponse()

    async def stream_input(
        self,
        request: AsyncIterator[pb.StreamInputRequest],
        ctx: RequestContext[pb.StreamInputRequest, pb.StreamInputResponse],
    ) -> pb.StreamInputResponse:
        sandbox = rpc_sandbox(self.registry, ctx.request_headers)
        command: Command | None = None
        async for message in request:
            event = message.event.value if message.event is not None else None
            if isinstance(event, pb.StreamInputRequest.StartEvent):
                command = self._command(sandbox, event.process)
            elif isinstance(event, pb.StreamInputRequest.DataEvent):
                if command is None:
                    raise ConnectError(Code.FAILED_PRECONDITION, "start event expected first")
                await self._write(command, event.input)
        return pb.StreamInputResponse()

    async def _write(self, command: Command, data: pb.ProcessInput | None) -> None:
        match data.input if data is not None else None:
            case Oneof(field="stdin", value=chunk):
                if not command.has_stdin:
                    raise ConnectError(
                        Code.FAILED_PRECONDITION, "the process was started without stdin"
                    )
                try:
                    await command.write_stdin(chunk)
                except (BrokenPipeError, ConnectionResetError) as exc:
                    raise ConnectError(Code.FAILED_PRECONDITION, f"stdin is closed: {exc}") from exc
            case _:
                raise ConnectError(Code.UNIMPLEMENTED, "only stdin input is served (no PTY)")

    async def send_signal(
        self,
        request: pb.SendSignalRequest,
        ctx: RequestContext[pb.SendSignalRequest, pb.SendSignalResponse],
    ) -> pb.SendSignalResponse:
        sandbox = rpc_sandbox(self.registry, ctx.request_headers)
        command = self._command(sandbox, request.process)
        sig = SIGNALS.get(request.signal)
        if sig is None:
            raise ConnectError(Code.INVALID_ARGUMENT, f"unsupported signal {request.signal}")
        command.send_signal(sig)
        return pb.SendSignalResponse()

    async def close_stdin(
        self,
        request: pb.CloseStdinRequest,
        ctx: RequestContext[pb.CloseStdinRequest, pb.CloseStdinResponse],
    ) -> pb.CloseStdinResponse:
        sandbox = rpc_sandbox(self.registry, ctx.request_headers)
        command = self._command(sandbox, request.process)
        with contextlib.suppress(OSError):
            command.close_stdin()
        return pb.CloseStdinResponse()
