"""What a run has spent: every finished attempt, plus the latest reported cost of running ones."""

from __future__ import annotations

from .contract import AgentMetrics

__all__ = ["SpendLedger"]

# Summed over a task's attempts: a retried task paid for each one.
_SUMMED = (
    "cost_usd",
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
        """The running attempt of ``task_id`` says it has spent ``cost_usd`` so far."""
        self._live[task_id] = cost_usd

    def settle_attempt(self, task_id: str, metrics: AgentMetrics) -> None:
        """An attempt ended: what it reported is added to its task.

        An attempt that ended without a final cost (timed out, cancelled) is charged the last
        cost it reported while running: that money was spent.
        """
        live = self._live.pop(task_id, None)
        sums = self._settled.setdefault(task_id, {})
        for name in _SUMMED:
            value = getattr(metrics, name)
            if name == "cost_usd" and value is None:
                value = live
            if value is not None:
                sums[name] = sums.get(name, 0) + value

    def task_totals(self, task_id: str) -> dict[str, float | int]:
        """The task's sums over its attempts, for its record (only what was reported)."""
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
