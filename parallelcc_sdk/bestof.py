"""Best-of-N: run a task as N independent candidates and pick one.

A task with ``attempts=N`` (``Task(attempts=N)``, or ``submit(attempts=N)`` for every task) is
run as N tasks ``<id>~1`` … ``<id>~N``, each in its own sandbox, each told its number in
``PARALLELCC_CANDIDATE``. Their records carry ``candidate_of`` (the id the user gave) and
``candidate`` (the number), so ``df.groupby("candidate_of")`` gathers them. When the last
candidate of a task has finished, a selector picks one: its record gets ``selected=True``, the
others ``False``, and each a ``selection_reason``. Selectors:

``"tests"``
    the candidates whose agent completed and whose check command (``select_command``, run in
    the workspace after the agent) exited 0; of those, the smallest diff.
``"smallest_diff"``
    the completed candidate with the fewest changed lines (then files).
``"cheapest"``
    the completed candidate that cost least (then the smallest diff).
a callable
    ``select(candidates: list[TaskResult]) -> TaskResult | None``, given every candidate.

No candidate qualifies → none is selected, and every reason says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .errors import ValidationError
from .models import Task, TaskResult, TaskStatus

__all__ = [
    "CANDIDATE_ENV",
    "CANDIDATE_SEPARATOR",
    "SELECTORS",
    "Selection",
    "Selector",
    "candidate_id",
    "expand_candidates",
    "select_candidate",
]

CANDIDATE_SEPARATOR = "~"
"""Between a task's id and a candidate's number: never in an id a user gives."""
CANDIDATE_ENV = "PARALLELCC_CANDIDATE"
SELECTORS = ("tests", "smallest_diff", "cheapest")

Selector = str | Callable[[list[TaskResult]], "TaskResult | None"]


def candidate_id(task_id: str, n: int) -> str:
    return f"{task_id}{CANDIDATE_SEPARATOR}{n}"


def expand_candidates(tasks: Iterable[Task], attempts: int = 1) -> list[Task]:
    """Each task with more than one attempt as that many candidate tasks, in place, in order.

    ``attempts`` is the run's default, for tasks whose own ``attempts`` is 1.
    """
    expanded: list[Task] = []
    for task in tasks:
        n = task.attempts if task.attempts != 1 else attempts
        if n <= 1:
            expanded.append(task)
            continue
        expanded += [
            replace(
                task,
                id=candidate_id(task.task_id, i),
                env={**task.env, CANDIDATE_ENV: str(i)},
                attempts=1,
                candidate_of=task.task_id,
                candidate=i,
            )
            for i in range(1, n + 1)
        ]
    return expanded


def checked_selector(select: Any, select_command: str | None) -> Selector:
    """``select`` as given, checked before anything starts."""
    if callable(select):
        return select  # type: ignore[no-any-return]
    if select not in SELECTORS:
        raise ValidationError(
            f"select={select!r} is not a selector; use one of "
            f"{', '.join(repr(s) for s in SELECTORS)}, or a function(list[TaskResult]) -> "
            "TaskResult."
        )
    if select == "tests" and select_command is None:
        raise ValidationError(
            "select='tests' needs the command that tests a candidate; pass "
            "select_command='pytest -q' (or your test command)."
        )
    return str(select)


def _diff_size(task: TaskResult) -> tuple[int, int]:
    return ((task.lines_added or 0) + (task.lines_removed or 0), task.files_changed or 0)


def _completed(candidates: Sequence[TaskResult]) -> list[TaskResult]:
    # A completed candidate whose changes were not collected has nothing to land.
    return [
        c for c in candidates if c.status is TaskStatus.COMPLETED and c.files_changed is not None
    ]


def _cost(task: TaskResult) -> float:
    return task.cost_usd if task.cost_usd is not None else math.inf


def _check_failure(task: TaskResult) -> str:
    code = task.check_exit_code
    return "it timed out" if code is None else f"exit code {code}"


def select_candidate(
    candidates: Sequence[TaskResult], select: Selector
) -> tuple[TaskResult | None, dict[str, str]]:
    """The chosen candidate (or ``None``) and, for every candidate, why it was or was not."""
    if callable(select):
        return _select_with_function(candidates, select)
    position = {c.task_id: i for i, c in enumerate(candidates)}
    done = _completed(candidates)
    reasons = {c.task_id: f"not selected: {c.status.value}" for c in candidates if c not in done}
    pool = done
    if select == "tests":
        for c in done:
            if c.check_exit_code != 0:
                reasons[c.task_id] = f"not selected: the check failed ({_check_failure(c)})"
        pool = [c for c in done if c.check_exit_code == 0]
        why = "the check passed; smallest diff of {n} passing"
    elif select == "cheapest":
        why = "cheapest of {n} completed"
    else:
        why = "smallest diff of {n} completed"

    def rank(c: TaskResult) -> tuple[Any, ...]:
        cost = (_cost(c),) if select == "cheapest" else ()
        return (*cost, _diff_size(c), position[c.task_id])

    if not pool:
        return None, reasons
    chosen = min(pool, key=rank)
    best = why.format(n=len(pool))
    for c in pool:
        reasons[c.task_id] = best if c is chosen else f"not selected: {chosen.task_id} is {best}"
    return chosen, reasons


def _select_with_function(
    candidates: Sequence[TaskResult], select: Callable[[list[TaskResult]], TaskResult | None]
) -> tuple[TaskResult | None, dict[str, str]]:
    picked = select(list(candidates))
    chosen = next(
        (c for c in candidates if picked is not None and c.task_id == picked.task_id), None
    )
    reasons = {
        c.task_id: "chosen by the select function"
        if c is chosen
        else "not selected: the select function chose another"
        for c in candidates
    }
    return chosen, reasons


@dataclass
class Selection:
    """Which candidates belong together, and which groups are decided; the engine asks it."""

    select: Selector
    groups: dict[str, list[str]]
    decided: set[str]

    @classmethod
    def of(
        cls, tasks: Iterable[Task], select: Selector, results: Mapping[str, TaskResult]
    ) -> Selection:
        """The groups of ``tasks``; those whose every record has a choice already are decided
        (a run resumed in a later process)."""
        groups: dict[str, list[str]] = {}
        for task in tasks:
            if task.candidate_of is not None:
                groups.setdefault(task.candidate_of, []).append(task.task_id)
        decided = {
            name
            for name, members in groups.items()
            if all(results[m].selected is not None for m in members)
        }
        return cls(select, groups, decided)

    def decide(
        self, results: Mapping[str, TaskResult], task_id: str | None = None
    ) -> list[TaskResult]:
        """The records to update for each group (or ``task_id``'s group) that just became
        decidable: every candidate final, and not decided yet."""
        if task_id is not None:
            record = results[task_id]
            names = [record.candidate_of] if record.candidate_of is not None else []
        else:
            names = list(self.groups)
        updated: list[TaskResult] = []
        for name in names:
            members = [results[i] for i in self.groups.get(name, ())]
            if name in self.decided or not all(m.status.is_final for m in members):
                continue
            self.decided.add(name)
            chosen, reasons = select_candidate(members, self.select)
            updated += [
                m.replace(
                    selected=chosen is not None and m.task_id == chosen.task_id,
                    selection_reason=reasons.get(m.task_id),
                )
                for m in members
            ]
        return updated
