"""Schedule metrics, named as DESIGN.md names them everywhere.

``flow`` = finish - submit_at, ``wait`` = start - submit_at, ``lateness`` =
finish - deadline. Failed tasks count (they finished); tasks cancelled because
a dependency failed do not. Tasks expired by ``edf``'s ``expire`` policy count
as deadline misses, and have no flow.

A workload with dependencies also gets ``workflows`` (its workflows: tasks
joined by dependencies, two or more) and ``workflow_deadline_misses`` (those
with a deadline on one of their tasks that was missed: finished late, or
never run because it was cancelled or expired). A workload without any has
neither key, so its output is what it always was.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import sub
from typing import Any

from scheduler.simulator.engine import Outcome, SimulatedTask
from scheduler.stats import percentiles
from scheduler.workflow import components
from scheduler.workload import WorkloadTask

METRIC_NAMES = (
    "tasks",
    "makespan",
    "mean_flow",
    "p50_flow",
    "p95_flow",
    "p99_flow",
    "mean_wait",
    "deadline_misses",
    "max_lateness",
    "utilization",
    "affinity_hits",
)
WORKFLOW_METRIC_NAMES = ("workflows", "workflow_deadline_misses")


def metrics(records: Sequence[SimulatedTask], slots_total: int) -> dict[str, Any]:
    """The metrics of one schedule (``slots_total`` = workers x slots)."""
    out = _metrics(
        [r.task.submit_at for r in records],
        [r.task.deadline for r in records],
        [r.state for r in records],
        [r.start for r in records],
        [r.finish for r in records],
        [r.warm for r in records],
        slots_total,
        None in (r.start for r in records) or None in (r.finish for r in records),
    )
    tasks = [r.task for r in records]
    if any(t.depends_on for t in tasks):
        index = {t.id: i for i, t in enumerate(tasks)}
        label = components([[index[d] for d in t.depends_on] for t in tasks])
        states = [r.state for r in records]
        out.update(_workflow_metrics(tasks, label, states, [r.finish for r in records]))
    return out


def outcome_metrics(outcome: Outcome, slots_total: int) -> dict[str, Any]:
    """:func:`metrics` of a simulator run, read from its columns."""
    tasks = outcome.tasks
    state = outcome.state
    ran = state.count("succeeded") + state.count("failed")  # the others never started
    out = _metrics(
        outcome.submit,
        [t.deadline for t in tasks],
        state,
        outcome.start,
        outcome.finish,
        outcome.warm,
        slots_total,
        ran < len(state),
    )
    if outcome.workflow is not None:
        out.update(_workflow_metrics(tasks, outcome.workflow, state, outcome.finish))
    return out


def _metrics(
    submit: list[float],
    deadline: list[float | None],
    state: list[str],
    start: list[float | None],
    finish: list[float | None],
    warm: list[bool],
    slots_total: int,
    some_not_run: bool,
) -> dict[str, Any]:
    expired = state.count("expired")
    first = min(submit, default=0.0)
    if some_not_run:  # keep the tasks that ran (in order)
        done = [
            i
            for i, (s, f) in enumerate(zip(start, finish, strict=True))
            if s is not None and f is not None
        ]
        submit = [submit[i] for i in done]
        deadline = [deadline[i] for i in done]
        start = [start[i] for i in done]
        finish = [finish[i] for i in done]
        warm = [warm[i] for i in done]
    flows: list[float] = list(map(sub, finish, submit))
    wait = sum(map(sub, start, submit))
    late = [f - d for f, d in zip(finish, deadline, strict=True) if d is not None]  # type: ignore[operator]
    last = max(finish, default=first)  # type: ignore[type-var]
    assert last is not None
    makespan = last - first
    busy = sum(map(sub, finish, start))
    p50, p95, p99 = percentiles(flows, (50, 95, 99)) if flows else (0.0, 0.0, 0.0)
    return {
        "tasks": len(state),
        "makespan": makespan,
        "mean_flow": sum(flows) / len(flows) if flows else 0.0,
        "p50_flow": p50,
        "p95_flow": p95,
        "p99_flow": p99,
        "mean_wait": wait / len(flows) if flows else 0.0,
        # An expired task gave up on its deadline: that is a miss too.
        "deadline_misses": sum(1 for x in late if x > 1e-9) + expired,
        "max_lateness": max(late) if late else None,
        "utilization": busy / (slots_total * makespan) if makespan > 0 else 0.0,
        "affinity_hits": warm.count(True),
    }


def _workflow_metrics(
    tasks: Sequence[WorkloadTask],
    label: Sequence[int],
    state: Sequence[str],
    finish: Sequence[float | None],
) -> dict[str, int]:
    """How many workflows the workload holds, and how many missed a deadline (``label``:
    each task's workflow, as :func:`scheduler.workflow.components` gives it)."""
    workflows = {label[i] for i, t in enumerate(tasks) if t.depends_on}
    missed = set()
    for i, t in enumerate(tasks):
        if t.deadline is None or label[i] not in workflows:
            continue
        end = finish[i]
        if state[i] in ("cancelled", "expired") or (end is not None and end - t.deadline > 1e-9):
            missed.add(label[i])
    return {"workflows": len(workflows), "workflow_deadline_misses": len(missed)}
