"""Priority with linear aging: higher priority first, and nothing starves.

A task's effective priority grows by ``aging`` levels per second of waiting:
``priority + aging * (now - submitted_at)``. Comparing two tasks, ``now``
cancels out, so the order is fixed at submission and a heap keeps it. The
promise that follows: a task of priority ``p`` is never overtaken by a task
of priority ``q`` submitted more than ``(q - p) / aging`` seconds after it.
With ``aging = 0`` the order is strict priority, then the longer remaining path
in a workflow, then submission order.
"""

from __future__ import annotations

from collections.abc import Sequence

from scheduler.errors import InvalidInputError
from scheduler.models import Estimates, PendingTask, WorkerView
from scheduler.strategies.base import EPOCH, RankQueue, Snapshot, SortKey, Strategy, TaskQueue
from scheduler.strategies.pool import WorkerKey, least


class PriorityStrategy(Strategy):
    """Highest effective priority first; least loaded, then most reliable worker.

    Args:
        aging: Priority levels gained per second of waiting (0 = strict).
    """

    name = "priority"
    settings_read = ("priority_aging",)

    def __init__(self, aging: float = 0.1) -> None:
        if not aging >= 0.0:
            raise InvalidInputError("priority_aging", aging, "a number >= 0 (0 means strict)")
        self.aging = aging

    def make_queue(self, estimates: Estimates | None = None) -> TaskQueue:
        return RankQueue(self.rank)  # the order of sort_key

    def rank(self, task: PendingTask) -> float:
        """The first part of the sort key (smaller runs first); ties go to the longer remaining
        path, then by submission."""
        return self.aging * (task.submitted_at - EPOCH) - task.priority

    def sort_key(self, task: PendingTask) -> SortKey:
        return (self.rank(task), -task.path, float(task.seq))

    def overtake_window(self, low: int, high: int) -> float:
        """Seconds after which a ``high`` task submitted later no longer goes first."""
        if self.aging == 0.0:
            return float("inf")
        return max(0, high - low) / self.aging

    def worker_order(self) -> WorkerKey | None:
        return by_load_then_reliability

    def pick_worker(
        self, task: PendingTask, workers: Sequence[WorkerView], snapshot: Snapshot
    ) -> WorkerView | None:
        return least(workers, by_load_then_reliability)


def by_load_then_reliability(w: WorkerView) -> tuple[float | str, ...]:
    """Least loaded first, then the highest success rate, then by name.

    ``(w.load, -w.success_rate, w.name)``, spelled out: the pool calls it at
    every slot taken and freed, and the two properties cost more than the sums.
    """
    slots, done = w.slots, w.succeeded + w.failed
    return (
        w.inflight / slots if slots else 1.0,
        -(w.succeeded / done if done else 1.0),
        w.name,
    )
