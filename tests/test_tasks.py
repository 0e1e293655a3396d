"""Loading the ``tasks`` argument: lists, task files of every format, DataFrames, and bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import pytest

from parallelcc_sdk.errors import TaskFileError, ValidationError
from parallelcc_sdk.models import Task
from parallelcc_sdk.tasks import TASK_FILE_SUFFIXES, load_tasks

MULTILINE = "Fix the login bug.\n\n  Steps:\n  1. run `make test`\n\tthen commit.\n"


def prompts(tasks: list[Task]) -> list[str]:
    return [task.prompt for task in tasks]


def ids(tasks: list[Task]) -> list[str | None]:
    return [task.id for task in tasks]


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


# --- lists of prompts and tasks ------------------------------------------------------------------


def test_list_of_prompts_gets_default_ids_in_order() -> None:
    tasks = load_tasks(["fix the bug", "add tests", "update docs"])
    assert prompts(tasks) == ["fix the bug", "add tests", "update docs"]
    assert ids(tasks) == ["task-1", "task-2", "task-3"]
    assert all(task.metadata == {} and task.env == {} and task.timeout is None for task in tasks)


def test_prompts_in_a_list_are_kept_exactly() -> None:
    tasks = load_tasks(["  padded  ", MULTILINE])
    assert prompts(tasks) == ["  padded  ", MULTILINE]


def test_mixed_list_keeps_explicit_ids_and_numbers_the_rest_by_position() -> None:
    tasks = load_tasks(["a", Task("b", id="login-fix", timeout=30, env={"DEBUG": "1"}), "c"])
    assert ids(tasks) == ["task-1", "login-fix", "task-3"]
    assert prompts(tasks) == ["a", "b", "c"]
    assert tasks[1].timeout == 30.0
    assert tasks[1].env == {"DEBUG": "1"}


@pytest.mark.parametrize(
    "source",
    [
        ("one", "two"),
        (p for p in ["one", "two"]),
        np.array(["one", "two"]),
        pd.Series(["one", "two"]),
    ],
    ids=["tuple", "generator", "numpy", "series"],
)
def test_any_non_string_iterable_of_prompts_is_accepted(source: Any) -> None:
    tasks = load_tasks(source)
    assert prompts(tasks) == ["one", "two"]
    assert all(type(task.prompt) is str for task in tasks)
    assert ids(tasks) == ["task-1", "task-2"]


def test_a_single_task_object_is_accepted() -> None:
    assert ids(load_tasks(Task("only one"))) == ["task-1"]


def test_returns_new_task_objects_with_plain_dict_metadata() -> None:
    original = Task("a", metadata=MappingProxyType({"team": "web"}))
    [loaded] = load_tasks([original])
    assert loaded is not original
    assert original.id is None
    assert type(loaded.metadata) is dict
    assert loaded.metadata == {"team": "web"}


def test_none_metadata_and_env_become_empty_dicts() -> None:
    [loaded] = load_tasks([Task("a", metadata=None, env=None)])  # type: ignore[arg-type]
    assert loaded.metadata == {}
    assert loaded.env == {}


def test_dicts_in_a_list_are_read_like_records_of_a_task_file() -> None:
    [loaded] = load_tasks([{"prompt": "a", "id": "x", "team": "web"}])
    assert (loaded.prompt, loaded.id, loaded.metadata) == ("a", "x", {"team": "web"})


@pytest.mark.parametrize("source", [[], (), iter([])], ids=["list", "tuple", "iterator"])
def test_an_empty_list_is_rejected(source: Any) -> None:
    with pytest.raises(ValidationError, match=r"^no tasks to run: the task list is empty; "):
        load_tasks(source)


@pytest.mark.parametrize(
    ("source", "kind"),
    [(None, "NoneType"), (5, "int"), (b"fix", "bytes"), ({"prompt": "x"}, "dict")],
)
def test_values_that_are_not_task_collections_are_rejected(source: Any, kind: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_tasks(source)
    message = str(caught.value)
    assert message.startswith("tasks must be a list of prompts or Task objects")
    assert f"got {kind};" in message


def test_an_item_that_is_not_a_prompt_names_its_position() -> None:
    with pytest.raises(ValidationError, match=r"^task 2 is an int \(42\); each task must be"):
        load_tasks(["a", 42])  # type: ignore[list-item]


def test_a_non_string_prompt_names_its_position() -> None:
    with pytest.raises(ValidationError, match=r"^task 2 has a prompt of type int \(7\)"):
        load_tasks(["a", Task(7)])  # type: ignore[arg-type]


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t "])
def test_an_empty_prompt_names_its_position(prompt: str) -> None:
    with pytest.raises(ValidationError, match=r"^task 3 has an empty prompt; "):
        load_tasks(["a", "b", prompt])


def test_a_prompt_with_a_nul_character_is_rejected_up_front(tmp_path: Path) -> None:
    # No command's environment can hold it: the task could only fail once started.
    with pytest.raises(ValidationError, match=r"^task 2 has a prompt with a NUL character "
                                              r"\(\\0\) at position 3; remove it\.$"):
        load_tasks(["fine", "bad\0prompt"])
    (tmp_path / "tasks.jsonl").write_text('{"prompt": "ok"}\n{"prompt": "x\\u0000y"}\n')
    with pytest.raises(ValidationError, match=r"tasks.jsonl line 2\) has a prompt with a NUL"):
        load_tasks(tmp_path / "tasks.jsonl")


@pytest.mark.parametrize(("timeout", "expected"), [(5, 5.0), ("90", 90.0), (None, None)])
def test_task_timeouts_are_checked_and_made_floats(timeout: Any, expected: float | None) -> None:
    [loaded] = load_tasks([Task("a", timeout=timeout)])
    assert loaded.timeout == expected


@pytest.mark.parametrize("timeout", [0, -1, "soon", float("nan"), True])
def test_a_bad_timeout_names_the_task_and_the_value(timeout: Any) -> None:
    with pytest.raises(ValidationError, match=rf"^task 2 has the timeout {timeout!r}; "):
        load_tasks(["a", Task("b", timeout=timeout)])


def test_env_numbers_become_strings() -> None:
    [loaded] = load_tasks([Task("a", env={"LEVEL": 3, "RATE": 0.5})])  # type: ignore[dict-item]
    assert loaded.env == {"LEVEL": "3", "RATE": "0.5"}


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"DEBUG": True}, "sets the environment variable DEBUG to True"),
        ({"X": None}, "sets the environment variable X to None"),
        ({"A=B": "1"}, "has the environment variable name 'A=B'"),
        ({"": "1"}, "has the environment variable name ''"),
        (["A"], "has env of type list"),
    ],
)
def test_bad_env_is_rejected(env: Any, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_tasks([Task("a", env=env)])
    assert str(caught.value).startswith(f"task 1 {fragment}")


def test_metadata_that_is_not_a_mapping_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"^task 1 has metadata of type list; "):
        load_tasks([Task("a", metadata=["x"])])  # type: ignore[arg-type]


# --- ids -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("task_id", ["a", "7", "A.b_c-1", "fix-login.v2", "x" * 100])
def test_safe_ids_are_kept(task_id: str) -> None:
    assert ids(load_tasks([Task("a", id=task_id)])) == [task_id]


@pytest.mark.parametrize(
    "task_id",
    ["../x", "a/b", "a\\b", "", "-x", ".hidden", "_x", "a b", "x" * 101, "é", "ok\n", " a"],
)
def test_unsafe_ids_are_rejected_with_the_rule(task_id: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_tasks(["first", Task("second", id=task_id)])
    message = str(caught.value)
    assert message.startswith(f"task 2 has the id {task_id!r}"[:70])
    assert "not safe as a folder name" in message
    assert "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$" in message


def test_duplicate_ids_name_the_id_and_every_position() -> None:
    source: list[str | Task] = [
        Task("a", id="same"),
        "b",
        Task("c", id="same"),
        Task("d", id="same"),
    ]
    with pytest.raises(ValidationError) as caught:
        load_tasks(source)
    assert str(caught.value) == (
        "the task id 'same' is used by tasks 1, 3 and 4; give every task a unique id."
    )


def test_an_explicit_id_that_equals_a_default_id_is_a_duplicate() -> None:
    with pytest.raises(ValidationError, match=r"'task-1' is used by tasks 1 and 2;"):
        load_tasks(["a", Task("b", id="task-1")])


@pytest.mark.parametrize("task_id", [True, 1.5, ["x"]])
def test_ids_of_the_wrong_type_are_rejected(task_id: Any) -> None:
    with pytest.raises(ValidationError, match=r"^task 1 has an id of type "):
        load_tasks([Task("a", id=task_id)])


# --- strings and paths that are not task files ---------------------------------------------------


def test_a_bare_prompt_string_is_ambiguous() -> None:
    with pytest.raises(ValidationError) as caught:
        load_tasks("fix the bug")
    message = str(caught.value)
    assert not isinstance(caught.value, TaskFileError)
    assert message.startswith("tasks is a single string ('fix the bug')")
    assert "['fix the bug']" in message
    assert "task file" in message


@pytest.mark.parametrize("text", ["x" * 5000, "fix\0this", "a/" * 300])
def test_strings_the_os_cannot_use_as_paths_are_still_ambiguous_prompts(text: str) -> None:
    with pytest.raises(ValidationError, match=r"^tasks is a single string "):
        load_tasks(text)


@pytest.mark.parametrize("suffix", TASK_FILE_SUFFIXES)
def test_a_missing_task_file_string_is_a_task_file_error(
    suffix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TaskFileError, match=rf"^task file 'missing{suffix}' does not exist; "):
        load_tasks(f"missing{suffix}")


def test_a_missing_task_file_path_is_a_task_file_error(tmp_path: Path) -> None:
    missing = tmp_path / "tasks"
    with pytest.raises(TaskFileError, match=r"does not exist; check the path"):
        load_tasks(missing)


def test_a_directory_is_not_a_task_file(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match=r"^task file '.*' is a directory; "):
        load_tasks(str(tmp_path))


def test_an_unknown_suffix_names_the_supported_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.md", "fix the bug\n")
    with pytest.raises(TaskFileError) as caught:
        load_tasks(path)
    message = str(caught.value)
    assert f"task file '{path}' has the unsupported suffix '.md'" in message
    assert ".txt, .jsonl, .json, .yaml, .yml, .csv" in message


def test_invalid_utf8_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "tasks.txt"
    path.write_bytes(b"one\ntwo \xff\xfe\n")
    with pytest.raises(TaskFileError, match=r"is not valid UTF-8 at line 2; "):
        load_tasks(path)


# --- .txt ----------------------------------------------------------------------------------------


def test_txt_skips_blank_lines_and_comments_and_strips_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "tasks.txt",
        "# tasks for the sprint\n\n  fix the bug  \n\t# indented comment\nadd tests # keep\n\n",
    )
    tasks = load_tasks(path)
    assert prompts(tasks) == ["fix the bug", "add tests # keep"]
    assert ids(tasks) == ["task-1", "task-2"]


def test_txt_handles_crlf_and_a_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "tasks.txt"
    path.write_bytes(b"\xef\xbb\xbffirst task\r\n# comment\r\n\r\nsecond task\r\nthird\r\n")
    tasks = load_tasks(str(path))
    assert prompts(tasks) == ["first task", "second task", "third"]


def test_txt_bom_does_not_hide_a_comment_on_the_first_line(tmp_path: Path) -> None:
    path = tmp_path / "tasks.txt"
    path.write_bytes(b"\xef\xbb\xbf# header comment\nonly task\n")
    assert prompts(load_tasks(path)) == ["only task"]


def test_txt_handles_old_mac_line_endings_and_keeps_unicode_separators(tmp_path: Path) -> None:
    path = write(tmp_path / "TASKS.TXT", "one\rtwo\u2028still two\r")
    assert prompts(load_tasks(path)) == ["one", "two\u2028still two"]


def test_txt_accepts_a_path_given_as_str_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "tasks.txt", "a\nb\n")
    monkeypatch.chdir(tmp_path)
    assert prompts(load_tasks("tasks.txt")) == ["a", "b"]


def test_txt_path_with_a_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "tasks.txt", "from home\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert prompts(load_tasks("~/tasks.txt")) == ["from home"]
    assert prompts(load_tasks(Path("~/tasks.txt"))) == ["from home"]


@pytest.mark.parametrize("text", ["", "\n\n", "# only\n  # comments\n\n"])
def test_txt_without_tasks_is_rejected(text: str, tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.txt", text)
    with pytest.raises(ValidationError) as caught:
        load_tasks(path)
    assert str(caught.value).startswith(f"no tasks to run: task file '{path}' holds no tasks")


# --- .jsonl --------------------------------------------------------------------------------------


def test_jsonl_reads_every_field_and_puts_the_rest_in_metadata(tmp_path: Path) -> None:
    lines = [
        {
            "prompt": MULTILINE,
            "id": "login",
            "timeout": 120,
            "env": {"DEBUG": "1"},
            "metadata": {"issue": 12},
            "team": "web",
        },
        {"prompt": "  second  ", "priority": 2},
    ]
    path = write(tmp_path / "tasks.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n")
    first, second = load_tasks(path)
    assert first == Task(
        MULTILINE,
        id="login",
        metadata={"team": "web", "issue": 12},
        timeout=120.0,
        env={"DEBUG": "1"},
    )
    assert second == Task("  second  ", id="task-2", metadata={"priority": 2})


def test_jsonl_explicit_metadata_wins_over_a_top_level_field(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", '{"prompt": "a", "team": "top", "metadata": {"team": "m"}}')
    assert load_tasks(path)[0].metadata == {"team": "m"}


def test_jsonl_skips_blank_lines_and_handles_crlf_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"prompt": "a"}\r\n\r\n  \r\n"plain string"\r\n')
    assert prompts(load_tasks(path)) == ["a", "plain string"]


def test_jsonl_keeps_a_raw_line_separator_inside_a_prompt(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.jsonl", '{"prompt": "one\u2028two"}\n')
    assert prompts(load_tasks(path)) == ["one\u2028two"]


def test_jsonl_bad_json_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.jsonl", '{"prompt": "a"}\n\n{"prompt": "b",}\n')
    with pytest.raises(TaskFileError) as caught:
        load_tasks(path)
    assert str(caught.value).startswith(f"task file '{path}' line 3 is not valid JSON")


def test_jsonl_record_without_prompt_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.jsonl", '{"prompt": "a"}\n{"promt": "b"}\n')
    with pytest.raises(TaskFileError) as caught:
        load_tasks(path)
    assert str(caught.value).startswith(f'task 2 ({path} line 2) has no "prompt" field')
    assert "'promt'" in str(caught.value)


def test_jsonl_line_that_is_not_an_object_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.jsonl", '{"prompt": "a"}\n42\n')
    with pytest.raises(TaskFileError, match=r"^task 2 \(.*tasks.jsonl line 2\) is an int \(42\)"):
        load_tasks(path)


def test_jsonl_empty_prompt_names_task_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.jsonl", '{"prompt": "a"}\n\n{"prompt": " "}\n')
    with pytest.raises(ValidationError, match=r"^task 2 \(.*tasks.jsonl line 3\) has an empty"):
        load_tasks(path)


def test_jsonl_null_prompt_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.jsonl", '{"prompt": null}\n')
    with pytest.raises(ValidationError, match=r"^task 1 \(.*\) has no prompt; "):
        load_tasks(path)


def test_jsonl_metadata_must_be_an_object(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.jsonl", '{"prompt": "a", "metadata": [1]}\n')
    with pytest.raises(TaskFileError, match=r"has metadata that is a list; "):
        load_tasks(path)


def test_jsonl_bad_timeout_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.jsonl", '{"prompt": "a", "timeout": -5}\n')
    with pytest.raises(ValidationError, match=r"^task 1 \(.*line 1\) has the timeout -5; "):
        load_tasks(path)


def test_jsonl_duplicate_ids(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", '{"prompt": "a", "id": "x"}\n{"prompt": "b", "id": "x"}\n')
    with pytest.raises(ValidationError, match=r"^the task id 'x' is used by tasks 1 and 2; "):
        load_tasks(path)


# --- .json ---------------------------------------------------------------------------------------


def test_json_list_of_objects_and_strings(tmp_path: Path) -> None:
    data = [{"prompt": MULTILINE, "id": "one", "owner": "ana"}, "second"]
    path = write(tmp_path / "tasks.json", json.dumps(data, indent=2))
    tasks = load_tasks(path)
    assert prompts(tasks) == [MULTILINE, "second"]
    assert ids(tasks) == ["one", "task-2"]
    assert tasks[0].metadata == {"owner": "ana"}


def test_json_object_with_a_tasks_list(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.json", json.dumps({"tasks": ["a", {"prompt": "b", "id": 7}]}))
    tasks = load_tasks(path)
    assert prompts(tasks) == ["a", "b"]
    assert ids(tasks) == ["task-1", "7"]


def test_json_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.json", '[\n  {"prompt": "a"},\n  {"prompt": }\n]\n')
    with pytest.raises(TaskFileError) as caught:
        load_tasks(path)
    assert str(caught.value).startswith(f"task file '{path}' is not valid JSON at line 3 ")


@pytest.mark.parametrize(
    ("document", "shape"),
    [('{"prompt": "a"}', "an object"), ("42", "an int (42)"), ('{"tasks": "a"}', "a str ('a')")],
)
def test_json_of_the_wrong_shape_is_rejected(document: str, shape: str, tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.json", document)
    with pytest.raises(TaskFileError) as caught:
        load_tasks(path)
    assert str(caught.value).startswith(f"task file '{path}' must hold a JSON list of tasks")
    assert f"but holds {shape};" in str(caught.value)


@pytest.mark.parametrize("document", ["", "  \n", "[]", '{"tasks": []}'])
def test_json_without_tasks_is_rejected(document: str, tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.json", document)
    with pytest.raises(ValidationError, match=r"^no tasks to run: task file "):
        load_tasks(path)


def test_json_item_errors_name_the_task_and_file(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.json", json.dumps(["a", {"id": "b"}]))
    with pytest.raises(TaskFileError, match=r'^task 2 \(.*tasks.json\) has no "prompt" field'):
        load_tasks(path)


# --- .yaml / .yml --------------------------------------------------------------------------------


YAML_TASKS = """\
# sprint tasks
- prompt: |
    Fix the login bug.

      Steps stay indented.
  id: login
  timeout: 300
  env:
    DEBUG: 1
  team: web
