"""Earliest deadline first: the nearest deadline runs first.

Tasks without a deadline go after every task with one, in submission order.
On one worker this order minimises the maximum lateness (Jackson's rule).

A task that can no longer meet its deadline (the clock plus its expected
duration is past it) is handled by policy: ``run`` keeps it in its place and
runs it late; ``expire`` ends it as ``expired`` with the reason, so the slot
goes to a task that can still make it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from scheduler.errors import InvalidInputError
from scheduler.models import PendingTask, WorkerView
from scheduler.strategies.base import Snapshot, SortKey, Strategy
from scheduler.strategies.pool import WorkerKey, by_load, least

LatePolicy = Literal["run", "expire"]


class EdfStrategy(Strategy):
    """Nearest deadline first, on the worker expected to finish it first.

    Args:
        late: ``run`` or ``expire``: what to do with a task that cannot make its deadline.
    """

    name = "edf"

    def __init__(self, late: str = "run") -> None:
        if late not in ("run", "expire"):
            raise InvalidInputError("edf_late", late, "run or expire")
        self.late = late
        self.uses_estimates = late == "expire"
        # Whether a task is expired depends on the moment it is bound, which a
        # hand-off list prepared in advance would not see.
        self.handoff = late == "run"

    def sort_key(self, task: PendingTask) -> SortKey:
        if task.deadline is None:
            return (1.0, 0.0, float(task.seq))
        return (0.0, task.deadline, float(task.seq))

    def expire_reason(self, task: PendingTask, snapshot: Snapshot) -> str | None:
        if self.late != "expire" or task.deadline is None:
            return None
        expected = snapshot.estimates.duration(task)
        finish = snapshot.now + expected
        if finish <= task.deadline:
            return None
        return (
            f"deadline cannot be met: expected to finish {finish - task.deadline:.3f}s after it "
            f"(expected run time {expected:.3f}s; policy edf_late=expire)"
        )

    def worker_order(self) -> WorkerKey | None:
        return by_load

    def pick_worker(
        self, task: PendingTask, workers: Sequence[WorkerView], snapshot: Snapshot
    ) -> WorkerView | None:
        # Workers are alike in speed, so the earliest finish is on the least
        # loaded; among equals, the one where the task's key is warmest (a
        # task without a key has no affinity anywhere: the least loaded).
        key = task.affinity_key
        if key is None:
            return least(workers, by_load)
        # min() by (load, -affinity, name), written out: it runs for every free
        # worker at each keyed decision.
        affinity = snapshot.estimates.affinity
        best: WorkerView | None = None
        best_load = best_score = 0.0
        for w in workers:
            slots = w.slots
            load = w.inflight / slots if slots else 1.0
            if best is None or load < best_load:
                best, best_load, best_score = w, load, affinity.get((key, w.name), 0.0)
            elif load == best_load:
                score = affinity.get((key, w.name), 0.0)
                if score > best_score or (score == best_score and w.name < best.name):
                    best, best_score = w, score
        return best
