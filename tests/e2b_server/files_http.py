"""envd's plain HTTP file transfer: ``POST /files`` (multipart with one part per file, or one
octet-stream body) and ``GET /files`` (the raw bytes).

The SDK names each multipart part's file by its full sandbox path; ``?path=`` is only sent with a
single file. ``?username=`` picks the user whose home relative paths start from.
"""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from .envd_common import sandbox_id_from, user_named
from .sandbox_files import Entry, FileError, SandboxFiles
from .sandboxes import Registry, SandboxGone

MAX_FILES_PER_UPLOAD = 10_000
METADATA_HEADER = "x-metadata-"
_STATUS = {"not_found": 404, "permission": 403, "invalid": 400, "exists": 409}


def envd_error(status: int, message: str) -> JSONResponse:
    """envd's HTTP error body."""
    return JSONResponse({"code": status, "message": message}, status_code=status)


def _written(entry: Entry) -> dict[str, Any]:
    info: dict[str, Any] = {"name": entry.name, "type": "file", "path": entry.path}
    if entry.metadata:
        info["metadata"] = entry.metadata
    return info


def routes(registry: Registry) -> list[Route]:
    def files_of(request: Request) -> SandboxFiles | Response:
        try:
            sandbox = registry.running(sandbox_id_from(request.headers))
        except SandboxGone:
            return envd_error(502, "The sandbox was not found")
        user = user_named(request.query_params.get("username"))
        if user is None:
            return envd_error(401, "unknown user")
        return SandboxFiles(sandbox.layout, user)

    async def upload(request: Request) -> Response:
        files = files_of(request)
        if isinstance(files, Response):
            return files
        metadata = {
            key.removeprefix(METADATA_HEADER): value
            for key, value in request.headers.items()
            if key.startswith(METADATA_HEADER)
        }
        path_param = request.query_params.get("path")
        content_type = request.headers.get("content-type", "")
        uploads: list[tuple[str, bytes]] = []
        if content_type.startswith("multipart/form-data"):
            async with request.form(max_files=MAX_FILES_PER_UPLOAD) as form:
                parts = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
                for part in parts:
                    name = path_param if path_param and len(parts) == 1 else part.filename
                    if not name:
                        return envd_error(400, "each file part needs a filename (its path)")
                    uploads.append((name, await part.read()))
        else:
            if not path_param:
                return envd_error(400, "path is required for an octet-stream upload")
            data = await request.body()
            if request.headers.get("content-encoding", "").lower() == "gzip":
                try:
                    data = gzip.decompress(data)
                except (OSError, EOFError):
                    return envd_error(400, "the body is not valid gzip")
            uploads.append((path_param, data))
        if not uploads:
            return envd_error(400, "no file in the request")
        written: list[dict[str, Any]] = []
        for path, data in uploads:
            try:
                entry = await asyncio.to_thread(files.write, path, data, metadata)
            except FileError as exc:
                return envd_error(_STATUS[exc.kind], exc.message)
            written.append(_written(entry))
        return JSONResponse(written)

    async def download(request: Request) -> Response:
        files = files_of(request)
        if isinstance(files, Response):
            return files
        path = request.query_params.get("path")
        if not path:
            return envd_error(400, "path is required")
        try:
            host = await asyncio.to_thread(files.readable_file, path)
        except FileError as exc:
            return envd_error(_STATUS[exc.kind], exc.message)
        return FileResponse(host, media_type="application/octet-stream")

    return [
        Route("/files", upload, methods=["POST"]),
        Route("/files", download, methods=["GET"]),
    ]
