"""A task's conversation, read back from its ``events.jsonl`` (Claude Code's stream-json events).

The agent's turns in order, each with its text, its tool calls and their results, its token counts
and its share of the cost. Claude Code writes one line per content block, all with the message's
id, so a turn is the set of lines that share one. Tool results arrive in ``user`` events and are
matched to their call by id. Every ``system``/``init`` event starts a new attempt (a retried task
appends to the same file). Lines this reader does not know are skipped, as the parser does.

Costs per turn are estimates: the CLI reports the cost of the whole session only, and the output
token counts of its per-turn lines are placeholders. Each turn gets the share of the session's
cost that its tokens weigh at Anthropic's price ratios (output 5 times, cache writes 1.25 times,
cache reads 0.1 times the input price, the same for every current Claude model), so the turns
add up to the CLI's own total.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..agents.stream_json import describe_tool

__all__ = ["Attempt", "Note", "ToolCall", "Transcript", "Turn", "read_transcript"]

# Relative prices of the token kinds, input = 1.
_WEIGHTS = {"input": 1.0, "output": 5.0, "cache_creation": 1.25, "cache_read": 0.1}


@dataclass
class ToolCall:
    """One tool call of a turn and, once it came back, its result."""

    id: str | None
    name: str
    input: Mapping[str, Any]
    label: str
    """What the call did in a few words: ``Edit src/app.py``, ``Bash: pytest -q``."""
    result: str | None = None
    is_error: bool = False


@dataclass
class Turn:
    """One model response: its text, its tool calls, its tokens and estimated cost."""

    number: int
    model: str | None = None
    texts: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    cost_usd: float | None = None
    subagent: bool = False
    """A turn of a subagent the main conversation started (Claude Code's Task tool)."""

    @property
    def weight(self) -> float:
        return (
            self.input_tokens * _WEIGHTS["input"]
            + self.output_tokens * _WEIGHTS["output"]
            + self.cache_creation_tokens * _WEIGHTS["cache_creation"]
            + self.cache_read_tokens * _WEIGHTS["cache_read"]
        )


@dataclass
class Note:
    """Something that happened between turns: an API retry, a denied tool, an API error."""

    text: str
    is_error: bool = False


@dataclass
class Attempt:
    """One run of the agent: the turns and notes in order, and how it ended."""

    model: str | None = None
    session_id: str | None = None
    entries: list[Turn | Note] = field(default_factory=list)
    ended: bool = False
    """True once the final ``result`` event arrived."""
    succeeded: bool = False
    final_text: str | None = None
    error: str | None = None
    cost_usd: float | None = None
    num_turns: int | None = None
    duration_ms: int | None = None

    @property
    def turns(self) -> list[Turn]:
        return [e for e in self.entries if isinstance(e, Turn)]


@dataclass
class Transcript:
    attempts: list[Attempt]
    skipped_lines: int = 0
    """Lines that were not JSON objects (a cut-off last line, say)."""

    @property
    def turns(self) -> list[Turn]:
        return [t for a in self.attempts for t in a.turns]


def read_transcript(path: Path) -> Transcript | None:
    """The transcript in ``path``, or None if there is no such file or no event in it."""
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except OSError:
        return None
    with handle:
        transcript = parse_events(handle)
    if not transcript.attempts:
        return None
    return transcript


def parse_events(lines: Iterable[str]) -> Transcript:
    reader = _Reader()
    for line in lines:
        reader.feed(line)
    for attempt in reader.attempts:
        _share_cost(attempt)
    return Transcript(reader.attempts, reader.skipped)


class _Reader:
    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        self.skipped = 0
        self._turns: dict[str, Turn] = {}
        self._calls: dict[str, ToolCall] = {}
        self._cwd: str | None = None

    @property
    def _attempt(self) -> Attempt:
        if not self.attempts or self.attempts[-1].ended:
            # Events without an init before them (a stream whose start was lost) still count.
            self._start()
        return self.attempts[-1]

    def _start(self, event: Mapping[str, Any] | None = None) -> None:
        event = event or {}
        self.attempts.append(
            Attempt(model=_str(event.get("model")), session_id=_str(event.get("session_id")))
        )
        self._turns = {}
        self._calls = {}
        self._cwd = _str(event.get("cwd"))

    def feed(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        try:
            event = json.loads(line)
        except ValueError:
            self.skipped += 1
            return
        if not isinstance(event, dict):
            self.skipped += 1
            return
        kind = event.get("type")
        if kind == "system":
            self._on_system(event)
        elif kind == "assistant":
            self._on_assistant(event)
        elif kind == "user":
            self._on_user(event)
        elif kind == "result":
            self._on_result(event)

    def _on_system(self, event: Mapping[str, Any]) -> None:
        subtype = event.get("subtype")
        if subtype == "init":
            self._start(event)
        elif subtype == "api_retry":
            status = event.get("error_status")
            cause = f"HTTP {status}" if isinstance(status, int) else "a connection error"
            self._attempt.entries.append(Note(
                f"API retry {event.get('attempt')}/{event.get('max_retries')} after {cause}"
                f" ({event.get('error')})"
            ))
        elif subtype == "permission_denied":
            self._attempt.entries.append(Note(
                f"{event.get('tool_name') or 'a tool'} was denied: {event.get('message') or ''}",
                is_error=True,
            ))

    def _on_assistant(self, event: Mapping[str, Any]) -> None:
        message = event.get("message")
        if not isinstance(message, Mapping):
            return
        attempt = self._attempt
        if event.get("is_api_error_message") or message.get("model") == "<synthetic>":
            text = " ".join(_texts(message.get("content"))) or str(event.get("error") or "")
            attempt.entries.append(Note(text or "API error", is_error=True))
            return
        message_id = _str(message.get("id"))
        turn = self._turns.get(message_id) if message_id else None
        if turn is None:
            number = len(attempt.turns) + 1
            turn = Turn(number=number, model=_str(message.get("model")),
                        subagent=event.get("parent_tool_use_id") is not None)
            _set_usage(turn, message.get("usage"))
            attempt.entries.append(turn)
            if message_id:
                self._turns[message_id] = turn
        content = message.get("content")
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, Mapping):
                continue
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                turn.texts.append(block["text"])
            elif kind == "thinking" and isinstance(block.get("thinking"), str):
                turn.thinking.append(block["thinking"])
            elif kind in ("tool_use", "server_tool_use"):
                tool_input = block.get("input")
                args = tool_input if isinstance(tool_input, Mapping) else {}
                call = ToolCall(
                    id=_str(block.get("id")),
                    name=_str(block.get("name")) or "tool",
                    input=args,
                    label=describe_tool(block.get("name"), args, self._cwd),
                )
                turn.tool_calls.append(call)
                if call.id:
                    self._calls[call.id] = call

    def _on_user(self, event: Mapping[str, Any]) -> None:
        message = event.get("message")
        content = message.get("content") if isinstance(message, Mapping) else None
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, Mapping):
                continue
            if block.get("type") == "tool_result":
                text = "\n".join(_texts(block.get("content")))
                call = self._calls.get(str(block.get("tool_use_id")))
                if call is not None:
                    call.result = text
                    call.is_error = block.get("is_error") is True
                else:
                    self._attempt.entries.append(Note(f"tool result: {text}"))
            elif block.get("type") == "text" and isinstance(block.get("text"), str):
                # "[Request interrupted by user]" and the like.
                self._attempt.entries.append(Note(block["text"], is_error=True))

    def _on_result(self, event: Mapping[str, Any]) -> None:
        attempt = self._attempt
        attempt.ended = True
        attempt.succeeded = event.get("subtype") == "success" and event.get("is_error") is False
        cost = event.get("total_cost_usd")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            attempt.cost_usd = float(cost)
        turns = event.get("num_turns")
        attempt.num_turns = turns if isinstance(turns, int) else None
        duration = event.get("duration_ms")
        attempt.duration_ms = duration if isinstance(duration, int) else None
        text = _str(event.get("result"))
        if attempt.succeeded:
            attempt.final_text = text
        else:
            errors = event.get("errors")
            detail = "; ".join(str(e) for e in errors) if isinstance(errors, list) else ""
            reason = _str(event.get("terminal_reason")) or _str(event.get("subtype")) or "error"
            attempt.error = f"{reason}: {detail or text or 'no detail'}"


def _share_cost(attempt: Attempt) -> None:
    turns = attempt.turns
    total_weight = sum(t.weight for t in turns)
    if attempt.cost_usd is None or total_weight <= 0:
        return
    for turn in turns:
        turn.cost_usd = attempt.cost_usd * turn.weight / total_weight


def _set_usage(turn: Turn, usage: Any) -> None:
    if not isinstance(usage, Mapping):
        return
    turn.input_tokens = _int(usage.get("input_tokens"))
    turn.output_tokens = _int(usage.get("output_tokens"))
    turn.cache_read_tokens = _int(usage.get("cache_read_input_tokens"))
    turn.cache_creation_tokens = _int(usage.get("cache_creation_input_tokens"))


def _texts(content: Any) -> list[str]:
    """The text of a message's content: a string, or the text of each text block."""
    if isinstance(content, str):
        return [content]
    texts: list[str] = []
    for block in content if isinstance(content, list) else ():
        if isinstance(block, Mapping) and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block, Mapping) and block.get("type") == "image":
            texts.append("[image]")
    return texts


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
