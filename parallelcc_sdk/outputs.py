"""The run folder's writer under its former name; it lives in ``parallelcc_sdk.runfolder``."""

from __future__ import annotations

from .runfolder.codec import (
    parse_datetime,
    task_result_from_json,
    task_result_to_json,
    to_jsonable,
)
from .runfolder.writer import (
    RunJournal,
    create_run_dir,
    new_run_id,
    write_run_outputs,
    write_task_metadata,
)

__all__ = [
    "RunJournal",
    "create_run_dir",
    "new_run_id",
    "parse_datetime",
    "task_result_from_json",
    "task_result_to_json",
    "to_jsonable",
    "write_run_outputs",
    "write_task_metadata",
]
