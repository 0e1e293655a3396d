"""``result.show(task_id)``: the agent's turns, tool calls and results, the cost per turn and the
diff, on recorded Claude Code transcripts and on a real run of the CLI against the scripted API."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from support.e2e import local_run_options, wait_for
from support.gitrepo import make_repo
from support.scripted_anthropic import ScriptedAnthropic, text, tool_use
from test_claude_cli import _AUTH_VARS, agent_for, needs_claude
from test_claude_parser import MAX_TURNS, OVERLOADED_529_TAIL, SUCCESS_WITH_TOOL

import parallelcc_sdk as pcc
from parallelcc_sdk.views.diff import diff_html
from parallelcc_sdk.views.task import print_task
from parallelcc_sdk.views.transcript import Note, parse_events

ANSI = re.compile(r"\x1b\[[0-9;]*m")


# -- reading a transcript ------------------------------------------------------------------------


def test_turns_tool_calls_and_results_of_a_recorded_transcript() -> None:
    transcript = parse_events(SUCCESS_WITH_TOOL.splitlines())
    (attempt,) = transcript.attempts
    assert attempt.model == "claude-opus-5-5" and attempt.succeeded
    first, second = attempt.turns
    assert first.texts == ["I'll create the file."]
    (call,) = first.tool_calls
    assert (call.label, call.result, call.is_error) == (
        "Bash: echo hello > hello.txt", "(Bash completed with no output)", False)
    assert second.texts == ["Created hello.txt containing 'hello'."]
    assert attempt.final_text == "Created hello.txt containing 'hello'."
    # The turns share the CLI's own total; the first turn wrote the cache, so it cost most.
    assert first.cost_usd is not None and second.cost_usd is not None
    assert first.cost_usd + second.cost_usd == pytest.approx(0.064442)
    assert first.cost_usd > 5 * second.cost_usd
    assert (first.input_tokens, first.cache_creation_tokens) == (3, 11800)


def test_a_failed_attempt_and_api_errors_are_notes() -> None:
    transcript = parse_events(MAX_TURNS.splitlines())
    assert transcript.attempts[0].error == "max_turns: Reached maximum number of turns (2)"
    retries = parse_events(OVERLOADED_529_TAIL.splitlines()).attempts[0]
    notes = [e for e in retries.entries if isinstance(e, Note)]
    assert [n.text for n in notes[:2]] == ["API retry 1/2 after HTTP 529 (overloaded)",
                                          "API retry 2/2 after HTTP 529 (overloaded)"]
    assert notes[2].is_error and notes[2].text.startswith("API Error: 529 Overloaded.")
    assert retries.turns == [] and not retries.succeeded


def test_a_retried_task_has_one_attempt_per_init_and_bad_lines_are_skipped() -> None:
    lines = [*MAX_TURNS.splitlines(), "not json", "[1, 2]", *SUCCESS_WITH_TOOL.splitlines()]
    transcript = parse_events(lines)
    assert len(transcript.attempts) == 2 and transcript.skipped_lines == 2
    assert [a.succeeded for a in transcript.attempts] == [False, True]
    assert len(transcript.turns) == 4


# -- the view of a task, from a run folder -------------------------------------------------------


@pytest.fixture
def command_run(tmp_path: Path, pcc_git_env: Path) -> pcc.RunResult:
    repo = make_repo(tmp_path / "repo", {"app.py": "def main():\n    return 1\n"})
    tasks = [pcc.Task("Return two <b>bold</b>", id="edit")]
    agent = pcc.Command("sed -i 's/return 1/return 2/' app.py; echo 'edited app.py'")
    return pcc.run(tasks, agent=agent, **local_run_options(repo, tmp_path / "out"))


def write_events(result: pcc.RunResult, task_id: str, transcript: str) -> None:
    (result.run_dir / task_id / "events.jsonl").write_text(transcript)


def test_a_recorded_claude_transcript_in_a_task_folder(command_run: pcc.RunResult) -> None:
    write_events(command_run, "edit", SUCCESS_WITH_TOOL)
    view = command_run.show("edit")

    html = view._repr_html_()
    assert "claude-opus-5-5, 2 turns, $0.0644" in html
    assert "Bash: echo hello &gt; hello.txt</span></summary>" in html
    assert "(Bash completed with no output)" in html
    assert "turn 1 · ≈$0.0587 · 11,803 tokens in" in html
    assert "Return two &lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    assert "✓ finished: Created hello.txt containing &#x27;hello&#x27;." in html

    text = view.to_text()
    assert text.splitlines()[0].startswith("edit  ✓ completed  ·  ")
    assert "Transcript (claude-opus-5-5, 2 turns, $0.0644)\n" in text
    assert "  turn 1 · ≈$0.0587 · 11,803 tokens in\n    I'll create the file.\n" \
           "    ▸ Bash: echo hello > hello.txt\n      → (Bash completed with no output)\n" in text
    assert "Diff (changes.patch):\ndiff --git a/app.py b/app.py\n" in text
    assert "+    return 2\n" in text


def test_a_command_task_shows_the_end_of_its_log_and_its_diff(command_run: pcc.RunResult) -> None:
    view = command_run.show("edit")
    assert view.transcript is None and view.log == "edited app.py"
    html = view._repr_html_()
    assert "No structured events; the last lines of <code>execution.log</code>" in html
    # The diff is coloured with inline styles (pygments ships with Jupyter).
    assert re.search(r'<span style="color: #[0-9A-Fa-f]{6}">\+    return 2</span>', html)
    assert "Last lines of execution.log:\n  edited app.py\n" in view.to_text()


def test_without_pygments_the_diff_is_coloured_line_by_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pygments", None)
    html = diff_html("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old <i>\n+new\n")
    assert '<span style="color: #a00000;">-old &lt;i&gt;</span>' in html
    assert '<span style="color: #00a000;">+new</span>' in html


def test_a_long_diff_is_cut_and_says_where_the_rest_is(command_run: pcc.RunResult) -> None:
    patch = command_run.run_dir / "edit" / "changes.patch"
    patch.write_text("".join(f"+line {i}\n" for i in range(2500)))
    view = command_run.show("edit")
    assert f"… 500 more lines in {patch}" in view.to_text()
    assert "+line 1999" in view._repr_html_() and "+line 2000" not in view._repr_html_()


def test_print_uses_colours_only_on_a_terminal(command_run: pcc.RunResult) -> None:
    write_events(command_run, "edit", SUCCESS_WITH_TOOL)
    plain = io.StringIO()
    print_task(command_run.run_dir, "edit", plain)
    assert plain.getvalue() == command_run.show("edit").to_text()
    assert "\x1b[" not in plain.getvalue()

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    command_run.show("edit").print(terminal)
    coloured = terminal.getvalue()
    assert "\x1b[" in coloured
    assert "▸ Bash: echo hello > hello.txt" in ANSI.sub("", coloured)


def test_an_unknown_task_is_a_key_error(command_run: pcc.RunResult) -> None:
    with pytest.raises(KeyError, match="has no task 'nope'"):
        command_run.show("nope")


# -- a real Claude Code run against the scripted model API ---------------------------------------


@needs_claude
@pytest.mark.claude
def test_the_view_of_a_real_claude_run(
    scripted_api: ScriptedAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in _AUTH_VARS:
        monkeypatch.delenv(var, raising=False)
    repo = make_repo(tmp_path / "repo", {"src/app.py": 'def greet():\n    return "hello"\n'})
    marker = scripted_api.script("view", [
        tool_use("Write", {"file_path": "src/util.py", "content": "def double(x):\n"
                                                                   "    return 2 * x\n"},
                 "I'll add the helper first."),
        tool_use("Read", {"file_path": "src/app.py"}),
        tool_use("Edit", {"file_path": "src/app.py", "old_string": 'return "hello"',
                          "new_string": 'return "hello, world"'}),
        text("Added src/util.py and updated greet()."),
    ])
    result = pcc.run([pcc.Task(f"Add a helper. {marker}", id="task-3")],
                     agent=agent_for(scripted_api),
                     **local_run_options(repo, tmp_path / "out"))
    (task,) = result.tasks
    assert task.status == pcc.TaskStatus.COMPLETED, task.error

    view = result.show("task-3")
    assert view.transcript is not None
    turns = view.transcript.turns
    assert [c.label for t in turns for c in t.tool_calls] == [
        "Write src/util.py", "Read src/app.py", "Edit src/app.py"]
    assert all(c.result and not c.is_error for t in turns for c in t.tool_calls)
    assert sum(t.cost_usd or 0 for t in turns) == pytest.approx(task.cost_usd)
    html = view._repr_html_()
    for expected in ("I&#x27;ll add the helper first.", "Write src/util.py</span>",
                     "Edit src/app.py</span>",
                     "✓ finished: Added src/util.py and updated greet().", "turn 4 · ≈$"):
        assert expected in html
    # The diff, coloured, with both files.
    assert "diff --git a/src/util.py b/src/util.py" in ANSI.sub("", _text_of(html))
    assert "+def double(x):" in _text_of(html)
    events = [json.loads(line) for line in (Path(task.output_path or "") / "events.jsonl")
              .read_text().splitlines()]
    assert events[0]["type"] == "system" and events[-1]["type"] == "result"


def _text_of(html: str) -> Any:
    import html as html_module

    return html_module.unescape(re.sub(r"<[^>]+>", "", html))


def test_a_running_task_is_shown_as_far_as_it_got(tmp_path: Path, pcc_git_env: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"app.py": "x = 1\n"})
    release = tmp_path / "release"
    agent = pcc.Command(f"echo 'step one'; while [ ! -e {release} ]; do sleep 0.05; done")
    handle = pcc.submit([pcc.Task("work slowly", id="slow")], agent=agent,
                        **local_run_options(repo, tmp_path / "out"))
    try:
        wait_for(lambda: "step one" in (handle.run_dir / "slow" / "execution.log").read_text()
                 if (handle.run_dir / "slow" / "execution.log").exists() else False,
                 what="the task's first line")
        view = handle.show("slow")
        assert view.task.status == pcc.TaskStatus.RUNNING
        assert view.log == "step one" and view.diff is None
        assert "No changes." in view.to_text()
        with pytest.raises(KeyError, match="has no task 'other'"):
            handle.show("other")
    finally:
        release.touch()
        handle.result(timeout=30)
