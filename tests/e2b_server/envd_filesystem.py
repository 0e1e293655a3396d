"""envd's filesystem service (``filesystem.Filesystem``): stat, list, make dir, remove, move, and
a polling directory watch, on the SDK's own generated Connect stubs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext
from e2b.envd.filesystem import filesystem_pb as pb
from e2b.envd.filesystem.filesystem_connect import Filesystem
from protobuf.wkt import Timestamp

from .envd_common import keepalive_interval, one_of, rpc_sandbox, rpc_user
from .sandbox_files import Entry, FileError, SandboxFiles, Snapshot
from .sandboxes import Registry

WATCH_POLL_S = 0.1
_CODES = {
    "not_found": Code.NOT_FOUND,
    "permission": Code.PERMISSION_DENIED,
    "invalid": Code.INVALID_ARGUMENT,
    "exists": Code.ALREADY_EXISTS,
}
_KINDS = {"file": pb.FileType.FILE, "dir": pb.FileType.DIRECTORY, "other": pb.FileType.UNSPECIFIED}
T = TypeVar("T")


def entry_info(entry: Entry) -> pb.EntryInfo:
    return pb.EntryInfo(
        name=entry.name,
        type=_KINDS[entry.kind],
        path=entry.path,
        size=entry.size,
        mode=entry.mode,
        permissions=entry.permissions,
        owner=entry.owner,
        group=entry.owner,
        modified_time=Timestamp.from_nanos(entry.mtime_ns),
        symlink_target=entry.symlink_target,
        metadata=entry.metadata,
        is_symlink=entry.is_symlink,
    )


class FilesystemService(Filesystem):
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _files(self, ctx: RequestContext[Any, Any]) -> SandboxFiles:
        sandbox = rpc_sandbox(self.registry, ctx.request_headers)
        return SandboxFiles(sandbox.layout, rpc_user(ctx.request_headers))

    @staticmethod
    async def _run(call: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(call)
        except FileError as exc:
            raise ConnectError(_CODES[exc.kind], exc.message) from exc
        except OSError as exc:
            raise ConnectError(Code.INTERNAL, f"{exc.strerror or exc}: {exc.filename}") from exc

    async def stat(
        self, request: pb.StatRequest, ctx: RequestContext[pb.StatRequest, pb.StatResponse]
    ) -> pb.StatResponse:
        files = self._files(ctx)
        entry = await self._run(lambda: files.entry(request.path))
        return pb.StatResponse(entry=entry_info(entry))

    async def list_dir(
        self,
        request: pb.ListDirRequest,
        ctx: RequestContext[pb.ListDirRequest, pb.ListDirResponse],
    ) -> pb.ListDirResponse:
        files = self._files(ctx)
        entries = await self._run(lambda: files.list_dir(request.path, request.depth))
        return pb.ListDirResponse(entries=[entry_info(e) for e in entries])

    async def make_dir(
        self,
        request: pb.MakeDirRequest,
        ctx: RequestContext[pb.MakeDirRequest, pb.MakeDirResponse],
    ) -> pb.MakeDirResponse:
        files = self._files(ctx)
        entry = await self._run(lambda: files.make_dir(request.path))
        return pb.MakeDirResponse(entry=entry_info(entry))

    async def remove(
        self, request: pb.RemoveRequest, ctx: RequestContext[pb.RemoveRequest, pb.RemoveResponse]
    ) -> pb.RemoveResponse:
        files = self._files(ctx)
        await self._run(lambda: files.remove(request.path))
        return pb.RemoveResponse()

    async def move(
        self, request: pb.MoveRequest, ctx: RequestContext[pb.MoveRequest, pb.MoveResponse]
    ) -> pb.MoveResponse:
        files = self._files(ctx)
        entry = await self._run(lambda: files.move(request.source, request.destination))
        return pb.MoveResponse(entry=entry_info(entry))

    async def watch_dir(
        self,
        request: pb.WatchDirRequest,
        ctx: RequestContext[pb.WatchDirRequest, pb.WatchDirResponse],
    ) -> AsyncIterator[pb.WatchDirResponse]:
        """Compares the folder every 100 ms and reports what appeared, changed or went."""
        files = self._files(ctx)
        recursive = request.recursive
        resolved, before = await self._run(
            lambda: files.snapshot(request.path, recursive=recursive)
        )
        interval = keepalive_interval(ctx.request_headers)
        yield pb.WatchDirResponse(event=one_of("start", pb.WatchDirResponse.StartEvent()))
        quiet = 0.0
        while True:
            remaining = ctx.timeout_ms
            if remaining is not None and remaining <= 0:
                raise ConnectError(Code.DEADLINE_EXCEEDED, "context deadline exceeded")
            await asyncio.sleep(WATCH_POLL_S)
            rpc_sandbox(self.registry, ctx.request_headers)
            try:
                _, after = await asyncio.to_thread(
                    files.snapshot, resolved.path, recursive=recursive
                )
            except FileError:
                after = {}
            events = _changes(before, after)
            before = after
            for name, kind in events:
                entry = None
                if request.include_entry and kind != pb.EventType.REMOVE:
                    try:
                        entry = entry_info(files.entry(f"{resolved.path}/{name}"))
                    except FileError:
                        entry = None
                event = pb.FilesystemEvent(name=name, type=kind, entry=entry)
                yield pb.WatchDirResponse(event=one_of("filesystem", event))
            quiet = 0.0 if events else quiet + WATCH_POLL_S
            if quiet >= interval:
                quiet = 0.0
                yield pb.WatchDirResponse(
                    event=one_of("keepalive", pb.WatchDirResponse.KeepAlive())
                )


def _changes(before: Snapshot, after: Snapshot) -> list[tuple[str, pb.EventType]]:
    events = [(name, pb.EventType.CREATE) for name in sorted(after.keys() - before.keys())]
    events += [
        (name, pb.EventType.WRITE)
        for name in sorted(after.keys() & before.keys())
        if after[name] != before[name] and not after[name][2]
    ]
    events += [(name, pb.EventType.REMOVE) for name in sorted(before.keys() - after.keys())]
    return events
