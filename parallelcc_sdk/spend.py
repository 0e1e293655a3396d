"""What a run has spent: every finished attempt, plus the latest reported cost of running ones.

A task's cost is what its agent reported (model tokens) plus what its sandboxes cost (a cloud
backend bills the seconds they ran); the run's budget counts both.
"""

from __future__ import annotations

from .contract import AgentMetrics

__all__ = ["SpendLedger"]

# Summed over a task's attempts: a retried task paid for each one.
_SUMMED_TOKENS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
)


class SpendLedger:
    """Cost and tokens per task, summed over attempts, and the run's total against its budget."""

    def __init__(self, budget_usd: float | None = None) -> None:
        self.budget_usd = budget_usd
        self._settled: dict[str, dict[str, float | int]] = {}
        self._live: dict[str, float] = {}

    def report_live(self, task_id: str, cost_usd: float) -> None:
        """The running attempt of ``task_id`` says its agent has spent ``cost_usd`` so far."""
        self._live[task_id] = cost_usd

    def settle_attempt(
        self, task_id: str, metrics: AgentMetrics, sandbox_cost_usd: float | None = None
    ) -> None:
        """An attempt ended: what it reported, and what its sandbox cost, is added to its task.

        An attempt that ended without a final cost (timed out, cancelled) is charged the last
        cost it reported while running: that money was spent.
        """
        live = self._live.pop(task_id, None)
        sums = self._settled.setdefault(task_id, {})
        agent = metrics.cost_usd if metrics.cost_usd is not None else live
        for name, value in (("agent_cost_usd", agent), ("sandbox_cost_usd", sandbox_cost_usd)):
            if value is not None:
                sums[name] = sums.get(name, 0.0) + value
                sums["cost_usd"] = sums.get("cost_usd", 0.0) + value
        for name in _SUMMED_TOKENS:
            count = getattr(metrics, name)
            if count is not None:
                sums[name] = sums.get(name, 0) + count

    def task_totals(self, task_id: str) -> dict[str, float | int]:
        """The task's sums over its attempts, for its record (only what was reported):
        ``cost_usd`` is ``agent_cost_usd`` plus ``sandbox_cost_usd``."""
        return dict(self._settled.get(task_id, {}))

    @property
    def total_usd(self) -> float:
        """Every settled attempt plus the running ones' latest cost.

        Readable from any thread: the dicts are copied (one atomic step) before summing.
        """
        settled = sum(float(s.get("cost_usd", 0.0)) for s in self._settled.copy().values())
        return settled + sum(self._live.copy().values())

    @property
    def exhausted(self) -> bool:
        """True once the budget (if any) is spent."""
        return self.budget_usd is not None and self.total_usd >= self.budget_usd
