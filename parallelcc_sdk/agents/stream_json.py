"""Reading Claude Code's ``stream-json`` output: progress while it runs, a verdict at the end.

The stream is one JSON event per line. The parser is forward compatible on purpose: lines that are
not JSON objects, and event types or keys it does not know, are passed through as raw events and
otherwise ignored, because the CLI adds event types between versions. Only the final ``result``
event decides the outcome; a run without one crashed or was killed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from ..models import AgentMetrics, TaskStatus
from .base import AgentOutcome, OutputParser, Progress, Stream

NO_RESULT_ERROR = "agent exited without a result"

_TEXT_LIMIT = 120
_COMMAND_LIMIT = 60
_ERROR_LIMIT = 500

# HTTP statuses worth trying again later: rate limits and server-side trouble. 400/401/403 will fail
# the same way every time, so retrying them only spends time.
_TRANSIENT_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
# Synthetic assistant error kinds that mean "your request or account is wrong", not "try again".
_PERMANENT_ERROR_KINDS = frozenset({"authentication_failed", "billing_error", "invalid_request"})
_FILE_TOOLS = frozenset({"Read", "Write", "Edit", "MultiEdit", "NotebookEdit", "NotebookRead"})
_SUBTYPE_REASONS = {
    "error_max_turns": "max turns reached",
    "error_max_budget_usd": "task budget exceeded",
    "error_during_execution": "error during execution",
    "error_max_structured_output_retries": "structured output retries exhausted",
}


class StreamJsonParser(OutputParser):
    """One attempt's stream-json output, fed line by line as it arrives."""

    def __init__(self) -> None:
        self._cwd: str | None = None
        self._session_id: str | None = None
        self._turn = 0
        self._message_ids: set[str] = set()
        self._tool: str | None = None
        self._text: str | None = None
        self._result: Mapping[str, Any] | None = None
        self._api_error: Mapping[str, Any] | None = None
        self._rate_limit_rejected: Mapping[str, Any] | None = None
        self._cost_usd: float | None = None
        self._stderr: deque[str] = deque(maxlen=3)

    # -- streaming ---------------------------------------------------------------------------------
    def feed(self, stream: Stream, line: str) -> Sequence[Progress]:
        if stream == "stderr":
            # stderr is empty in stream-json mode except for usage errors, which explain a run
            # that ends without a result.
            if line.strip():
                self._stderr.append(line.strip())
            return ()
        event = _parse_line(line)
        if event is None:
            return ()
        kind = event.get("type")
        if kind == "system":
            return self._on_system(event)
        if kind == "assistant":
            return self._on_assistant(event)
        if kind == "result":
            return self._on_result(event)
        if kind == "rate_limit_event":
            return self._on_rate_limit(event)
        return (self._progress(event),)

    def _on_system(self, event: Mapping[str, Any]) -> Sequence[Progress]:
        subtype = event.get("subtype")
        if subtype == "init":
            self._cwd = _str(event.get("cwd"))
            self._session_id = _str(event.get("session_id")) or self._session_id
            model = _str(event.get("model"))
            data = {
                "phase": "init",
                "model": model,
                "session_id": self._session_id,
                "claude_code_version": _str(event.get("claude_code_version")),
            }
            message = f"started · {model}" if model else "started"
            return (self._progress(event, message, data),)
        if subtype == "api_retry":
            status = event.get("error_status")
            retry = {
                "attempt": event.get("attempt"),
                "max_retries": event.get("max_retries"),
                "delay_ms": event.get("retry_delay_ms"),
                "status": status,
                "error": event.get("error"),
            }
            cause = f"HTTP {status}" if isinstance(status, int) else "connection error"
            message = (
                f"API retry {retry['attempt']}/{retry['max_retries']} after {cause}"
                f" ({retry['error']})"
            )
            return (self._progress(event, message, {"retry": retry}),)
        return (self._progress(event),)

    def _on_assistant(self, event: Mapping[str, Any]) -> Sequence[Progress]:
        message = event.get("message")
        if not isinstance(message, Mapping):
            return (self._progress(event),)
        if event.get("is_api_error_message") or message.get("model") == "<synthetic>":
            # Not a model turn: the CLI's own report of a failed API call, kept for the verdict.
            self._api_error = event
            return (self._progress(event),)
        # Subagent traffic (parent_tool_use_id set) is part of the parent's turn.
        if event.get("parent_tool_use_id") is None:
            message_id = _str(message.get("id"))
            # One line per content block, all sharing the message id: count each message once.
            if message_id is None or message_id not in self._message_ids:
                self._turn += 1
                self._tool = None
                if message_id is not None:
                    self._message_ids.add(message_id)
        content = message.get("content")
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, Mapping):
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                text = _short(block["text"], _TEXT_LIMIT)
                if text:
                    self._text = text
            elif block.get("type") == "tool_use":
                self._tool = describe_tool(block.get("name"), block.get("input"), self._cwd)
        label = self._tool or self._text or "thinking"
        return (self._progress(event, f"turn {self._turn} · {label}"),)

    def _on_result(self, event: Mapping[str, Any]) -> Sequence[Progress]:
        self._result = event
        self._session_id = _str(event.get("session_id")) or self._session_id
        cost = event.get("total_cost_usd")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            self._cost_usd = float(cost)
        outcome = self._verdict(exit_code=0)
        if outcome.status == TaskStatus.COMPLETED:
            summary = "finished"
        else:
            summary = f"failed: {outcome.error}"
        if self._cost_usd is not None:
            summary += f" · ${self._cost_usd:.4f}"
        data = {"phase": "result", "num_turns": event.get("num_turns")}
        return (dataclasses.replace(self._progress(event, summary, data), final=True),)

    def _on_rate_limit(self, event: Mapping[str, Any]) -> Sequence[Progress]:
        info = event.get("rate_limit_info")
        if isinstance(info, Mapping) and info.get("status") == "rejected":
            self._rate_limit_rejected = info
            return (self._progress(event, "subscription usage limit reached"),)
        return (self._progress(event),)

    def _progress(
        self, event: Mapping[str, Any], message: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Progress:
        data: dict[str, Any] = {"turn": self._turn, "tool": self._tool, "text": self._text}
        data.update(extra or {})
        return Progress(message=message, raw=event, data=data, cost_usd=self._cost_usd)

    # -- verdict -----------------------------------------------------------------------------------
    def finish(self, exit_code: int | None) -> AgentOutcome:
        if self._result is None:
            return AgentOutcome(
                status=TaskStatus.FAILED,
                error=f"{NO_RESULT_ERROR} ({self._exit_detail(exit_code)})",
                metrics=AgentMetrics(num_turns=self._turn or None, session_id=self._session_id),
            )
        return self._verdict(exit_code)

    def _verdict(self, exit_code: int | None) -> AgentOutcome:
        result = self._result or {}
        metrics = self._metrics(result)
        subtype = result.get("subtype")
        is_error = result.get("is_error")
        if subtype == "success" and is_error is False:
            if exit_code == 0:
                return AgentOutcome(status=TaskStatus.COMPLETED, metrics=metrics)
            return AgentOutcome(
                status=TaskStatus.FAILED,
                error=f"claude reported success but {self._exit_detail(exit_code)}",
                metrics=metrics,
            )
        error, transient = self._failure(result)
        return AgentOutcome(
            status=TaskStatus.FAILED, error=_short(error, _ERROR_LIMIT), metrics=metrics,
            transient=transient,
        )

    def _failure(self, result: Mapping[str, Any]) -> tuple[str, bool]:
        subtype = _str(result.get("subtype")) or "unknown"
        errors = result.get("errors")
        detail = "; ".join(str(e) for e in errors) if isinstance(errors, list) and errors else ""
        text = _str(result.get("result")) or ""
        if subtype in _SUBTYPE_REASONS:
            return f"{_SUBTYPE_REASONS[subtype]}: {detail or text or subtype}", False

        terminal = _str(result.get("terminal_reason"))
        status = result.get("api_error_status")
        if terminal == "api_error":
            kind = _str(result.get("api_error_type")) or _str((self._api_error or {}).get("error"))
            where = f"API error {status}" if isinstance(status, int) else "API error"
            prefix = f"{where} ({kind})" if kind else where
            return f"{prefix}: {text or 'no detail'}", self._is_transient(status)
        reason = terminal or subtype
        return f"claude stopped ({reason}): {text or detail or 'no detail'}", False

    def _is_transient(self, status: Any) -> bool:
        if isinstance(status, int):
            if status == 429 and self._rate_limit_rejected is not None:
                # A subscription's 5-hour/weekly limit: retrying before it resets cannot succeed.
                return False
            return status in _TRANSIENT_STATUSES or 500 <= status < 600
        # No HTTP status: a network error, unless the CLI said the credentials are the problem.
        kind = _str((self._api_error or {}).get("error"))
        return kind not in _PERMANENT_ERROR_KINDS

    def _metrics(self, result: Mapping[str, Any]) -> AgentMetrics:
        tokens = _tokens_from_model_usage(result.get("modelUsage"))
        if tokens is None:
            tokens = _tokens_from_usage(result.get("usage"))
        num_turns = result.get("num_turns")
        final = result.get("result")
        succeeded = result.get("subtype") == "success" and result.get("is_error") is False
        return AgentMetrics(
            cost_usd=self._cost_usd,
            input_tokens=tokens[0] if tokens else None,
            output_tokens=tokens[1] if tokens else None,
            cache_read_tokens=tokens[2] if tokens else None,
            cache_creation_tokens=tokens[3] if tokens else None,
            num_turns=num_turns if isinstance(num_turns, int) else (self._turn or None),
            session_id=self._session_id,
            final_text=final if succeeded and isinstance(final, str) else None,
        )

    def _exit_detail(self, exit_code: int | None) -> str:
        if exit_code is None:
            detail = "killed"
        elif exit_code < 0:
            detail = f"killed by signal {-exit_code}"
        elif exit_code > 128:
            detail = f"exit code {exit_code}, likely signal {exit_code - 128}"
        else:
            detail = f"exit code {exit_code}"
        if self._stderr:
            detail += f": {_short(self._stderr[-1], 200)}"
        return detail


def describe_tool(name: Any, tool_input: Any, cwd: str | None = None) -> str:
    """A short label for a tool call: ``Edit src/app.py``, ``Bash: pytest -q``, ``Grep TODO``."""
    tool = name if isinstance(name, str) and name else "tool"
    args = tool_input if isinstance(tool_input, Mapping) else {}
    if tool in _FILE_TOOLS:
        path = _str(args.get("file_path")) or _str(args.get("notebook_path"))
        return f"{tool} {_relative(path, cwd)}" if path else tool
    if tool == "Bash":
        command = _str(args.get("command"))
        return f"Bash: {_short(command, _COMMAND_LIMIT)}" if command else tool
    for key in ("pattern", "url", "query", "description", "skill"):
        value = _str(args.get(key))
        if value:
            return f"{tool} {_short(value, _COMMAND_LIMIT)}"
    return tool


def _parse_line(line: str) -> Mapping[str, Any] | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _tokens_from_model_usage(model_usage: Any) -> tuple[int, int, int, int] | None:
    # modelUsage is per model (a run may use several, e.g. a fallback model); totals are the sum.
    if not isinstance(model_usage, Mapping) or not model_usage:
        return None
    totals = [0, 0, 0, 0]
    for usage in model_usage.values():
        if not isinstance(usage, Mapping):
            continue
        for i, key in enumerate(("inputTokens", "outputTokens", "cacheReadInputTokens",
                                 "cacheCreationInputTokens")):
            value = usage.get(key)
            if isinstance(value, int):
                totals[i] += value
    return totals[0], totals[1], totals[2], totals[3]


def _tokens_from_usage(usage: Any) -> tuple[int, int, int, int] | None:
    if not isinstance(usage, Mapping):
        return None
    values = [usage.get(k) for k in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                                     "cache_creation_input_tokens")]
    ints = [v if isinstance(v, int) else 0 for v in values]
    return ints[0], ints[1], ints[2], ints[3]


def _relative(path: str, cwd: str | None) -> str:
    if cwd and os.path.isabs(path):
        rel = os.path.relpath(path, cwd)
        if not rel.startswith(".."):
            return rel
    return path


def _short(text: str, limit: int) -> str:
    first = " ".join(text.split())
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
