"""``parallelcc_sdk.__all__`` is the public API: complete, sorted, importable, nothing private."""

from __future__ import annotations

import subprocess
import sys

import parallelcc_sdk as pcc

# The names users and extension authors depend on (see docs/architecture.md).
CONTRACT = {
    # running
    "Task", "TaskResult", "TaskStatus", "RunResult", "RunSummary", "ExecutionHandle", "Event",
    "EventType", "Phase", "submit", "run", "run_async", "load_run", "load_tasks", "cleanup",
    "resume", "retry", "SetupError",
    "LocalBackend", "ClaudeCode", "Command", "ParallelCCError", "ValidationError",
    # writing an agent
    "Agent", "AgentContext", "AgentMetrics", "AgentOutcome", "Invocation", "OutputParser",
    "Progress", "SandboxFile", "Stream",
    # writing a backend
    "Backend", "Sandbox", "SandboxSpec", "RunSpec", "PreparedRun", "Snapshot", "ChangeStats",
    "LineHandler", "LineSplitter", "collect_command", "unpack_changes", "TransientBackendError",
    "ChangeCollectionError",
}  # fmt: skip


def test_all_is_sorted_and_unique() -> None:
    assert pcc.__all__ == sorted(set(pcc.__all__))


def test_every_name_in_all_is_importable() -> None:
    missing = [name for name in pcc.__all__ if not hasattr(pcc, name)]
    assert missing == []


def test_no_private_names_are_exported() -> None:
    dunder = {"__version__"}
    private = [n for n in pcc.__all__ if n.startswith("_") and n not in dunder]
    assert private == []


def test_the_contract_names_are_exported() -> None:
    assert sorted(CONTRACT - set(pcc.__all__)) == []


def test_public_classes_say_they_belong_to_the_package() -> None:
    for name in pcc.__all__:
        value = getattr(pcc, name)
        module = getattr(value, "__module__", None)
        if isinstance(value, type):
            assert module is not None and module.startswith("parallelcc_sdk"), name


def test_star_import_gives_exactly_all() -> None:
    code = (
        "import parallelcc_sdk\n"
        "namespace = {}\n"
        "exec('from parallelcc_sdk import *', namespace)\n"
        "namespace.pop('__builtins__')\n"
        "assert sorted(namespace) == sorted(parallelcc_sdk.__all__), "
        "set(namespace) ^ set(parallelcc_sdk.__all__)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
