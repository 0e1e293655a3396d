"""Turning a command's output, as it arrives in chunks, into lines: the same for every backend."""

from __future__ import annotations

__all__ = ["LineSplitter"]


class LineSplitter:
    """Chunks in, complete lines out, for one output stream.

    A line ends at ``\\n``; trailing ``\\r`` are dropped (so ``\\r\\n`` ends a line too), and
    bytes that are not UTF-8 become U+FFFD. Only each new chunk is scanned for line ends, so a
    line of many megabytes, arriving in many chunks, costs linear time. ``str`` chunks (what some
    remote sandboxes deliver) are accepted as well.
    """

    def __init__(self) -> None:
        self._pending = bytearray()

    def feed(self, chunk: bytes | str) -> list[str]:
        """The lines this chunk completes, in order."""
        if isinstance(chunk, str):
            # surrogatepass: a lone surrogate in decoded text must not fail the stream.
            chunk = chunk.encode("utf-8", "surrogatepass")
        lines: list[str] = []
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            self._pending += chunk[start:end]
            lines.append(_decode(self._pending))
            self._pending.clear()
            start = end + 1
        self._pending += chunk[start:]
        return lines

    def finish(self) -> list[str]:
        """The last line, if the output did not end with a line end."""
        if not self._pending:
            return []
        line = _decode(self._pending)
        self._pending.clear()
        return [line]


def _decode(line: bytearray) -> str:
    return bytes(line).rstrip(b"\r").decode(errors="replace")
