"""The run folder: its layout, its JSON form, the writer and the reader.

Everything that reads or writes ``<output_dir>/<run_id>/`` goes through this package:

- :mod:`.layout`: every file name and path;
- :mod:`.codec`: records to JSON and back;
- :mod:`.writer`: creating a run folder, the journal, task metadata, the final outputs;
- :mod:`.reader`: ``load_run``, ``read_journal``, ``read_run_info`` and ``list_runs``.

The reading API is re-exported here.
"""

from __future__ import annotations

from ..models import RunStatus
from .reader import (
    JournalState,
    RunInfo,
    list_runs,
    load_run,
    read_journal,
    read_run_info,
)

__all__ = [
    "JournalState",
    "RunInfo",
    "RunStatus",
    "list_runs",
    "load_run",
    "read_journal",
    "read_run_info",
]
