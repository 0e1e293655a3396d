"""A scripted stand-in for the Anthropic Messages API, for running the real ``claude`` CLI in tests.

The CLI is pointed at it with ``ANTHROPIC_BASE_URL``. Each task's prompt carries a marker
(``[script:NAME]``); the first user message of a request picks the script, and every request of the
main conversation takes the script's next turn. A turn is a model reply (text and/or one tool call),
an HTTP error with the API's JSON error body, a dropped connection, or a hang (for kill tests).

Every request is recorded (path, headers, body) so tests can check the exact bytes the CLI sent.

Prompts without a marker get ``text("OK")``, or, when the server has a ``responder``, whatever it
answers for the request (``note_taker`` is one: it makes every task a small real edit).
"""

from __future__ import annotations

import json
import re
import shlex
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MARKER = re.compile(r"\[script:([A-Za-z0-9_.\-]+)\]")

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_ERROR_MESSAGES = {
    400: "Bad request",
    401: "invalid x-api-key",
    403: "Forbidden",
    429: "Number of request tokens has exceeded your per-minute rate limit",
    500: "Internal server error",
    529: "Overloaded",
}


@dataclass(frozen=True)
class Turn:
    """One scripted answer to a request of the main conversation."""

    text: str | None = None
    tool_name: str | None = None
    tool_input: Mapping[str, Any] | None = None
    status: int | None = None
    """An HTTP error status to answer with instead of a message."""
    drop: bool = False
    """Close the connection without answering (a network error)."""
    hang_s: float = 0.0
    """Wait this long before answering (the CLI is usually killed meanwhile)."""
    input_tokens: int = 100
    output_tokens: int = 20
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0


def text(message: str, **options: Any) -> Turn:
    """A final answer (``end_turn``); ``options`` are token counts or ``hang_s``."""
    return Turn(text=message, **options)


def tool_use(name: str, tool_input: Mapping[str, Any], message: str | None = None,
             **options: Any) -> Turn:
    """One tool call (``stop_reason: tool_use``), optionally after some text."""
    return Turn(text=message, tool_name=name, tool_input=dict(tool_input), **options)


def error(status: int) -> Turn:
    return Turn(status=status)


def drop() -> Turn:
    return Turn(drop=True)


def hang(seconds: float) -> Turn:
    return Turn(text="(late)", hang_s=seconds)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    script: str | None
    """The script this request was answered from (``None`` for side requests)."""
    received_at: float
    """``time.monotonic()`` when the request arrived."""

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class _ScriptState:
    turns: list[Turn]
    cursor: int = 0
    served: list[Turn] = field(default_factory=list)


class ScriptedAnthropic:
    """A threaded HTTP server on 127.0.0.1 that plays scripts; use as a context manager."""

    def __init__(
        self,
        *,
        model: str = "claude-sonnet-4-5",
        responder: Callable[[Mapping[str, Any]], Turn] | None = None,
    ) -> None:
        self.model = model
        self.responder = responder
        self.requests: list[RecordedRequest] = []
        self._scripts: dict[str, _ScriptState] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> ScriptedAnthropic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ScriptedAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- scripts -----------------------------------------------------------------------------------
    def script(self, name: str, turns: Sequence[Turn]) -> str:
        """Registers a script and returns the marker to put in the task's prompt."""
        with self._lock:
            self._scripts[name] = _ScriptState(list(turns))
        return f"[script:{name}]"

    def served(self, name: str) -> list[Turn]:
        with self._lock:
            return list(self._scripts[name].served)

    def requests_for(self, name: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.script == name]

    def prompts_received(self, name: str) -> list[str]:
        """The text of the last user text block of the first message, per main request."""
        return [first_user_text(r.json())[-1] for r in self.requests_for(name)]

    def _next_turn(self, name: str) -> Turn:
        with self._lock:
            state = self._scripts[name]
            if state.cursor < len(state.turns):
                turn = state.turns[state.cursor]
                state.cursor += 1
            else:
                # Past the end of the script the model just finishes, so a run never loops forever.
                turn = text("Done.")
            state.served.append(turn)
            return turn

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def first_user_text(body: Any) -> list[str]:
    """The text blocks of the first user message of a Messages API request body."""
    if not isinstance(body, dict):
        return []
    messages = body.get("messages") or []
    if not messages:
        return []
    content = messages[0].get("content")
    if isinstance(content, str):
        return [content]
    return [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]


_FILE_NAME = re.compile(r"[\w./-]+\.(?:py|md|txt|toml|json|ya?ml)\b")


def note_taker(body: Mapping[str, Any]) -> Turn:
    """A stateless model for demos: it appends the task, as a comment line, to the first file the
    prompt names (``NOTES.md`` if none) with one Bash call, then says it is done."""
    messages = body.get("messages") or []
    # Once any tool result is in the conversation, the one edit has been made.
    if any(
        isinstance(block, dict) and block.get("type") == "tool_result"
        for message in messages
        if isinstance(message.get("content"), list)
        for block in message["content"]
    ):
        return text("Done: I noted the task in the file it names.")
    prompt = " ".join(first_user_text(body)).strip().splitlines()[-1].strip() if messages else ""
    match = _FILE_NAME.search(prompt)
    target = match.group(0) if match else "NOTES.md"
    line = f"# TODO: {prompt}"
    command = f"printf '%s\\n' {shlex.quote(line)} >> {shlex.quote(target)}"
    return tool_use("Bash", {"command": command, "description": f"Note the task in {target}"},
                    message=f"I'll note this in {target}.")


