"""The Command agent: any shell command, with the task's prompt on stdin and in the environment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ValidationError
from ..models import Task, TaskStatus
from ..redaction import secret_values
from .base import (
    Agent,
    AgentContext,
    AgentOutcome,
    Invocation,
    LastLine,
    OutputParser,
    Progress,
    Stream,
)

# Linux refuses a single environment string over 128 KiB (MAX_ARG_STRLEN); beyond that the prompt
# is only on stdin, which has no limit.
_MAX_ENV_PROMPT_BYTES = 128 * 1024 - len("PARALLELCC_PROMPT=") - 1


class Command(Agent):
    """Runs ``command`` through ``/bin/sh -c`` in the task's workspace.

    The task's prompt arrives byte for byte on stdin and in ``PARALLELCC_PROMPT`` (when it fits
    in an environment variable, 128 KiB); the task id in ``PARALLELCC_TASK_ID``. The prompt is
    never interpolated into the command line. Exit code 0 means completed; otherwise the task
    failed, and its error ends with the last line the command printed (on either stream).
    """

    name = "command"

    def __init__(
        self, command: str, *, shell: str = "/bin/sh", env: Mapping[str, str] | None = None
    ) -> None:
        if not isinstance(command, str) or not command.strip():
            raise ValidationError(
                "Command(command) needs a non-empty shell command, e.g. Command('make test')."
            )
        self.command = command
        self.shell = shell
        self.env = dict(env or {})

    def invocation(self, task: Task, context: AgentContext) -> Invocation:
        prompt = task.prompt.encode()
        env = {**self.env, **task.env, "PARALLELCC_TASK_ID": task.task_id}
        if len(prompt) <= _MAX_ENV_PROMPT_BYTES:
            env["PARALLELCC_PROMPT"] = task.prompt
        return Invocation(argv=(self.shell, "-c", self.command), stdin=prompt, env=env)

    def parser(self, task: Task) -> OutputParser:
        return _ExitCodeParser()

    def secrets(self) -> tuple[str, ...]:
        return tuple(sorted(set(secret_values(self.env))))

    def describe(self) -> Mapping[str, Any]:
        return {"name": self.name, "command": self.command, "shell": self.shell}

    def __repr__(self) -> str:
        return f"Command({self.command!r})"


class _ExitCodeParser(OutputParser):
    """A plain command reports nothing structured: its exit code is the verdict, and its last
    line (a test runner's summary, a traceback's last line) the likely reason."""

    def __init__(self) -> None:
        # Either stream: pytest prints its "1 failed, 51 passed" summary on stdout.
        self._last = LastLine()

    def feed(self, stream: Stream, line: str) -> Sequence[Progress]:
        self._last.feed(line)
        return ()

    def finish(self, exit_code: int | None) -> AgentOutcome:
        if exit_code == 0:
            return AgentOutcome(status=TaskStatus.COMPLETED)
        reason = "was killed" if exit_code is None else f"exited with code {exit_code}"
        detail = f": {self._last.text}" if self._last.text else ""
        return AgentOutcome(status=TaskStatus.FAILED, error=f"command {reason}{detail}")
