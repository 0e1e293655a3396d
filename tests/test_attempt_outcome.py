"""The typed values between an attempt and the task's record: AttemptOutcome and SpendLedger."""

from __future__ import annotations

import dataclasses

import pytest

from parallelcc_sdk import AgentMetrics, ChangeStats, TaskResult, TaskStatus
from parallelcc_sdk.attempt import AttemptOutcome
from parallelcc_sdk.spend import SpendLedger

RECORD_FIELDS = {f.name for f in dataclasses.fields(TaskResult)}


def test_an_outcomes_fields_are_task_record_fields() -> None:
    outcome = AttemptOutcome(
        TaskStatus.COMPLETED,
        exit_code=0,
        metrics=AgentMetrics(cost_usd=0.5, num_turns=3, session_id="s"),
        changes=ChangeStats(2, 3, 1, ("a.py",), ("gone.py",)),
    )
    fields = outcome.record_fields()
    assert set(fields) <= RECORD_FIELDS
    record = TaskResult(task_id="t", prompt="p").replace(**fields)
    assert (record.status, record.exit_code, record.cost_usd, record.num_turns) == (
        TaskStatus.COMPLETED,
        0,
        0.5,
        3,
    )
    assert (record.changed_paths, record.deleted_paths) == (("a.py",), ("gone.py",))
    assert (record.files_changed, record.lines_added, record.lines_removed) == (2, 3, 1)


def test_an_outcome_without_changes_leaves_the_change_fields_alone() -> None:
    fields = AttemptOutcome(TaskStatus.CANCELLED, error="stopped").record_fields()
    assert not {"files_changed", "changed_paths", "deleted_paths"} & set(fields)
    assert fields["error"] == "stopped"


def test_every_metric_reaches_the_record() -> None:
    metric_names = {f.name for f in dataclasses.fields(AgentMetrics)}
    assert set(AgentMetrics().record_fields()) == metric_names
    assert metric_names <= RECORD_FIELDS


def test_records_read_back_from_json_compare_equal() -> None:
    made = TaskResult(task_id="t", prompt="p", changed_paths=("a",), deleted_paths=("b",))
    loaded = TaskResult(task_id="t", prompt="p", changed_paths=["a"], deleted_paths=["b"])  # type: ignore[arg-type]
    assert loaded == made and isinstance(loaded.deleted_paths, tuple)


def test_the_ledger_sums_attempts_and_charges_what_was_reported_live() -> None:
    ledger = SpendLedger(budget_usd=1.0)
    ledger.report_live("a", 0.2)
    ledger.report_live("a", 0.3)  # cumulative within an attempt: the latest counts
    ledger.report_live("b", 0.1)
    assert ledger.total_usd == pytest.approx(0.4)
    # A timed-out attempt reported no final cost: what it spent is still charged.
    ledger.settle_attempt("a", AgentMetrics())
    ledger.report_live("a", 0.25)
    ledger.settle_attempt("a", AgentMetrics(cost_usd=0.35, input_tokens=10))
    assert ledger.task_totals("a") == {
        "cost_usd": pytest.approx(0.65),
        "agent_cost_usd": pytest.approx(0.65),
        "input_tokens": 10,
    }
    assert ledger.total_usd == pytest.approx(0.75)
    assert not ledger.exhausted
    ledger.report_live("b", 0.4)
    assert ledger.exhausted
    assert ledger.task_totals("never-ran") == {}


def test_the_ledger_adds_what_sandboxes_cost_to_what_agents_spent() -> None:
    ledger = SpendLedger(budget_usd=1.0)
    # A sandbox billed by the second, an agent that reports nothing (a plain command).
    ledger.settle_attempt("cmd", AgentMetrics(), sandbox_cost_usd=0.25)
    assert ledger.task_totals("cmd") == {
        "cost_usd": pytest.approx(0.25),
        "sandbox_cost_usd": pytest.approx(0.25),
    }
    # Two attempts of an agent in such sandboxes: both parts summed, and the total is theirs.
    ledger.settle_attempt("ai", AgentMetrics(cost_usd=0.1), sandbox_cost_usd=0.05)
    ledger.settle_attempt("ai", AgentMetrics(cost_usd=0.2), sandbox_cost_usd=0.05)
    totals = ledger.task_totals("ai")
    assert totals["agent_cost_usd"] == pytest.approx(0.3)
    assert totals["sandbox_cost_usd"] == pytest.approx(0.1)
    assert totals["cost_usd"] == pytest.approx(0.4)
    # The run's budget counts both.
    assert ledger.total_usd == pytest.approx(0.65)
    ledger.settle_attempt("more", AgentMetrics(), sandbox_cost_usd=0.35)
    assert ledger.exhausted
