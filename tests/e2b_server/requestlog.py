"""The request log: every call the server answered, for tests to count and measure.

Each request is named by an operation (``create``, ``fork``, ``kill``, ``files.upload``,
``process.Start``, ... see ``ops.py``) so a test can ask "how many uploads did this run make"
without parsing paths. Headers are never recorded (they carry the API key and access tokens).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class RequestRecord:
    """One answered request. ``status`` is 0 when the connection was dropped on purpose."""

    op: str
    method: str
    path: str
    sandbox_id: str | None
    started: float
    """Wall-clock time (``time.time()``) the request arrived."""
    duration: float = 0.0
    status: int = 0
    bytes_in: int = 0
    """Bytes of the request body."""
    bytes_out: int = 0
    """Bytes of the response body (for a stream: everything streamed)."""
    fault: str | None = None
    """The injected fault that answered it, if any."""
    done: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    """Thread-safe: the server appends on its own thread while a test reads on another."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def begin(self, op: str, method: str, path: str, sandbox_id: str | None) -> int:
        """Records a request as it arrives; returns its index for :meth:`end`."""
        record = RequestRecord(op, method, path, sandbox_id, started=time.time())
        with self._lock:
            self._records.append(record)
            return len(self._records) - 1

    def end(
        self, index: int, *, status: int, bytes_in: int, bytes_out: int, fault: str | None
    ) -> None:
        with self._lock:
            record = self._records[index]
            self._records[index] = replace(
                record,
                duration=time.time() - record.started,
                status=status,
                bytes_in=bytes_in,
                bytes_out=bytes_out,
                fault=fault,
                done=True,
            )

    def entries(
        self,
        op: str | Iterable[str] | None = None,
        *,
        sandbox_id: str | None = None,
        status: int | None = None,
    ) -> list[RequestRecord]:
        """Records in arrival order, filtered by operation(s), sandbox and status."""
        ops = {op} if isinstance(op, str) else set(op) if op is not None else None
        with self._lock:
            records = list(self._records)
        return [
            r
            for r in records
            if (ops is None or r.op in ops)
            and (sandbox_id is None or r.sandbox_id == sandbox_id)
            and (status is None or r.status == status)
        ]

    def count(self, op: str | Iterable[str] | None = None, **filters: Any) -> int:
        return len(self.entries(op, **filters))

    def bytes_in(self, op: str | Iterable[str] | None = None, **filters: Any) -> int:
        return sum(r.bytes_in for r in self.entries(op, **filters))

    def bytes_out(self, op: str | Iterable[str] | None = None, **filters: Any) -> int:
        return sum(r.bytes_out for r in self.entries(op, **filters))

    def ops(self) -> list[str]:
        """The operation of every request, in order: handy in an assertion message."""
        return [r.op for r in self.entries()]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
