"""A run as plain text: the ``text/plain`` of a handle or result, and the text progress line."""

from __future__ import annotations

from . import format as fmt
from ._state import RunState


def status_line(state: RunState) -> str:
    """``4 of 6 done: 3 completed, 1 failed, 2 running · 12.3s · $0.0500``."""
    parts = [state.outcome, fmt.duration(state.elapsed_s)]
    if state.cost_usd is not None:
        parts.append(fmt.cost(state.cost_usd))
    if state.isolation is not None:
        parts.append(f"isolation {state.isolation}")
    return " · ".join(parts)


def plain_summary(state: RunState) -> str:
    """``parallelcc run <id> finished: 6 completed · 3.1s`` and, below, where its files are."""
    text = f"parallelcc run {state.run_id} {status_line(state)}"
    if state.run_dir is not None:
        text += f"\nrun folder: {state.run_dir}"
    return text
