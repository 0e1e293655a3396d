"""The stream-json parser, on real Claude Code 2.1.332 transcripts and on damaged input.

The transcripts are real CLI output, recorded against a scripted Messages API (so the model text and
token counts are synthetic; the costs are the CLI's own), with long init arrays shortened.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from parallelcc_sdk.agents.base import AgentOutcome, Progress
from parallelcc_sdk.agents.stream_json import NO_RESULT_ERROR, StreamJsonParser, describe_tool
from parallelcc_sdk.models import TaskStatus

# 5.A: success with one Bash tool call, exit 0.
SUCCESS_WITH_TOOL = r"""{"type":"system","subtype":"init","cwd":"/home/user/task","session_id":"5367ec12-2453-4523-bbd3-bb7477f42abf","tools":["Task","Bash","Edit","Read","Write","WebFetch","WebSearch","NotebookEdit","Skill","ToolSearch"],"mcp_servers":[],"model":"claude-opus-5-5","permissionMode":"bypassPermissions","slash_commands":["compact","context","init","review","security-review"],"terminal_slash_commands":["doctor","color","focus","reload-plugins"],"apiKeySource":"ANTHROPIC_API_KEY","claude_code_version":"2.1.332","output_style":"default","agents":["claude","Explore","general-purpose","Plan","statusline-setup"],"skills":[],"plugins":[{"name":"cc-plugin-agents-md","path":"builtin","source":"cc-plugin-agents-md@builtin"},{"name":"cc-plugin-privacy","path":"builtin","source":"cc-plugin-privacy@builtin"},{"name":"cc-plugin-plugin-authoring","path":"builtin","source":"cc-plugin-plugin-authoring@builtin"}],"capabilities":["interrupt_receipt_v1","interrupt_cancel_queued_v1","interrupt_send_now_v1"],"analytics_disabled":true,"product_feedback_disabled":true,"served_by_anthropic":false,"uuid":"77382886-cbb5-4f65-9029-497290bde0f0","sandbox_enabled":false,"memory_paths":{"auto":"/home/user/.claude/projects/-home-user-task/memory/"},"original_cwd":"/home/user/task","additional_directories":[],"fast_mode_state":"off","fast_mode_disabled_reason":"sdk_opt_in_required","per_turn_effort_active":true,"ultrathink_available":false,"ultrathink_typed_raises":false,"view_mode":"default"}
{"type":"assistant","message":{"id":"msg_21ba806d766f45dc8d334c5a","type":"message","role":"assistant","model":"claude-opus-5-5","content":[{"type":"text","text":"I'll create the file."}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1,"cache_creation_input_tokens":11800,"cache_read_input_tokens":0},"context_management":null},"parent_tool_use_id":null,"session_id":"5367ec12-2453-4523-bbd3-bb7477f42abf","uuid":"4ea0444e-b57e-4194-89d8-3c1bdc66e625","timestamp":"2026-11-27T06:08:55.109Z","request_id":"req_011CXXXXXXXXXXXXXXXXXXXX"}
{"type":"assistant","message":{"id":"msg_21ba806d766f45dc8d334c5a","type":"message","role":"assistant","model":"claude-opus-5-5","content":[{"type":"tool_use","id":"toolu_0182e7dc0808bc4a9cb6196a","name":"Bash","input":{"command":"echo hello > hello.txt","description":"Create hello.txt"}}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1,"cache_creation_input_tokens":11800,"cache_read_input_tokens":0},"context_management":null},"parent_tool_use_id":null,"session_id":"5367ec12-2453-4523-bbd3-bb7477f42abf","uuid":"dce1c5ec-686c-4928-bfb2-6d95821ec643","timestamp":"2026-11-27T06:08:55.111Z","request_id":"req_011CXXXXXXXXXXXXXXXXXXXX"}
{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_0182e7dc0808bc4a9cb6196a","type":"tool_result","content":"(Bash completed with no output)","is_error":false}]},"parent_tool_use_id":null,"session_id":"5367ec12-2453-4523-bbd3-bb7477f42abf","uuid":"9b27d620-a4f4-4ca2-a2df-7d44dd2e6ab5","timestamp":"2026-11-27T06:08:55.162Z","tool_use_result":{"stdout":"","stderr":"","interrupted":false,"isImage":false,"noOutputExpected":false},"tool_result_meta":[{"id":"toolu_0182e7dc0808bc4a9cb6196a","permission_decision":{"decision":"accept","source":"config","reason_type":"mode"}}]}
{"type":"assistant","message":{"id":"msg_340e4f51a5ec483cb07f240f","type":"message","role":"assistant","model":"claude-opus-5-5","content":[{"type":"text","text":"Created hello.txt containing 'hello'."}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":60,"output_tokens":1,"cache_creation_input_tokens":150,"cache_read_input_tokens":11800},"context_management":null},"parent_tool_use_id":null,"session_id":"5367ec12-2453-4523-bbd3-bb7477f42abf","uuid":"17bd7ad0-60b3-418b-9ca8-7a63b9e3099b","timestamp":"2026-11-27T06:08:55.179Z","request_id":"req_011CXXXXXXXXXXXXXXXXXXXX"}
{"duration_api_ms":55,"stop_reason":"end_turn","session_id":"5367ec12-2453-4523-bbd3-bb7477f42abf","total_cost_usd":0.064442,"usage":{"input_tokens":63,"cache_creation_input_tokens":11950,"cache_read_input_tokens":11800,"output_tokens":104,"output_tokens_details":{"thinking_tokens":0},"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard","fallback_credit":null},"modelUsage":{"claude-opus-5-5":{"inputTokens":63,"outputTokens":104,"cacheReadInputTokens":11800,"cacheCreationInputTokens":11950,"webSearchRequests":0,"costUSD":0.064442,"contextWindow":1000000,"maxOutputTokens":128000,"thinkingTokens":0,"cacheCreationEphemeral5mInputTokens":0,"cacheCreationEphemeral1hInputTokens":0,"canonicalModel":"claude-opus-5-5","provider":"firstParty","costBasis":"list"}},"permission_denials":[],"terminal_reason":"completed","fast_mode_state":"off","fast_mode_disabled_reason":"sdk_opt_in_required","subagent_stats":{"spawned":0,"requested":{"background":0,"foreground":0,"unset":0},"started_in_background":0,"max_depth":0,"spawned_by_subagents":0,"completed":0,"failed":0,"killed":{"parent":0,"user":0,"system":0},"refused":{"depth_limit":0,"concurrency_limit":0,"budget":0},"by_type":{}},"safety_stops":0,"is_error":false,"num_turns":2,"subtype":"success","api_error_status":null,"result":"Created hello.txt containing 'hello'.","ttft_ms":83,"type":"result","duration_ms":158,"uuid":"0b2fe573-3ff4-4769-a2ca-491235e758e1","ttft_stream_ms":83,"time_to_request_ms":76,"first_content_frame_ms":83,"queued_turn_count":0,"result_index":0,"model_usage_since_last_result":{"claude-opus-5-5":{"inputTokens":63,"outputTokens":104,"cacheReadInputTokens":11800,"cacheCreationInputTokens":11950,"webSearchRequests":0,"costUSD":0.064442,"contextWindow":1000000,"maxOutputTokens":128000,"thinkingTokens":0,"cacheCreationEphemeral5mInputTokens":0,"cacheCreationEphemeral1hInputTokens":0,"canonicalModel":"claude-opus-5-5","provider":"firstParty","costBasis":"list"}}}
"""  # noqa: E501

# 5.B: --max-turns 2 while the model keeps calling tools, exit 1.
MAX_TURNS = r"""{"type":"system","subtype":"init","cwd":"/home/user/task","session_id":"528401a6-01e4-49ac-b2a1-9508a255fa1d","tools":["Task","Bash","Edit","Read","Write","WebFetch","WebSearch","NotebookEdit","Skill","ToolSearch"],"mcp_servers":[],"model":"claude-opus-5-5","permissionMode":"bypassPermissions","slash_commands":["compact","context","init","review","security-review"],"apiKeySource":"ANTHROPIC_API_KEY","claude_code_version":"2.1.332","output_style":"default","agents":["claude","Explore","general-purpose","Plan","statusline-setup"],"skills":[],"plugins":[],"uuid":"0d1e5f0e-8f7a-4a43-9d4c-3f2c11c1a001","original_cwd":"/home/user/task","additional_directories":[]}
{"type":"assistant","message":{"id":"msg_721aa143ab7a4a5287dd5035","type":"message","role":"assistant","model":"claude-opus-5-5","content":[{"type":"text","text":"I'll create the file."}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1,"cache_creation_input_tokens":11800,"cache_read_input_tokens":0},"context_management":null},"parent_tool_use_id":null,"session_id":"528401a6-01e4-49ac-b2a1-9508a255fa1d","uuid":"a1b0c3d4-0001-4e5f-8a9b-000000000001","timestamp":"2026-11-27T06:09:09.700Z","request_id":"req_011CXXXXXXXXXXXXXXXXXXXX"}
{"type":"assistant","message":{"id":"msg_721aa143ab7a4a5287dd5035","type":"message","role":"assistant","model":"claude-opus-5-5","content":[{"type":"tool_use","id":"toolu_01aebaa4dba0644d3784bcd6","name":"Bash","input":{"command":"echo hello > hello.txt","description":"Create hello.txt"}}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1,"cache_creation_input_tokens":11800,"cache_read_input_tokens":0},"context_management":null},"parent_tool_use_id":null,"session_id":"528401a6-01e4-49ac-b2a1-9508a255fa1d","uuid":"a1b0c3d4-0002-4e5f-8a9b-000000000002","timestamp":"2026-11-27T06:09:09.702Z","request_id":"req_011CXXXXXXXXXXXXXXXXXXXX"}
{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_01aebaa4dba0644d3784bcd6","type":"tool_result","content":"(Bash completed with no output)","is_error":false}]},"parent_tool_use_id":null,"session_id":"528401a6-01e4-49ac-b2a1-9508a255fa1d","uuid":"aae95f09-76d3-4153-8ec3-bad4b7fa15bb","timestamp":"2026-11-27T06:09:09.779Z","tool_use_result":{"stdout":"","stderr":"","interrupted":false,"isImage":false,"noOutputExpected":false}}
{"type":"assistant","message":{"id":"msg_f35f75747a7741bcad2e4ff5","type":"message","role":"assistant","model":"claude-opus-5-5","content":[{"type":"text","text":"I'll create the file."}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1,"cache_creation_input_tokens":11800,"cache_read_input_tokens":0},"context_management":null},"parent_tool_use_id":null,"session_id":"528401a6-01e4-49ac-b2a1-9508a255fa1d","uuid":"a1b0c3d4-0003-4e5f-8a9b-000000000003","timestamp":"2026-11-27T06:09:09.830Z","request_id":"req_011CXXXXXXXXXXXXXXXXXXXX"}
{"type":"assistant","message":{"id":"msg_f35f75747a7741bcad2e4ff5","type":"message","role":"assistant","model":"claude-opus-5-5","content":[{"type":"tool_use","id":"toolu_0152d1fb0bc9eb493ea5e455","name":"Bash","input":{"command":"echo hello > hello.txt","description":"Create hello.txt"}}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1,"cache_creation_input_tokens":11800,"cache_read_input_tokens":0},"context_management":null},"parent_tool_use_id":null,"session_id":"528401a6-01e4-49ac-b2a1-9508a255fa1d","uuid":"a1b0c3d4-0004-4e5f-8a9b-000000000004","timestamp":"2026-11-27T06:09:09.832Z","request_id":"req_011CXXXXXXXXXXXXXXXXXXXX"}
{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_0152d1fb0bc9eb493ea5e455","type":"tool_result","content":"(Bash completed with no output)","is_error":false}]},"parent_tool_use_id":null,"session_id":"528401a6-01e4-49ac-b2a1-9508a255fa1d","uuid":"4ae53db8-5a14-4f96-ab58-587d9f7a5de3","timestamp":"2026-11-27T06:09:09.847Z","tool_use_result":{"stdout":"","stderr":"","interrupted":false,"isImage":false,"noOutputExpected":false}}
{"duration_api_ms":139,"stop_reason":"tool_use","session_id":"528401a6-01e4-49ac-b2a1-9508a255fa1d","total_cost_usd":0.121624,"usage":{"input_tokens":6,"cache_creation_input_tokens":23600,"cache_read_input_tokens":0,"output_tokens":180,"output_tokens_details":{"thinking_tokens":0},"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard","fallback_credit":null},"modelUsage":{"claude-opus-5-5":{"inputTokens":6,"outputTokens":180,"cacheReadInputTokens":0,"cacheCreationInputTokens":23600,"webSearchRequests":0,"costUSD":0.121624,"contextWindow":1000000,"maxOutputTokens":128000,"thinkingTokens":0,"canonicalModel":"claude-opus-5-5","provider":"firstParty","costBasis":"list"}},"permission_denials":[],"terminal_reason":"max_turns","is_error":true,"num_turns":3,"subtype":"error_max_turns","errors":["Reached maximum number of turns (2)"],"type":"result","duration_ms":364,"uuid":"271b169e-67b9-4d0c-a559-fcfd8949f5a3","queued_turn_count":0,"result_index":0}
"""  # noqa: E501

# 5.C: --max-budget-usd 0.50 and one expensive response, exit 1 (result usage is all zeros).
BUDGET_EXCEEDED = r"""{"type":"system","subtype":"init","cwd":"/home/user/task","session_id":"7bca6c5b-05c1-4f01-b598-ed8e0d23b1d5","tools":["Task","Bash","Edit","Read","Write"],"mcp_servers":[],"model":"claude-opus-5-5","permissionMode":"bypassPermissions","slash_commands":[],"apiKeySource":"ANTHROPIC_API_KEY","claude_code_version":"2.1.332","output_style":"default","agents":[],"skills":[],"plugins":[],"uuid":"5b2f8a1e-7c3d-4e9f-a0b1-c2d3e4f5a6b7"}
{"type":"assistant","message":{"id":"msg_1c320abe744144e1b7a93604","type":"message","role":"assistant","model":"claude-opus-5-5","content":[{"type":"text","text":"I'll create the file."}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":400000,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0},"context_management":null},"parent_tool_use_id":null,"session_id":"7bca6c5b-05c1-4f01-b598-ed8e0d23b1d5","uuid":"bb4b8e7f-59ed-436a-ab61-58c373aa1bad","timestamp":"2026-11-27T06:09:13.857Z","request_id":"req_011CXXXXXXXXXXXXXXXXXXXX"}
{"type":"assistant","message":{"id":"msg_1c320abe744144e1b7a93604","type":"message","role":"assistant","model":"claude-opus-5-5","content":[{"type":"tool_use","id":"toolu_01cfa6fd3da83f43a6908d2d","name":"Bash","input":{"command":"echo hello > hello.txt","description":"Create hello.txt"}}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":400000,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0},"context_management":null},"parent_tool_use_id":null,"session_id":"7bca6c5b-05c1-4f01-b598-ed8e0d23b1d5","uuid":"eaf1ec32-29fb-495b-9071-d288d08c6ddf","timestamp":"2026-11-27T06:09:13.860Z","request_id":"req_011CXXXXXXXXXXXXXXXXXXXX"}
{"duration_api_ms":0,"stop_reason":"tool_use","session_id":"7bca6c5b-05c1-4f01-b598-ed8e0d23b1d5","total_cost_usd":2,"usage":{"output_tokens_details":{"thinking_tokens":0},"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard","fallback_credit":null},"modelUsage":{"claude-opus-5-5":{"inputTokens":400000,"outputTokens":20000,"cacheReadInputTokens":0,"cacheCreationInputTokens":0,"webSearchRequests":0,"costUSD":2,"contextWindow":1000000,"maxOutputTokens":128000,"thinkingTokens":0,"canonicalModel":"claude-opus-5-5","provider":"firstParty","costBasis":"list"}},"permission_denials":[],"terminal_reason":"budget_exhausted","is_error":true,"num_turns":1,"subtype":"error_max_budget_usd","errors":["Reached maximum budget ($0.5)"],"type":"result","duration_ms":141,"uuid":"a6c17785-2424-4af7-bfc3-64fbe869a902","queued_turn_count":0,"result_index":0}
"""  # noqa: E501

# 5.D: 529 retried twice by the CLI, then given up (the init line is left out), exit 1.
OVERLOADED_529_TAIL = r"""{"type":"system","subtype":"api_retry","attempt":1,"max_retries":2,"retry_delay_ms":532,"error_status":529,"error":"overloaded","session_id":"b383de1e-0909-4b97-805c-5c520c28783f","uuid":"7a3a84bc-2548-4e4f-8ef1-73b313af7142"}
{"type":"system","subtype":"api_retry","attempt":2,"max_retries":2,"retry_delay_ms":1063,"error_status":529,"error":"overloaded","session_id":"b383de1e-0909-4b97-805c-5c520c28783f","uuid":"8c1b4da0-cf40-4c18-b7d7-4d7b7166049e"}
{"type":"assistant","message":{"id":"4cd95a31-1910-470f-b009-13feffc4ae93","type":"message","role":"assistant","model":"<synthetic>","stop_reason":"stop_sequence","content":[{"type":"text","text":"API Error: 529 Overloaded. This is a server-side issue, usually temporary — try again in a moment. If it persists, check your inference gateway (api.anthropic.com)."}]},"parent_tool_use_id":null,"session_id":"b383de1e-0909-4b97-805c-5c520c28783f","uuid":"a2fc3c1b-3371-4678-811b-61e5e6c7c7b7","error":"server_error","is_api_error_message":true,"api_error_status":529,"api_error_type":"overloaded_error"}
{"type":"result","subtype":"success","is_error":true,"num_turns":1,"duration_ms":1804,"duration_api_ms":0,"stop_reason":"stop_sequence","terminal_reason":"api_error","api_error_status":529,"api_error_type":"overloaded_error","total_cost_usd":0,"result":"API Error: 529 Overloaded. This is a server-side issue, usually temporary — try again in a moment. If it persists, check your inference gateway (api.anthropic.com).","permission_denials":[],"session_id":"b383de1e-0909-4b97-805c-5c520c28783f"}
"""  # noqa: E501


INIT = json.dumps({"type": "system", "subtype": "init", "cwd": "/home/user/task",
                   "session_id": "s-1", "model": "claude-opus-5-5", "tools": ["Bash"]})


def run(
    transcript: str | Sequence[str], exit_code: int | None
) -> tuple[list[Progress], AgentOutcome]:
    lines = transcript.splitlines() if isinstance(transcript, str) else list(transcript)
    parser = StreamJsonParser()
    progress = [p for line in lines for p in parser.feed("stdout", line)]
    return progress, parser.finish(exit_code)


def result_line(**fields: Any) -> str:
    base: dict[str, Any] = {"type": "result", "subtype": "success", "is_error": True,
                            "num_turns": 1, "duration_ms": 10, "duration_api_ms": 0,
                            "session_id": "s-1", "total_cost_usd": 0, "permission_denials": [],
                            "terminal_reason": "api_error"}
    base.update(fields)
    return json.dumps(base)


def api_error_line(kind: str, status: int | None, text: str) -> str:
    return json.dumps({
        "type": "assistant", "error": kind, "is_api_error_message": True,
        "api_error_status": status,
        "message": {"id": "4cd95a31-1910-470f-b009-13feffc4ae93", "model": "<synthetic>",
                    "role": "assistant", "stop_reason": "stop_sequence",
                    "content": [{"type": "text", "text": text}]},
        "parent_tool_use_id": None, "session_id": "s-1"})


# -- the recorded transcripts ----------------------------------------------------------------------

def test_success_transcript_completes_with_the_result_lines_numbers() -> None:
    _, outcome = run(SUCCESS_WITH_TOOL, 0)

    assert outcome.status == TaskStatus.COMPLETED
    assert outcome.error is None and not outcome.transient
    m = outcome.metrics
    assert m.cost_usd == pytest.approx(0.064442)
    # From modelUsage (summed over models), not the per-line placeholder usage.
    assert (m.input_tokens, m.output_tokens) == (63, 104)
    assert (m.cache_read_tokens, m.cache_creation_tokens) == (11800, 11950)
    assert m.num_turns == 2
    assert m.session_id == "5367ec12-2453-4523-bbd3-bb7477f42abf"
    assert m.final_text == "Created hello.txt containing 'hello'."


def test_every_line_is_a_raw_event_for_events_jsonl() -> None:
    lines = SUCCESS_WITH_TOOL.splitlines()
    progress, _ = run(lines, 0)
    assert [p.raw for p in progress] == [json.loads(line) for line in lines]


def test_progress_reports_turns_tools_text_and_cost_once_known() -> None:
    progress, _ = run(SUCCESS_WITH_TOOL, 0)
    messages = [p.message for p in progress]

    assert messages[0] == "started · claude-opus-5-5"
    assert messages[1] == "turn 1 · I'll create the file."
    assert messages[2] == "turn 1 · Bash: echo hello > hello.txt"
    assert messages[3] is None  # the tool result
    assert messages[4] == "turn 2 · Created hello.txt containing 'hello'."
    assert messages[5] is not None and messages[5].startswith("finished")
    assert progress[2].data["turn"] == 1
    assert progress[2].data["tool"] == "Bash: echo hello > hello.txt"
    assert progress[2].data["text"] == "I'll create the file."
    assert progress[4].data["turn"] == 2
    # The CLI reports cost only on its result line.
    assert [p.cost_usd for p in progress[:5]] == [None] * 5
    assert progress[5].cost_usd == pytest.approx(0.064442)


def test_success_line_with_a_failing_exit_code_is_not_completed() -> None:
    _, outcome = run(SUCCESS_WITH_TOOL, 1)
    assert outcome.status == TaskStatus.FAILED
    assert outcome.error is not None and "exit code 1" in outcome.error
    assert outcome.metrics.cost_usd == pytest.approx(0.064442)


def test_max_turns_fails_with_the_reason_and_is_not_transient() -> None:
    progress, outcome = run(MAX_TURNS, 1)

    assert outcome.status == TaskStatus.FAILED
    assert outcome.error == "max turns reached: Reached maximum number of turns (2)"
    assert not outcome.transient
    assert outcome.metrics.num_turns == 3
    assert outcome.metrics.cost_usd == pytest.approx(0.121624)
    assert outcome.metrics.final_text is None
    assert progress[-1].message is not None and "max turns" in progress[-1].message


def test_budget_exceeded_takes_tokens_from_model_usage_when_usage_is_zero() -> None:
    _, outcome = run(BUDGET_EXCEEDED, 1)

    assert outcome.status == TaskStatus.FAILED
    assert outcome.error == "task budget exceeded: Reached maximum budget ($0.5)"
    assert not outcome.transient
    assert outcome.metrics.cost_usd == 2.0
    assert (outcome.metrics.input_tokens, outcome.metrics.output_tokens) == (400000, 20000)


def test_overloaded_529_is_transient_and_retries_are_reported() -> None:
    progress, outcome = run(OVERLOADED_529_TAIL, 1)

    assert outcome.status == TaskStatus.FAILED
    assert outcome.transient
    assert outcome.error is not None
    assert outcome.error.startswith("API error 529 (overloaded_error): API Error: 529 Overloaded.")
    retries = [p for p in progress if "retry" in p.data]
    assert [p.message for p in retries] == [
        "API retry 1/2 after HTTP 529 (overloaded)",
        "API retry 2/2 after HTTP 529 (overloaded)",
    ]
    assert retries[0].data["retry"]["delay_ms"] == 532
    # The CLI's synthetic error message is not a model turn.
    assert outcome.metrics.num_turns == 1
    assert all(p.data["turn"] == 0 for p in progress)


# -- the other error tails ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kind", "status", "etype", "terminal", "transient"),
    [
        ("authentication_failed", 401, "authentication_error", "api_error", False),
        ("authentication_failed", 403, "permission_error", "api_error", False),
        ("invalid_request", 400, "invalid_request_error", "prompt_too_long", False),
        ("invalid_request", 400, "invalid_request_error", "api_error", False),
        ("rate_limit", 429, "rate_limit_error", "api_error", True),
        ("server_error", 500, "api_error", "api_error", True),
        ("server_error", 503, None, "api_error", True),
        ("server_error", None, None, "api_error", True),  # connection dropped
        ("authentication_failed", None, None, "api_error", False),  # not logged in
    ],
)
def test_api_errors_fail_and_only_server_side_trouble_is_transient(
    kind: str, status: int | None, etype: str | None, terminal: str, transient: bool
) -> None:
    text = f"API Error: {status} something"
    _, outcome = run(
        [INIT, api_error_line(kind, status, text),
         result_line(api_error_status=status, api_error_type=etype, terminal_reason=terminal,
                     result=text)],
        1,
    )
    assert outcome.status == TaskStatus.FAILED
    assert outcome.transient is transient
    assert outcome.error is not None and text in outcome.error
    if status is not None and terminal == "api_error":
        assert outcome.error.startswith(f"API error {status}")


def test_subscription_limit_429_is_not_transient() -> None:
    rejected = json.dumps({"type": "rate_limit_event", "rate_limit_info": {
        "status": "rejected", "resetsAt": 1790000000, "rateLimitType": "five_hour"}})
    progress, outcome = run(
        [INIT, rejected, api_error_line("rate_limit", 429, "You've hit your 5-hour limit"),
         result_line(api_error_status=429, result="You've hit your 5-hour limit")],
        1,
    )
    assert outcome.status == TaskStatus.FAILED
    assert not outcome.transient
    assert progress[1].message == "subscription usage limit reached"


def test_error_during_execution_carries_the_errors_list() -> None:
    line = result_line(subtype="error_during_execution", num_turns=0, terminal_reason=None,
                       errors=["No conversation found with session ID: abc"])
    _, outcome = run([line], 1)
    assert outcome.status == TaskStatus.FAILED
    assert outcome.error == "error during execution: No conversation found with session ID: abc"
    assert not outcome.transient


# -- crashes and damaged streams -------------------------------------------------------------------

@pytest.mark.parametrize("exit_code", [143, -15, None, 0])
def test_no_result_line_is_a_failure(exit_code: int | None) -> None:
    # SIGINT exits 0 with no result; a result is required whatever the exit code.
    lines = SUCCESS_WITH_TOOL.splitlines()[:4]
    _, outcome = run(lines, exit_code)
    assert outcome.status == TaskStatus.FAILED
    assert outcome.error is not None and outcome.error.startswith(NO_RESULT_ERROR)
    assert not outcome.transient
    assert outcome.metrics.num_turns == 1
    assert outcome.metrics.session_id == "5367ec12-2453-4523-bbd3-bb7477f42abf"


def test_usage_errors_on_stderr_explain_a_missing_result() -> None:
    parser = StreamJsonParser()
    assert parser.feed("stderr", "error: unknown option '--no-such-flag'") == ()
    outcome = parser.finish(1)
    assert outcome.error == (
        f"{NO_RESULT_ERROR} (exit code 1: error: unknown option '--no-such-flag')"
    )


def test_garbage_and_unknown_events_are_ignored() -> None:
    lines = SUCCESS_WITH_TOOL.splitlines()
    noisy = [
        "", "   ", "not json at all", "[1, 2, 3]", '{"type": "assistant", "message": ', "null",
        lines[0],
        json.dumps({"type": "from_the_future", "payload": {"x": 1}}),
        json.dumps({"type": "system", "subtype": "new_subtype"}),
        json.dumps({"type": "assistant", "message": "not an object"}),
        json.dumps({"type": "assistant", "message": {"id": "m", "content": [7, None, {}]}}),
        *lines[1:],
    ]
    progress, outcome = run(noisy, 0)
    assert outcome.status == TaskStatus.COMPLETED
    unknown = [p for p in progress if p.raw and p.raw.get("type") == "from_the_future"]
    assert len(unknown) == 1 and unknown[0].message is None
    assert outcome.metrics.cost_usd == pytest.approx(0.064442)


def test_lines_with_carriage_returns_and_surrounding_space_parse() -> None:
    lines = [f"  {line}\r" for line in SUCCESS_WITH_TOOL.splitlines()]
    _, outcome = run(lines, 0)
    assert outcome.status == TaskStatus.COMPLETED


def test_token_totals_sum_over_models_and_fall_back_to_usage() -> None:
    usage = {"input_tokens": 5, "output_tokens": 6, "cache_read_input_tokens": 7,
             "cache_creation_input_tokens": 8}
    model_usage = {
        "claude-opus-5-5": {"inputTokens": 10, "outputTokens": 20, "cacheReadInputTokens": 30,
                            "cacheCreationInputTokens": 40, "costUSD": 0.5},
        "claude-haiku-5": {"inputTokens": 1, "outputTokens": 2, "cacheReadInputTokens": 3,
                           "cacheCreationInputTokens": 4, "costUSD": 0.1},
    }
    ok = {"subtype": "success", "is_error": False, "terminal_reason": "completed", "result": "ok"}
    _, summed = run([result_line(**ok, usage=usage, modelUsage=model_usage,
                                 total_cost_usd=0.6)], 0)
    assert (summed.metrics.input_tokens, summed.metrics.output_tokens) == (11, 22)
    assert (summed.metrics.cache_read_tokens, summed.metrics.cache_creation_tokens) == (33, 44)
    assert summed.metrics.cost_usd == pytest.approx(0.6)

    _, fallback = run([result_line(**ok, usage=usage)], 0)
    assert (fallback.metrics.input_tokens, fallback.metrics.output_tokens) == (5, 6)
    assert (fallback.metrics.cache_read_tokens, fallback.metrics.cache_creation_tokens) == (7, 8)


def test_turns_count_messages_not_lines_and_not_subagent_traffic() -> None:
    def block(message_id: str, parent: str | None = None) -> str:
        return json.dumps({"type": "assistant", "parent_tool_use_id": parent, "message": {
            "id": message_id, "model": "m", "content": [{"type": "text", "text": "hi"}]}})

    progress, _ = run([INIT, block("a"), block("a"), block("sub", parent="toolu_1"), block("b")],
                      None)
    assert [p.data["turn"] for p in progress] == [0, 1, 1, 1, 2]


@pytest.mark.parametrize(
    ("name", "tool_input", "label"),
    [
        ("Edit", {"file_path": "/home/user/task/src/app.py"}, "Edit src/app.py"),
        ("Write", {"file_path": "notes.md"}, "Write notes.md"),
        ("Read", {"file_path": "/etc/hosts"}, "Read /etc/hosts"),
        ("Bash", {"command": "pytest -q\n  && echo done"}, "Bash: pytest -q && echo done"),
        ("Bash", {"command": "x" * 200}, "Bash: " + "x" * 59 + "…"),
        ("Grep", {"pattern": "TODO"}, "Grep TODO"),
        ("Task", {"description": "find callers"}, "Task find callers"),
        ("mcp__thing", "not a dict", "mcp__thing"),
        (None, None, "tool"),
    ],
)
def test_tool_labels(name: Any, tool_input: Any, label: str) -> None:
    assert describe_tool(name, tool_input, "/home/user/task") == label
