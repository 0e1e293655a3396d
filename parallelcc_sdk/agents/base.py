"""The agent protocol: how a task becomes a command, and its output progress and metrics.

An agent knows nothing about where it runs. A backend gives it an :class:`AgentContext` (the
paths the command will see) and runs the :class:`Invocation` it returns; every line of output
goes to the agent's :class:`OutputParser`. Those shared types live in :mod:`parallelcc_sdk.contract`
and are re-exported here for agent authors.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..contract import AgentContext, AgentMetrics, Invocation, SandboxFile, Stream
from ..models import Task, TaskStatus

__all__ = [
    "Agent",
    "AgentContext",
    "AgentMetrics",
    "AgentOutcome",
    "Invocation",
    "LastLine",
    "OutputParser",
    "Progress",
    "SandboxFile",
    "Stream",
]


@dataclass(frozen=True)
class Progress:
    """Something the agent reported while running."""

    message: str | None = None
    """A short, human description (``"turn 3 · Edit src/app.py"``); ``None`` for raw events only."""
    raw: Mapping[str, Any] | None = None
    """The structured event as the agent emitted it, written to ``events.jsonl``."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """Structured progress fields (``turn``, ``tool``, ``text``, ``retry``...)."""
    cost_usd: float | None = None
    """Total cost so far, when the agent reports it (used by the run budget)."""
    final: bool = False
    """True for the agent's closing report: its work is done, so a run-budget stop that this
    report triggers does not cancel it (the stop applies to the other tasks)."""


@dataclass(frozen=True)
class AgentOutcome:
    """The agent's verdict on one attempt, from its exit code and output."""

    status: TaskStatus
    error: str | None = None
    metrics: AgentMetrics = field(default_factory=AgentMetrics)
    transient: bool = False
    """True when the failure is worth retrying (rate limit, overload, connection error)."""


# A rule of 3+ decoration characters at either end of a line, as test runners frame their
# summaries ("===== 1 failed, 51 passed in 5.98s =====").
_RULE = re.compile(r"^[=\-_*#~]{3,}\s*|\s*[=\-_*#~]{3,}$")


class LastLine:
    """The last line of a command's output that says something, on either stream.

    What a failed command printed last (a test runner's summary, a compiler's error) is usually
    why it failed, so an agent puts it in its error: ``command exited with code 1: 1 failed, 51
    passed in 5.98s``. Blank lines and bare rules (``=====``) are skipped; rules around text are
    cut off.
    """

    def __init__(self, limit: int = 300) -> None:
        self.limit = limit
        self.text: str | None = None

    def feed(self, line: str) -> None:
        # Cut first: the rule pattern must never scan a long line (its cost, not its result).
        text = _RULE.sub("", line.strip()[: self.limit + 80]).strip()
        if text:
            self.text = text[: self.limit]


class OutputParser(ABC):
    """Reads one attempt's output, line by line, as it arrives."""

    @abstractmethod
    def feed(self, stream: Stream, line: str) -> Sequence[Progress]:
        """Takes one line (without its newline) and returns what it reported, if anything."""

    @abstractmethod
    def finish(self, exit_code: int | None) -> AgentOutcome:
        """Called once the command has exited (``exit_code`` is ``None`` if it was killed)."""


class Agent(ABC):
    """Turns a task into a command and reads its output. One file per agent; no engine changes."""

    name: ClassVar[str]

    def validate(self, *, on_host: bool) -> None:  # noqa: B027 - optional hook
        """Raises a :class:`~parallelcc_sdk.errors.ValidationError` if this agent cannot run.

        ``on_host`` is true when the command will run on this machine (so its executable must be
        here). Called once per run, before anything starts.
        """

    @abstractmethod
    def invocation(self, task: Task, context: AgentContext) -> Invocation:
        """The command for one attempt of ``task``."""

    @abstractmethod
    def parser(self, task: Task) -> OutputParser:
        """A fresh parser for one attempt of ``task``."""

    def secrets(self) -> tuple[str, ...]:
        """Secret values this agent knows about, redacted everywhere (see ``redaction``)."""
        return ()

    @property
    def edits_unattended(self) -> bool:
        """True when the agent, as configured, changes files and runs commands without asking
        anyone (an AI agent with every permission). Such an agent is not run without a sandbox
        unless the user declines isolation explicitly."""
        return False

    def describe(self) -> Mapping[str, Any]:
        """The agent's configuration for ``run.json``; never includes secrets."""
        return {"name": self.name}
