"""Turning the ``tasks`` argument into a checked list of :class:`Task` with ids.

``tasks`` may be a list of prompts or tasks, the path of a task file (.txt, .jsonl, .json, .yaml,
.yml, .csv) or a pandas DataFrame with a ``prompt`` column. Every problem is found here, before a
run starts, and reported as one sentence naming the task (and file line where known) and the fix.

Prompts from structured sources are kept exactly as given: only .txt lines are stripped, because
there the line break and indentation are the format, not part of the prompt.
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeGuard, Union, cast

import yaml

from .errors import TaskFileError, ValidationError
from .models import Task
from .validation import optional_positive_float

if TYPE_CHECKING:
    import pandas as pd

# Union rather than `|` because the quoted members only exist for the type checker.
TasksInput: TypeAlias = Union[
    str, "os.PathLike[str]", Task, "Iterable[str | Task | Mapping[str, Any]]", "pd.DataFrame"
]

TASK_FILE_SUFFIXES: tuple[str, ...] = (".txt", ".jsonl", ".json", ".yaml", ".yml", ".csv")
TASK_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_ID_RULE = (
    "ids must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$ (a letter or digit, then up to 99 letters, "
    "digits, '.', '_' or '-')"
)
_RECORD_FIELDS = frozenset({"prompt", "id", "timeout", "env", "metadata", "attempts"})
_EXAMPLE = "['fix the bug', 'add tests']"
_SUPPORTED = ", ".join(TASK_FILE_SUFFIXES)
_MAX_SHOWN = 60


@dataclass(frozen=True)
class _Item:
    """One raw task as read from the input, with where it came from for error messages."""

    value: object
    where: str
    # Shape problems in a file's records are file errors; bad values are validation errors.
    shape_error: type[ValidationError] = ValidationError


def load_tasks(tasks: TasksInput) -> list[Task]:
    """Read ``tasks`` into new :class:`Task` objects with unique, folder-safe ids, in input order.

    Tasks without an id get ``task-N``, N being the task's position from 1. Raises
    :class:`ValidationError` (or its subclass :class:`TaskFileError` for task file problems).
    """
    if isinstance(tasks, Task):
        # Unambiguous, so accept it rather than make the user wrap it in a list.
        return _finalise([_Item(tasks, "task 1")], "the task")
    if _is_dataframe(tasks):
        return _finalise(_dataframe_items(tasks), "the DataFrame")
    if isinstance(tasks, os.PathLike):
        return _load_file(_expanded(Path(tasks)), str(tasks))
    if isinstance(tasks, str):
        return _load_str(tasks)
    if (
        tasks is None
        or isinstance(tasks, bytes | bytearray | Mapping)
        or not isinstance(tasks, Iterable)
    ):
        raise ValidationError(
            f"tasks must be a list of prompts or Task objects, a task file path or a pandas "
            f"DataFrame, got {type(tasks).__name__}; pass for example {_EXAMPLE}."
        )
    items = [_Item(value, f"task {n}") for n, value in enumerate(tasks, start=1)]
    return _finalise(items, "the task list")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _is_dataframe(value: object) -> TypeGuard[pd.DataFrame]:
    # Checked by class name first, so loading tasks imports pandas only when given a DataFrame.
    if not any(
        cls.__name__ == "DataFrame" and cls.__module__.startswith("pandas")
        for cls in type(value).__mro__
    ):
        return False
    import pandas as pd

    return isinstance(value, pd.DataFrame)


# --- strings and paths -----------------------------------------------------------------------


def _expanded(path: Path) -> Path:
    # "~/tasks.txt" typed in a notebook reaches us unexpanded, unlike on a shell command line.
    try:
        return path.expanduser()
    except RuntimeError:  # "~someone" for an unknown user: leave it for the missing-file error
        return path


def _load_str(text: str) -> list[Task]:
    path = _expanded(Path(text))
    if _is_file(path) or _is_dir(path):
        return _load_file(path, text)
    if path.suffix.lower() in TASK_FILE_SUFFIXES:
        raise TaskFileError(
            f"task file '{text}' does not exist; check the path (relative paths start at "
            f"{Path.cwd()}), or pass the prompts as a list such as {_EXAMPLE}."
        )
    # A lone string could be one prompt or a mistyped path, and guessing wrong costs a paid run.
    raise ValidationError(
        f"tasks is a single string ({_shown(text)}) that is not an existing task file; pass a "
        f"list such as ['fix the bug'] for one prompt, or the path of a task file ({_SUPPORTED})."
    )


def _is_file(path: Path) -> bool:
    # Long prompts or prompts with NUL bytes make the OS refuse the name; they are not files.
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def load_task_file(path: str | os.PathLike[str], *, default_suffix: str = ".txt") -> list[Task]:
    """The tasks of the file at ``path``, read by its suffix (see :func:`load_tasks`).

    A file whose suffix is not a task-file format is read as ``default_suffix``: the command line
    reads such a file (``tasks``, ``tasks.list``) as one task per line, as parallel-cc did.
    """
    name = os.fspath(path)
    file = _expanded(Path(name))
    suffix = file.suffix.lower()
    return _load_file(file, name, suffix if suffix in _READERS else default_suffix)


def _load_file(path: Path, name: str, suffix: str | None = None) -> list[Task]:
    suffix = suffix or path.suffix.lower()
    if _is_dir(path):
        raise TaskFileError(
            f"task file '{name}' is a directory; pass the path of a file ending in {_SUPPORTED}."
        )
    if not _is_file(path):
        raise TaskFileError(
            f"task file '{name}' does not exist; check the path (relative paths start at "
            f"{Path.cwd()}), or pass the prompts as a list such as {_EXAMPLE}."
        )
    reader = _READERS.get(suffix)
    if reader is None:
        raise TaskFileError(
            f"task file '{name}' has the unsupported suffix '{path.suffix}'; "
            f"use one of {_SUPPORTED}."
        )
    return _finalise(reader(_read_text(path, name), name), f"task file '{name}'")


def _read_text(path: Path, name: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TaskFileError(
            f"task file '{name}' cannot be read ({exc.strerror or exc}); check its permissions."
        ) from exc
    try:
        # utf-8-sig drops the byte order mark that Windows editors put at the start.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise TaskFileError(
            f"task file '{name}' is not valid UTF-8 at line {line}; save it with UTF-8 encoding."
        ) from exc


# --- file formats ----------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    # Only \n, \r\n and \r end a line: str.splitlines would also split at \u2028 and friends,
    # which may legitimately appear inside a prompt.
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _read_txt(text: str, name: str) -> list[_Item]:
    items: list[_Item] = []
    for line_no, line in enumerate(_lines(text), start=1):
        prompt = line.strip()
        if prompt and not prompt.startswith("#"):
            items.append(_Item(prompt, f"task {len(items) + 1} ({name} line {line_no})"))
    return items


def _read_jsonl(text: str, name: str) -> list[_Item]:
    items: list[_Item] = []
    for line_no, line in enumerate(_lines(text), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskFileError(
                f"task file '{name}' line {line_no} is not valid JSON ({exc.msg} at column "
                f"{exc.colno}); write one JSON object per line, such as "
                '{"prompt": "fix the bug"}.'
            ) from exc
        where = f"task {len(items) + 1} ({name} line {line_no})"
        items.append(_Item(value, where, TaskFileError))
    return items


def _read_json(text: str, name: str) -> list[_Item]:
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskFileError(
            f"task file '{name}' is not valid JSON at line {exc.lineno} column {exc.colno} "
            f"({exc.msg}); fix the syntax there."
        ) from exc
    return _structured_items(data, name, "JSON")


def _read_yaml(text: str, name: str) -> list[_Item]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise TaskFileError(
            f"task file '{name}' is not valid YAML{at} ({problem}); fix the syntax there."
        ) from exc
    if data is None:
        return []
    return _structured_items(data, name, "YAML")


def _structured_items(data: object, name: str, kind: str) -> list[_Item]:
    """The tasks of a parsed JSON or YAML document: a list, or an object with a ``tasks`` list."""
    if isinstance(data, Mapping) and "tasks" in data:
        data = data["tasks"]
    if not isinstance(data, list):
        raise TaskFileError(
            f"task file '{name}' must hold a {kind} list of tasks, or an object with a 'tasks' "
            f"list, but holds {_kind_of(data)}; wrap the tasks in a list."
        )
    return [
        _Item(value, f"task {n} ({name})", TaskFileError) for n, value in enumerate(data, start=1)
    ]


def _read_csv(text: str, name: str) -> list[_Item]:
    # newline="" keeps line breaks inside quoted cells exactly as written. strict=True because the
    # lenient reader lets one stray quote swallow every following row into a single prompt.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line_no = 1
    try:
        header = next(reader, None)
        if header is None:
            return []
        columns = _csv_columns(header, name)
        items: list[_Item] = []
        line_no = reader.line_num + 1
        for row in reader:
            if any(cell.strip() for cell in row):
                items.append(_csv_item(columns, row, name, line_no, len(items) + 1))
            line_no = reader.line_num + 1
    except csv.Error as exc:
        raise TaskFileError(
            f"task file '{name}' is not valid CSV in the row starting at line {line_no} ({exc}); "
            "check the quotes there: a quoted cell must end with a closing quote."
        ) from exc
    return items


def _csv_columns(header: list[str], name: str) -> list[str]:
    columns = [column.strip() for column in header]
    if "prompt" not in columns:
        raise TaskFileError(
            f"task file '{name}' has no 'prompt' column (its header is {_shown(columns)}); "
            "make the first line a header that names a 'prompt' column."
        )
    repeated = sorted({column for column in columns if columns.count(column) > 1})
    if repeated:
        raise TaskFileError(
            f"task file '{name}' repeats the column {', '.join(map(repr, repeated))} in its "
            "header; give every column a distinct name."
        )
    return columns


def _csv_item(columns: list[str], row: list[str], name: str, line_no: int, n: int) -> _Item:
    where = f"task {n} ({name} line {line_no})"
    if len(row) > len(columns):
        raise TaskFileError(
            f"{where} has {len(row)} fields but the header has {len(columns)} columns; "
            "quote fields that contain commas."
        )
    cells = dict(zip(columns, row, strict=False))
    record: dict[str, Any] = {"prompt": cells.pop("prompt", "")}
    # CSV cannot say "no value", so an empty id cell means "use the default id".
    task_id = cells.pop("id", "")
    if task_id != "":
        record["id"] = task_id
    record["metadata"] = cells
    return _Item(record, where, TaskFileError)


_READERS: dict[str, Callable[[str, str], list[_Item]]] = {
    ".txt": _read_txt,
    ".jsonl": _read_jsonl,
    ".json": _read_json,
    ".yaml": _read_yaml,
    ".yml": _read_yaml,
    ".csv": _read_csv,
}


# --- DataFrames ------------------------------------------------------------------------------


def _dataframe_items(frame: pd.DataFrame) -> list[_Item]:
    columns = [str(column) for column in frame.columns]
    if "prompt" not in columns:
        raise ValidationError(
            f"the tasks DataFrame has no 'prompt' column (its columns are {_shown(columns)}); "
            "add one, e.g. pd.DataFrame({'prompt': ['fix the bug']})."
        )
    if len(set(columns)) != len(columns):
        raise ValidationError(
            "the tasks DataFrame has repeated column names; give every column a distinct name."
        )
    items: list[_Item] = []
    for n, row in enumerate(frame.itertuples(index=False, name=None), start=1):
        cells = {column: _plain(value) for column, value in zip(columns, row, strict=True)}
        record: dict[str, Any] = {"prompt": cells.pop("prompt")}
        if "id" in cells:
            record["id"] = cells.pop("id")
        if "attempts" in cells:
            record["attempts"] = cells.pop("attempts")
        record["metadata"] = cells
        items.append(_Item(record, f"task {n} (DataFrame row {n})"))
    return items


def _plain(value: object) -> object:
    """A DataFrame cell as a plain Python value, with every kind of missing value as None."""
    import pandas as pd

    if pd.api.types.is_scalar(value) and pd.isna(cast(Any, value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, pd.Timedelta):
        return value.to_pytimedelta()
    item = getattr(value, "item", None)
    # numpy scalars know how to become the matching Python scalar; containers are left alone.
    if callable(item) and pd.api.types.is_scalar(value):
        return item()
    return value


# --- records to tasks ------------------------------------------------------------------------


def _kind_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    name = type(value).__name__
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"{article} {name} ({_shown(value)})"


def _to_task(item: _Item) -> Task:
    value = item.value
    if isinstance(value, Task):
        return value
    if isinstance(value, str):
        return Task(prompt=str(value))
    if isinstance(value, Mapping):
        return _task_from_record(value, item)
    raise item.shape_error(
        f"{item.where} is {_kind_of(value)}; each task must be a prompt string, a Task, or an "
        'object with a "prompt" field.'
    )


def _task_from_record(record: Mapping[Any, Any], item: _Item) -> Task:
    if "prompt" not in record:
        raise item.shape_error(
            f'{item.where} has no "prompt" field (its fields are {_shown(list(record))}); '
            'add one, such as {"prompt": "fix the bug"}.'
        )
    metadata = record.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise item.shape_error(
            f"{item.where} has metadata that is {_kind_of(metadata)}; make it an object of "
            "name/value pairs."
        )
    extra = {str(key): value for key, value in record.items() if key not in _RECORD_FIELDS}
    # Explicit metadata wins over a stray top-level field of the same name.
    return Task(
        prompt=record["prompt"],
        id=record.get("id"),
        metadata={**extra, **dict(metadata or {})},
        timeout=record.get("timeout"),
        env=record.get("env") or {},
        attempts=record.get("attempts", 1),
    )


def _finalise(items: list[_Item], source: str) -> list[Task]:
    if not items:
        raise ValidationError(_empty_message(source))
    tasks = [_checked(_to_task(item), item, n) for n, item in enumerate(items, start=1)]
    _check_unique_ids(tasks)
    return tasks


def _empty_message(source: str) -> str:
    if source.startswith("task file"):
        return (
            f"no tasks to run: {source} holds no tasks; add at least one (in .txt files, blank "
            "lines and lines starting with '#' are skipped)."
        )
    return f"no tasks to run: {source} is empty; pass at least one prompt, such as {_EXAMPLE}."


def _checked(task: Task, item: _Item, n: int) -> Task:
    """A new Task with a checked prompt, id, timeout, env and a plain-dict metadata."""
    return Task(
        prompt=_checked_prompt(task.prompt, item.where),
        id=_checked_id(task.id, item.where, n),
        metadata=_checked_metadata(task.metadata, item.where),
        timeout=_checked_timeout(task.timeout, item.where),
        env=_checked_env(task.env, item.where),
        attempts=_checked_attempts(task.attempts, item.where),
    )


def _checked_attempts(attempts: object, where: str) -> int:
    if attempts is None:
        return 1
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValidationError(
            f"{where} has attempts={_shown(attempts)}; attempts must be a whole number of 1 or "
            "more (the number of independent candidates to run), such as attempts=3."
        )
    return attempts


def _checked_prompt(prompt: object, where: str) -> str:
    if prompt is None:
        raise ValidationError(f"{where} has no prompt; give every task some text, or remove it.")
    if not isinstance(prompt, str):
        raise ValidationError(
            f"{where} has a prompt of type {type(prompt).__name__} ({_shown(prompt)}); "
            "a prompt must be a string, so quote it."
        )
    if not prompt.strip():
        raise ValidationError(
            f"{where} has an empty prompt; give every task some text, or remove it."
        )
    if "\0" in prompt:
        # A command's environment and arguments cannot hold one, so the task could only fail.
        raise ValidationError(
            f"{where} has a prompt with a NUL character (\\0) at position "
            f"{prompt.index(chr(0))}; remove it."
        )
    return str(prompt)


def _checked_timeout(timeout: object, where: str) -> float | None:
    try:
        return optional_positive_float("timeout", timeout)
    except ValidationError:
        raise ValidationError(
            f"{where} has the timeout {_shown(timeout)}; a timeout is a number of seconds above 0, "
            "such as 600, or null for none."
        ) from None


def _checked_id(task_id: object, where: str, n: int) -> str:
    if task_id is None or (isinstance(task_id, float) and math.isnan(task_id)):
        return f"task-{n}"
    text = _id_text(task_id)
    if text is None:
        raise ValidationError(
            f"{where} has an id of type {type(task_id).__name__} ({_shown(task_id)}); "
            "an id must be a string such as 'fix-login'."
        )
    if not TASK_ID_PATTERN.fullmatch(text):
        raise ValidationError(
            f"{where} has the id {_shown(text)}, which is not safe as a folder name; {_ID_RULE}."
        )
    return text


def _id_text(task_id: object) -> str | None:
    """The id as text; whole numbers (YAML ``id: 7``, an int DataFrame column) count as text."""
    if isinstance(task_id, str):
        return str(task_id)
    if isinstance(task_id, bool):
        return None
    if isinstance(task_id, numbers.Integral):
        return str(int(task_id))
    # An int id column with a gap becomes float in pandas; 3.0 there was written as 3.
    if isinstance(task_id, float) and task_id.is_integer():
        return str(int(task_id))
    return None


def _checked_metadata(metadata: object, where: str) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError(
            f"{where} has metadata of type {type(metadata).__name__}; pass a dict such as "
            "{'team': 'web'}."
        )
    return {str(key): value for key, value in metadata.items()}


def _checked_env(env: object, where: str) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise ValidationError(
            f"{where} has env of type {type(env).__name__}; pass a dict of variable names to "
            "string values such as {'DEBUG': '1'}."
        )
    checked: dict[str, str] = {}
    for key, value in env.items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise ValidationError(
                f"{where} has the environment variable name {_shown(key)}; names must be "
                "non-empty strings without '=' or NUL."
            )
        checked[key] = _env_value(key, value, where)
    return checked


def _env_value(key: str, value: object, where: str) -> str:
    if isinstance(value, str):
        return str(value)
    # YAML reads `DEBUG: 1` as an int; its text is what the user meant. `true` is ambiguous.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValidationError(
        f"{where} sets the environment variable {key} to {_shown(value)}; "
        "environment values must be strings, so quote it."
    )


def _check_unique_ids(tasks: list[Task]) -> None:
    positions: dict[str, list[int]] = {}
    for n, task in enumerate(tasks, start=1):
        positions.setdefault(task.task_id, []).append(n)
    for task_id, found in positions.items():
        if len(found) > 1:
            listed = ", ".join(map(str, found[:-1])) + f" and {found[-1]}"
            raise ValidationError(
                f"the task id '{task_id}' is used by tasks {listed}; give every task a unique id."
            )