def _sse(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _message_events(turn: Turn, model: str) -> Iterator[bytes]:
    usage = {
        "input_tokens": turn.input_tokens,
        "output_tokens": 1,
        "cache_creation_input_tokens": turn.cache_creation_tokens,
        "cache_read_input_tokens": turn.cache_read_tokens,
    }
    message = {
        "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
        "model": model, "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage,
    }
    yield _sse("message_start", {"type": "message_start", "message": message})
    index = 0
    if turn.text is not None:
        yield _sse("content_block_start", {"type": "content_block_start", "index": index,
                                           "content_block": {"type": "text", "text": ""}})
        yield _sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                           "delta": {"type": "text_delta", "text": turn.text}})
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
        index += 1
    if turn.tool_name is not None:
        block = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}",
                 "name": turn.tool_name, "input": {}}
        payload = json.dumps(turn.tool_input or {})
        yield _sse("content_block_start", {"type": "content_block_start", "index": index,
                                           "content_block": block})
        # Split the input like the real API does, so the CLI has to reassemble partial JSON.
        half = len(payload) // 2
        for part in (payload[:half], payload[half:]):
            yield _sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                               "delta": {"type": "input_json_delta",
                                                         "partial_json": part}})
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
    stop_reason = "tool_use" if turn.tool_name is not None else "end_turn"
    yield _sse("message_delta", {"type": "message_delta",
                                 "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                 "usage": {"output_tokens": turn.output_tokens}})
    yield _sse("message_stop", {"type": "message_stop"})


def _message_json(turn: Turn, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if turn.text is not None:
        content.append({"type": "text", "text": turn.text})
    if turn.tool_name is not None:
        content.append({"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}",
                        "name": turn.tool_name, "input": dict(turn.tool_input or {})})
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
        "model": model, "content": content,
        "stop_reason": "tool_use" if turn.tool_name is not None else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": turn.input_tokens, "output_tokens": turn.output_tokens,
                  "cache_creation_input_tokens": turn.cache_creation_tokens,
                  "cache_read_input_tokens": turn.cache_read_tokens},
    }


def _make_handler(api: ScriptedAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # The recorded requests are the log.

        def do_GET(self) -> None:
            self._record(b"", None)
            self._send_json(404, {"type": "error", "error": {"type": "not_found_error",
                                                             "message": "Not found"}})

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            parsed: Any = None
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None

            if path.endswith("/count_tokens"):
                self._record(body, None)
                self._send_json(200, {"input_tokens": 100})
                return
            if not path.endswith("/v1/messages"):
                self._record(body, None)
                self._send_json(404, {"type": "error", "error": {"type": "not_found_error",
                                                                 "message": "Not found"}})
                return

            name = _script_name(parsed)
            with api._lock:
                known = name is not None and name in api._scripts
            # Requests without the task's tools are the CLI's own side calls (titles, summaries):
            # they must not consume the task's script.
            is_main = known and isinstance(parsed, dict) and bool(parsed.get("tools"))
            self._record(body, name if is_main else None)
            if is_main and name is not None:
                turn = api._next_turn(name)
            elif api.responder is not None and isinstance(parsed, dict) and parsed.get("tools"):
                turn = api.responder(parsed)
            else:
                turn = text("OK")
            self._answer(turn, parsed)

        def _record(self, body: bytes, script: str | None) -> None:
            api._record(RecordedRequest(self.command, self.path, dict(self.headers.items()),
                                        body, script, time.monotonic()))

        def _answer(self, turn: Turn, request: Any) -> None:
            if turn.hang_s:
                api._wait(turn.hang_s)
            if turn.drop:
                self.close_connection = True
                self.connection.close()
                return
            if turn.status is not None:
                etype = _ERROR_TYPES.get(turn.status, "api_error")
                message = _ERROR_MESSAGES.get(turn.status, "Error")
                self._send_json(turn.status, {"type": "error",
                                              "error": {"type": etype, "message": message}},
                                {"x-should-retry": "true"} if turn.status >= 429 else {})
                return
            model = request.get("model", api.model) if isinstance(request, dict) else api.model
            if isinstance(request, dict) and request.get("stream"):
                body = b"".join(_message_events(turn, model))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self._send_json(200, _message_json(turn, model))

        def _send_json(self, status: int, payload: Mapping[str, Any],
                       headers: Mapping[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _script_name(body: Any) -> str | None:
    for chunk in first_user_text(body):
        match = MARKER.search(chunk)
        if match:
            return match.group(1)
    return None


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    """Polls ``predicate`` until it is true or ``timeout`` passes (for kill-mid-run tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
