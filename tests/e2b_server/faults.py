"""Fault injection: what the next requests should suffer, set by a test before it acts.

Rules name an operation (see ``ops.py``) and how many requests they hit (``times=None``: every
one until :meth:`Faults.clear`). Thread-safe: a test sets rules while the server's thread
consumes them.

    faults.fail("create", 429, times=2)           # the next two creates answer 429
    faults.fail("create", 503, retry=False)       # ... with Should-Retry: false (no SDK retry)
    faults.drop("create")                         # the next create's connection is cut
    faults.delay("files.upload", 0.5, times=None) # every upload waits half a second first
    faults.refuse_fork()                          # fork is not available (403)
    faults.fail_fork_child(1, 500)                # in the next fork call, child #1 fails alone
    faults.kill_sandbox_during("claude", after=0.2)  # the sandbox running it dies mid-command
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["fail", "drop", "delay"]

DEFAULT_MESSAGES = {
    401: "Invalid API key",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    429: "Rate limit exceeded",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable: no capacity to start the sandbox, try again later",
    504: "Gateway timeout",
}
REFUSED_FORK_MESSAGE = "Forking sandboxes is not available for this team"


@dataclass
class Rule:
    op: str
    action: Action
    times: int | None
    status: int = 500
    message: str = ""
    retry: bool | None = None
    seconds: float = 0.0
    sandbox_id: str | None = None

    def describe(self) -> str:
        if self.action == "fail":
            return f"fail {self.status}"
        if self.action == "drop":
            return "drop"
        return f"delay {self.seconds}s"


@dataclass(frozen=True)
class Decision:
    """What to do with one request: wait ``delay`` seconds, then maybe fail or drop it."""

    delay: float = 0.0
    fail: Rule | None = None
    drop: bool = False

    @property
    def label(self) -> str | None:
        if self.drop:
            return "drop"
        if self.fail is not None:
            return self.fail.describe()
        return f"delay {self.delay}s" if self.delay else None


@dataclass
class KillRule:
    contains: str
    after: float
    sandbox_id: str | None
    metadata: Mapping[str, str]
    times: int | None


@dataclass
class ForkChildRule:
    index: int
    status: int
    message: str


@dataclass
class _State:
    rules: list[Rule] = field(default_factory=list)
    kills: list[KillRule] = field(default_factory=list)
    fork_children: list[ForkChildRule] = field(default_factory=list)


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = _State()

    # -- setting ----------------------------------------------------------------------------

    def fail(
        self,
        op: str,
        status: int,
        *,
        times: int | None = 1,
        message: str | None = None,
        retry: bool | None = None,
        sandbox_id: str | None = None,
    ) -> None:
        """The next ``times`` requests of ``op`` answer ``status`` with an E2B error body.

        ``retry=None`` sends no ``Should-Retry`` header (the SDK then retries 429/502/503/504 by
        itself, up to its ``retries``); ``False`` / ``True`` send the header, which the SDK obeys.
        """
        text = message or DEFAULT_MESSAGES.get(status, f"HTTP {status}")
        self._add(Rule(op, "fail", times, status, text, retry, sandbox_id=sandbox_id))

    def drop(self, op: str, *, times: int | None = 1, sandbox_id: str | None = None) -> None:
        """The next ``times`` requests of ``op`` lose their connection mid-answer."""
        self._add(Rule(op, "drop", times, sandbox_id=sandbox_id))

    def delay(
        self, op: str, seconds: float, *, times: int | None = None, sandbox_id: str | None = None
    ) -> None:
        """Requests of ``op`` wait ``seconds`` before they are handled."""
        self._add(Rule(op, "delay", times, seconds=seconds, sandbox_id=sandbox_id))

    def refuse_fork(
        self, status: int = 403, *, message: str = REFUSED_FORK_MESSAGE, times: int | None = None
    ) -> None:
        """Fork calls fail before any fork is attempted (a plan or server without fork)."""
        self.fail("fork", status, times=times, message=message, retry=False)

    def fail_fork_child(
        self, index: int, status: int = 500, *, message: str = "Failed to start the fork"
    ) -> None:
        """In the next fork call, the child at ``index`` (0-based) fails; the others start."""
        with self._lock:
            self._state.fork_children.append(ForkChildRule(index, status, message))

    def kill_sandbox_during(
        self,
        contains: str = "",
        *,
        after: float = 0.0,
        sandbox_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        times: int | None = 1,
    ) -> None:
        """When a command whose command line contains ``contains`` starts (in the sandbox
        ``sandbox_id``, or one whose metadata includes ``metadata``), the server kills that
        sandbox ``after`` seconds later, as if its VM died."""
        rule = KillRule(contains, after, sandbox_id, dict(metadata or {}), times)
        with self._lock:
            self._state.kills.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._state = _State()

    def add_from_json(self, spec: Mapping[str, Any]) -> None:
        """Adds a rule described as JSON (the debug endpoint): ``{"kind": "fail", "op": ...}``.

        ``kind`` is a method name of this class; the other keys are its arguments.
        """
        kind = spec.get("kind")
        allowed = {
            "fail",
            "drop",
            "delay",
            "refuse_fork",
            "fail_fork_child",
            "kill_sandbox_during",
        }
        if kind not in allowed:
            raise ValueError(f"unknown fault kind {kind!r}: use one of {sorted(allowed)}")
        arguments = {key: value for key, value in spec.items() if key != "kind"}
        getattr(self, kind)(**arguments)

    def _add(self, rule: Rule) -> None:
        if rule.times is not None and rule.times < 1:
            raise ValueError(f"times must be at least 1 (or None for always), got {rule.times}")
        with self._lock:
            self._state.rules.append(rule)

    # -- consuming (server side) ------------------------------------------------------------

    def decide(self, op: str, sandbox_id: str | None) -> Decision:
        """Takes the rules that apply to this request (using up their ``times``)."""
        delay = 0.0
        with self._lock:
            for rule in list(self._state.rules):
                if rule.op != op or (rule.sandbox_id and rule.sandbox_id != sandbox_id):
                    continue
                if rule.action == "delay":
                    delay += rule.seconds
                    self._use(rule)
                    continue
                self._use(rule)
                if rule.action == "drop":
                    return Decision(delay, drop=True)
                return Decision(delay, fail=rule)
        return Decision(delay)

    def _use(self, rule: Rule) -> None:
        if rule.times is None:
            return
        rule.times -= 1
        if rule.times == 0:
            self._state.rules.remove(rule)

    def fork_child_failures(self, count: int) -> dict[int, ForkChildRule]:
        """The children of this fork call that must fail (rules are used up by the call)."""
        with self._lock:
            rules = self._state.fork_children
            self._state.fork_children = [r for r in rules if r.index >= count]
            return {r.index: r for r in rules if r.index < count}

    def kill_delay(
        self, sandbox_id: str, metadata: Mapping[str, str], command_line: str
    ) -> float | None:
        """Seconds after which the sandbox must die because this command started, or None."""
        with self._lock:
            for rule in list(self._state.kills):
                if rule.contains not in command_line:
                    continue
                if rule.sandbox_id is not None and rule.sandbox_id != sandbox_id:
                    continue
                if any(metadata.get(k) != v for k, v in rule.metadata.items()):
                    continue
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times == 0:
                        self._state.kills.remove(rule)
                return rule.after
        return None
