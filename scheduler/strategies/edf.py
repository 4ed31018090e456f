"""Earliest deadline first: the nearest deadline runs first.

Tasks without a deadline go after every task with one, in submission order.
Ties of deadlines go to the longer remaining path in a workflow. On one worker this order
minimises the maximum lateness (Jackson's rule). A task of a workflow is
ordered by its propagated deadline when the driver gives one
(``PendingTask.deadline``; :mod:`scheduler.workflow`): on one worker with
precedence constraints, that order is the one that minimises the maximum
lateness too (the modified due dates of Lawler's rule).

A task that can no longer meet its deadline (the clock plus its expected
duration is past it) is handled by policy: ``run`` keeps it in its place and
runs it late; ``expire`` ends it as ``expired`` with the reason, so the slot
goes to a task that can still make it.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Literal, cast

from scheduler.errors import InvalidInputError
from scheduler.models import Estimates, PendingTask, WorkerView
from scheduler.strategies.base import LazyHeapQueue, Snapshot, SortKey, Strategy, TaskQueue
from scheduler.strategies.pool import WorkerKey, WorkerPool, by_load, in_load_order, least

LatePolicy = Literal["run", "expire"]


class DeadlineQueue(LazyHeapQueue):
    """The order of a :class:`~scheduler.strategies.HeapQueue` on
    :meth:`EdfStrategy.sort_key`, in flat heap entries.

    An entry is ``(0.0, deadline, seq, id)``, or ``(1.0, seq, id)`` without
    a deadline (the key's ``0.0`` left out: the ``1.0`` already puts every
    such entry after those with one, and among them ``seq`` decides, so the
    order is the same with one field less per pending task, 16 B as
    allocated): the sort key's items and then the heap's
    tie-breakers, in one tuple, so no key tuple is made per task and
    comparisons do not descend into one (``seq`` is an integer, equal to its
    float in the key). A task with a deadline on a workflow path has
    ``-path`` before ``seq`` (see :class:`~scheduler.strategies.LazyHeapQueue`);
    tasks without one are in submission order, which never ties. Same order.
    """

    __slots__ = ()

    def add(self, task: PendingTask) -> None:
        if task.id in self._tasks:
            return
        self._tasks[task.id] = task
        deadline = task.deadline
        if deadline is None:
            heapq.heappush(self._heap, (1.0, task.seq, task.id))
        elif task.path:
            heapq.heappush(self._heap, (0.0, deadline, -task.path, task.seq, task.id))
        else:
            heapq.heappush(self._heap, (0.0, deadline, task.seq, task.id))


def earliest_finish(
    strategy: Strategy, task: PendingTask, workers: Sequence[WorkerView], snapshot: Snapshot
) -> WorkerView | None:
    """The worker expected to finish ``task`` first: ``pick_worker`` of ``edf`` and
    ``critical_path``.

    Workers are alike in speed, so the earliest finish is on the least
    loaded; among equals, the one where the task's key is warmest, then the
    first name (a task without a key has no affinity anywhere: the least
    loaded).
    """
    key = task.affinity_key
    if key is None:
        return least(workers, by_load)
    affinity = snapshot.estimates.affinity
    order = in_load_order(workers)
    if order is not None:
        # The least loaded come first, by name: the warmest of them, the
        # first name among equals (this runs at each keyed decision).
        low, best_name = order[0]
        best_score = affinity.get((key, best_name), 0.0)
        for load, name in order:
            if load != low:
                break
            score = affinity.get((key, name), 0.0)
            if score > best_score:
                best_name, best_score = name, score
        return cast(WorkerPool, workers).named(best_name)  # in_load_order: a pool
    # A plain list of workers (no driver's pool): the same choice, not a hot path.
    return min(workers, key=lambda w: (w.load, -affinity.get((key, w.name), 0.0), w.name))


class EdfStrategy(Strategy):
    """Nearest deadline first, on the worker expected to finish it first.

    Args:
        late: ``run`` or ``expire``: what to do with a task that cannot make its deadline.
    """

    name = "edf"
    settings_read = ("edf_late", "ema_alpha", "default_duration")

    def __init__(self, late: str = "run") -> None:
        if late not in ("run", "expire"):
            raise InvalidInputError("edf_late", late, "run or expire")
        self.late = late
        self.uses_estimates = late == "expire"
        # Whether a task is expired depends on the moment it is bound, which a
        # hand-off list prepared in advance would not see.
        self.handoff = late == "run"

    def make_queue(self, estimates: Estimates | None = None) -> TaskQueue:
        return DeadlineQueue()  # the order of sort_key

    def sort_key(self, task: PendingTask) -> SortKey:
        if task.deadline is None:
            return (1.0, 0.0, float(task.seq))
        return (0.0, task.deadline, -task.path, float(task.seq))

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

    # The method is the module's function itself: no call in between at each decision.
    pick_worker = earliest_finish
