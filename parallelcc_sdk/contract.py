"""The contract between agents and sandboxes: the types one side returns and the other runs.

Neither ``agents/`` nor ``backends/`` owns this module, and it imports neither: an agent turns a
task into an :class:`Invocation` for an :class:`AgentContext`, a sandbox runs it and streams its
output lines to a :data:`LineHandler`, then measures what changed as :class:`ChangeStats`. An
agent's own report on its work is :class:`AgentMetrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "AgentContext",
    "AgentMetrics",
    "ChangeStats",
    "Invocation",
    "LineHandler",
    "SandboxFile",
    "Stream",
]

Stream = Literal["stdout", "stderr"]

LineHandler = Callable[[Stream, str], None]
"""Called with each line of a command's output, without its line ending, in the order it came."""


@dataclass(frozen=True)
class AgentContext:
    """Where the agent's command runs, as the command itself sees it."""

    workspace: str
    """Absolute path of the task's workspace (the command's working directory)."""
    home: str
    """Absolute path of a private, writable home directory for this task."""
    runs_as_root: bool = False


@dataclass(frozen=True)
class SandboxFile:
    """A file the backend writes into the sandbox before the command starts."""

    path: str
    """Absolute path inside the sandbox (usually under :attr:`AgentContext.home`)."""
    content: bytes
    mode: int = 0o600


@dataclass(frozen=True)
class Invocation:
    """The command that runs one attempt of a task."""

    argv: tuple[str, ...]
    stdin: bytes = b""
    env: Mapping[str, str] = field(default_factory=dict)
    files: tuple[SandboxFile, ...] = ()
    secrets: tuple[str, ...] = ()
    """Values that must never appear in logs, events, metadata or exceptions."""


@dataclass(frozen=True)
class ChangeStats:
    """What a task changed in its workspace, measured against the run's snapshot."""

    files_changed: int = 0
    lines_added: int = 0
    lines_removed: int = 0
    paths: tuple[str, ...] = ()
    """Paths that exist after the task: added, modified, renamed to, type-changed."""
    deleted_paths: tuple[str, ...] = ()
    excluded_paths: tuple[str, ...] = ()
    """What was left out because it is never source (``.venv/``, ``node_modules/``...): a new
    folder as one entry (``.venv/``), at most the first 100."""
    excluded_bytes: int | None = 0
    """The size of all that was left out; ``None`` when the sandbox could not measure it."""

    def record_fields(self) -> dict[str, Any]:
        """These counts as fields of a :class:`~parallelcc_sdk.models.TaskResult`."""
        return {
            "files_changed": self.files_changed,
            "lines_added": self.lines_added,
            "lines_removed": self.lines_removed,
            "changed_paths": self.paths,
            "deleted_paths": self.deleted_paths,
            "excluded_paths": self.excluded_paths,
            "excluded_bytes": self.excluded_bytes,
        }


@dataclass(frozen=True)
class AgentMetrics:
    """What the agent reported about its own work (all optional: a command reports nothing)."""

    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    num_turns: int | None = None
    session_id: str | None = None
    final_text: str | None = None

    def record_fields(self) -> dict[str, Any]:
        """These metrics as fields of a :class:`~parallelcc_sdk.models.TaskResult`."""
        return {
            "cost_usd": self.cost_usd,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_creation_tokens": self.cache_creation_tokens,
            "num_turns": self.num_turns,
            "session_id": self.session_id,
            "final_text": self.final_text,
        }
