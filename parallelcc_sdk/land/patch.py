"""Reading a ``git diff`` patch: the files it touches and the lines of their old version it changes.

Only what the conflict map needs is parsed: per file its old and new path (deletions, additions,
renames and copies included), whether it is binary or changes the mode, and the line ranges of the
original file that its hunks change. Context lines are not changes: two tasks that edit lines a few
apart touch different ranges, as ``git merge`` sees them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["FileChange", "Span", "parse_patch", "unquote_path"]

_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_OCTAL = re.compile(rb"\\([0-7]{3})")
_ESCAPES = {b"a": b"\a", b"b": b"\b", b"t": b"\t", b"n": b"\n", b"v": b"\v", b"f": b"\f",
            b"r": b"\r", b'"': b'"', b"\\": b"\\"}


@dataclass(frozen=True)
class Span:
    """Lines ``[start, end)`` of the original file that a change replaces, 1-based.

    An insertion replaces nothing: ``start == end`` is the line it goes before.
    """

    start: int
    end: int

    def meets(self, other: Span) -> bool:
        """True if the spans overlap or touch, which ``git merge`` reports as a conflict: two
        changes with no unchanged line between them cannot both be applied automatically."""
        return self.start <= other.end and other.start <= self.end

    def __str__(self) -> str:
        if self.start == self.end:
            return f"before line {self.start}"
        if self.end - self.start == 1:
            return f"line {self.start}"
        return f"lines {self.start}-{self.end - 1}"


@dataclass(frozen=True)
class FileChange:
    """One file of a patch."""

    old_path: str | None
    """The path before the change; None for a new file."""
    new_path: str | None
    """The path after the change; None for a deleted file."""
    kind: str
    """``added``, ``deleted``, ``modified``, ``renamed`` or ``copied``."""
    binary: bool = False
    mode_changed: bool = False
    spans: tuple[Span, ...] = field(default=())

    @property
    def paths(self) -> frozenset[str]:
        """Every path the change touches: a rename touches its old and its new path, a copy
        only the new one (the original stays as it was)."""
        touched = {self.new_path}
        if self.kind != "copied":
            touched.add(self.old_path)
        return frozenset(p for p in touched if p is not None)

    @property
    def path(self) -> str:
        """The path to name the change by: the new path, or the old one for a deletion."""
        return self.new_path or self.old_path or ""

    @property
    def is_whole_file(self) -> bool:
        """True if the change is not a set of line edits of a file that stays where it is, so
        any other change to the same file conflicts with it."""
        return self.binary or self.kind != "modified"


def parse_patch(data: bytes) -> list[FileChange]:
    """The files of a ``git diff`` patch (as ``changes.patch`` holds), in patch order."""
    return [_parse_file(section) for section in _sections(data.split(b"\n"))]


def _sections(lines: list[bytes]) -> Iterator[list[bytes]]:
    current: list[bytes] | None = None
    for line in lines:
        if line.startswith(b"diff --git "):
            if current is not None:
                yield current
            current = [line]
        elif current is not None:
            current.append(line)
    if current is not None:
        yield current


def _parse_file(lines: list[bytes]) -> FileChange:
    old, new = _paths_from_header(lines[0])
    kind = "modified"
    binary = mode_changed = False
    spans: list[Span] = []
    i = 1
    while i < len(lines):
        line = lines[i]
        if line.startswith(b"@@"):
            hunk_spans, i = _hunk(lines, i)
            spans += hunk_spans
            continue
        if line.startswith(b"new file mode"):
            kind, old = "added", None
        elif line.startswith(b"deleted file mode"):
            kind, new = "deleted", None
        elif line.startswith(b"old mode"):
            mode_changed = True
        elif line.startswith((b"rename from ", b"copy from ")):
            kind = "renamed" if line.startswith(b"rename") else "copied"
            old = unquote_path(line.split(b" ", 2)[2])
        elif line.startswith((b"rename to ", b"copy to ")):
            new = unquote_path(line.split(b" ", 2)[2])
        elif line.startswith(b"--- ") and kind != "added":
            old = _side(line[4:], old)
        elif line.startswith(b"+++ ") and kind != "deleted":
            new = _side(line[4:], new)
        elif line.startswith((b"GIT binary patch", b"Binary files ")):
            binary = True
        i += 1
    return FileChange(old, new, kind, binary, mode_changed, tuple(spans))


def _hunk(lines: list[bytes], i: int) -> tuple[list[Span], int]:
    """The spans of original lines the hunk at ``lines[i]`` changes (one per run of changed
    lines between context lines), and the index of the line after the hunk."""
    match = _HUNK.match(lines[i])
    if match is None:
        return [], i + 1
    old_line = int(match.group(1))
    old_left = 1 if match.group(2) is None else int(match.group(2))
    new_left = 1 if match.group(4) is None else int(match.group(4))
    if old_left == 0:
        # "-N,0": nothing of the old file is shown; the insertion goes after line N.
        old_line += 1
    spans: list[Span] = []
    first: int | None = None
    last = 0
    i += 1
    while i < len(lines) and (old_left > 0 or new_left > 0 or lines[i].startswith(b"\\")):
        marker = lines[i][:1]
        i += 1
        if marker == b"\\":  # "\ No newline at end of file"
            continue
        if marker == b"-":
            first = old_line if first is None else first
            last = old_line + 1
            old_line += 1
            old_left -= 1
        elif marker == b"+":
            first = old_line if first is None else first
            last = max(last, old_line)
            new_left -= 1
        else:  # context (a blank line is a context line whose space was stripped)
            if first is not None:
                spans.append(Span(first, max(last, first)))
                first = None
            old_line += 1
            old_left -= 1
            new_left -= 1
    if first is not None:
        spans.append(Span(first, max(last, first)))
    return spans, i


def _paths_from_header(line: bytes) -> tuple[str | None, str | None]:
    """Both paths of ``diff --git a/X b/Y``. Ambiguous when a name holds `` b/``; the ``---``,
    ``+++``, ``rename`` and ``copy`` lines that follow (when there are any) take precedence."""
    rest = line[len(b"diff --git "):]
    if rest.startswith(b'"'):
        old_raw, _, tail = _split_quoted(rest)
        new_raw = tail.lstrip(b" ")
        return _strip_prefix(unquote_path(old_raw)), _strip_prefix(unquote_path(new_raw))
    if rest.endswith(b'"'):
        start = rest.rfind(b' "')
        old_raw, new_raw = rest[:start], rest[start + 1:]
        return _strip_prefix(unquote_path(old_raw)), _strip_prefix(unquote_path(new_raw))
    # Unquoted names: for an unchanged name (all but renames and copies) both halves are equal.
    half = (len(rest) - 1) // 2
    if rest[half:half + 1] == b" " and rest[:half][2:] == rest[half + 1:][2:]:
        old_raw, new_raw = rest[:half], rest[half + 1:]
        return _strip_prefix(unquote_path(old_raw)), _strip_prefix(unquote_path(new_raw))
    old_raw, _, new_raw = rest.partition(b" b/")
    return _strip_prefix(unquote_path(old_raw)), unquote_path(new_raw)


def _side(raw: bytes, fallback: str | None) -> str | None:
    # git ends the name with a tab when it holds a space; a tab inside a name is always quoted.
    value = raw[:-1] if raw.endswith(b"\t") else raw
    if value == b"/dev/null":
        return fallback
    return _strip_prefix(unquote_path(value))


def _strip_prefix(path: str | None) -> str | None:
    if path is not None and path[:2] in ("a/", "b/"):
        return path[2:]
    return path


def _split_quoted(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """``"quoted" rest`` → (the quoted part with its quotes, b'', rest)."""
    i = 1
    while i < len(raw):
        if raw[i:i + 1] == b"\\":
            i += 2
            continue
        if raw[i:i + 1] == b'"':
            return raw[: i + 1], b"", raw[i + 1:]
        i += 1
    return raw, b"", b""


def unquote_path(raw: bytes) -> str:
    """A path as git writes it in a patch: C-quoted (``"a/caf\\303\\251"``) when it holds
    unusual bytes, else as it is. Undecodable bytes are kept as surrogates."""
    raw = raw.strip(b"\r")
    if len(raw) >= 2 and raw.startswith(b'"') and raw.endswith(b'"'):
        raw = _unquote(raw[1:-1])
    return raw.decode("utf-8", errors="surrogateescape")


def _unquote(body: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(body):
        char = body[i:i + 1]
        if char != b"\\":
            out += char
            i += 1
            continue
        octal = _OCTAL.match(body, i)
        if octal is not None:
            out.append(int(octal.group(1), 8))
            i += 4
            continue
        out += _ESCAPES.get(body[i + 1:i + 2], body[i + 1:i + 2])
        i += 2
    return bytes(out)