- prompt: "plain"
- just a string
"""


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_list_with_multiline_prompts(suffix: str, tmp_path: Path) -> None:
    tasks = load_tasks(write(tmp_path / f"tasks{suffix}", YAML_TASKS))
    assert prompts(tasks) == [
        "Fix the login bug.\n\n  Steps stay indented.\n",
        "plain",
        "just a string",
    ]
    assert ids(tasks) == ["login", "task-2", "task-3"]
    assert tasks[0].timeout == 300.0
    assert tasks[0].env == {"DEBUG": "1"}
    assert tasks[0].metadata == {"team": "web"}


def test_yaml_object_with_tasks_and_integer_id(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.yaml", "tasks:\n  - prompt: a\n    id: 7\n  - b\n")
    tasks = load_tasks(path)
    assert ids(tasks) == ["7", "task-2"]
    assert prompts(tasks) == ["a", "b"]


def test_yaml_crlf_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "tasks.yml"
    path.write_bytes(b"\xef\xbb\xbf- prompt: |\r\n    two\r\n    lines\r\n- b\r\n")
    assert prompts(load_tasks(path)) == ["two\nlines\n", "b"]


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.yaml", "- prompt: a\n- prompt: [unclosed\n- c\n")
    with pytest.raises(TaskFileError) as caught:
        load_tasks(path)
    message = str(caught.value)
    assert message.startswith(f"task file '{path}' is not valid YAML at line ")
    assert "fix the syntax there" in message


def test_yaml_env_boolean_must_be_quoted(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.yaml", "- prompt: a\n  env:\n    DEBUG: true\n")
    with pytest.raises(ValidationError, match=r"DEBUG to True; .* so quote it\.$"):
        load_tasks(path)


@pytest.mark.parametrize("document", ["", "# nothing\n", "[]\n", "tasks: []\n"])
def test_yaml_without_tasks_is_rejected(document: str, tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.yaml", document)
    with pytest.raises(ValidationError, match=r"^no tasks to run: task file "):
        load_tasks(path)


def test_yaml_of_the_wrong_shape_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.yaml", "prompt: a\n")
    with pytest.raises(TaskFileError, match=r"must hold a YAML list of tasks, .* holds an object"):
        load_tasks(path)


def test_yaml_unsafe_id(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.yaml", "- prompt: a\n  id: ../etc\n")
    with pytest.raises(ValidationError, match=r"^task 1 \(.*\) has the id '../etc', which is not"):
        load_tasks(path)


# --- .csv ----------------------------------------------------------------------------------------


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)  # lines end in \r\n, as Excel writes them
    return path


def test_csv_prompt_id_and_metadata_columns(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "tasks.csv",
        [
            ["id", "prompt", "team", "priority"],
            ["login", MULTILINE, "web", "1"],
            ["", "second, with a comma", "", "2"],
        ],
    )
    first, second = load_tasks(path)
    assert first == Task(MULTILINE, id="login", metadata={"team": "web", "priority": "1"})
    assert second == Task(
        "second, with a comma", id="task-2", metadata={"team": "", "priority": "2"}
    )


def test_csv_keeps_a_crlf_inside_a_quoted_cell(tmp_path: Path) -> None:
    path = tmp_path / "tasks.csv"
    path.write_bytes(b'\xef\xbb\xbf prompt ,note\r\n"line one\r\nline two",x\r\n\r\nplain,y\r\n')
    tasks = load_tasks(path)
    assert prompts(tasks) == ["line one\r\nline two", "plain"]
    assert [task.metadata for task in tasks] == [{"note": "x"}, {"note": "y"}]


def test_csv_without_prompt_column_names_the_header(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tasks.csv", [["task", "id"], ["a", "1"]])
    with pytest.raises(TaskFileError) as caught:
        load_tasks(path)
    assert str(caught.value).startswith(f"task file '{path}' has no 'prompt' column")
    assert "['task', 'id']" in str(caught.value)


def test_csv_repeated_column_is_rejected(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tasks.csv", [["prompt", "x", "x"], ["a", "1", "2"]])
    with pytest.raises(TaskFileError, match=r"repeats the column 'x' in its header"):
        load_tasks(path)


def test_csv_row_with_extra_fields_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.csv", "prompt,id\na,x\nfix a, b and c,y\n")
    with pytest.raises(
        TaskFileError, match=r"^task 2 \(.*tasks.csv line 3\) has 3 fields but the header has 2"
    ):
        load_tasks(path)


def test_csv_unclosed_quote_names_the_row_start(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.csv", 'prompt\nfirst\n"second\nthird\nfourth\n')
    with pytest.raises(TaskFileError) as caught:
        load_tasks(path)
    assert str(caught.value).startswith(
        f"task file '{path}' is not valid CSV in the row starting at line 3"
    )


def test_csv_empty_prompt_names_task_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.csv", "prompt,team\na,x\n,y\n")
    with pytest.raises(ValidationError, match=r"^task 2 \(.*tasks.csv line 3\) has an empty"):
        load_tasks(path)


def test_csv_duplicate_ids(tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.csv", "id,prompt\nx,a\ny,b\nx,c\n")
    with pytest.raises(ValidationError, match=r"^the task id 'x' is used by tasks 1 and 3; "):
        load_tasks(path)


@pytest.mark.parametrize("text", ["", "prompt,id\n", "prompt\n\n,\n"])
def test_csv_without_tasks_is_rejected(text: str, tmp_path: Path) -> None:
    path = write(tmp_path / "tasks.csv", text)
    with pytest.raises(ValidationError, match=r"^no tasks to run: task file "):
        load_tasks(path)


# --- DataFrame -----------------------------------------------------------------------------------


def test_dataframe_prompt_id_and_metadata_columns() -> None:
    frame = pd.DataFrame(
        {
            "prompt": [MULTILINE, "second"],
            "id": ["login", None],
            "priority": [1, 2],
            "score": [0.5, np.nan],
            "owner": pd.array(["ana", pd.NA], dtype="string"),
            "due": [pd.Timestamp("2025-01-02"), pd.NaT],
        },
        index=[10, 20],
    )
    first, second = load_tasks(frame)
    assert (first.prompt, first.id, second.prompt, second.id) == (
        MULTILINE,
        "login",
        "second",
        "task-2",
    )
    assert first.metadata == {
        "priority": 1,
        "score": 0.5,
        "owner": "ana",
        "due": pd.Timestamp("2025-01-02"),
    }
    assert second.metadata == {"priority": 2, "score": None, "owner": None, "due": None}
    assert type(first.metadata["priority"]) is int
    assert type(first.metadata["score"]) is float
    assert type(first.metadata["due"]).__module__ == "datetime"


def test_dataframe_integer_id_column_becomes_text() -> None:
    frame = pd.DataFrame({"prompt": ["a", "b"], "id": [101, 102]})
    assert ids(load_tasks(frame)) == ["101", "102"]


def test_dataframe_int_ids_with_a_gap_stay_whole_numbers() -> None:
    frame = pd.DataFrame({"prompt": ["a", "b", "c"], "id": [1, None, 3]})
    assert ids(load_tasks(frame)) == ["1", "task-2", "3"]


def test_dataframe_without_prompt_column() -> None:
    with pytest.raises(ValidationError) as caught:
        load_tasks(pd.DataFrame({"task": ["a"]}))
    assert str(caught.value).startswith("the tasks DataFrame has no 'prompt' column")
    assert "['task']" in str(caught.value)


def test_dataframe_missing_prompt_names_the_row() -> None:
    frame = pd.DataFrame({"prompt": ["a", None]})
    with pytest.raises(ValidationError, match=r"^task 2 \(DataFrame row 2\) has no prompt; "):
        load_tasks(frame)


def test_dataframe_duplicate_ids() -> None:
    frame = pd.DataFrame({"prompt": ["a", "b"], "id": ["x", "x"]})
    with pytest.raises(ValidationError, match=r"^the task id 'x' is used by tasks 1 and 2; "):
        load_tasks(frame)


def test_empty_dataframe_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"^no tasks to run: the DataFrame is empty; "):
        load_tasks(pd.DataFrame({"prompt": []}))


def test_importing_the_loader_does_not_import_pandas() -> None:
    code = "import sys, parallelcc_sdk.tasks; print('pandas' in sys.modules)"
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


def test_a_txt_file_of_many_tasks_keeps_order(tmp_path: Path) -> None:
    lines = [f"task number {n}" for n in range(1, 201)]
    tasks = load_tasks(write(tmp_path / "many.txt", "\n".join(lines)))
    assert prompts(tasks) == lines
    assert tasks[-1].id == "task-200"


def _generate() -> Iterator[str]:
    yield "from a generator"


def test_generator_function_output() -> None:
    assert prompts(load_tasks(_generate())) == ["from a generator"]
