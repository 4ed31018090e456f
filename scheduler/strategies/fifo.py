"""First in, first out: submission order, on the least-loaded worker."""

from __future__ import annotations

from collections.abc import Sequence

from scheduler.models import Estimates, PendingTask, WorkerView
from scheduler.strategies.base import Snapshot, SortKey, Strategy, SubmissionQueue, TaskQueue
from scheduler.strategies.pool import WorkerKey, by_load, least


class FifoStrategy(Strategy):
    """Run tasks in the order they were submitted, cluster-wide."""

    name = "fifo"

    def make_queue(self, estimates: Estimates | None = None) -> TaskQueue:
        return SubmissionQueue()  # the order of sort_key, without calling it

    def sort_key(self, task: PendingTask) -> SortKey:
        # Sequence numbers never tie: no tie for a longer remaining path to break.
        return (float(task.seq),)

    def worker_order(self) -> WorkerKey | None:
        return by_load

    def pick_worker(
        self, task: PendingTask, workers: Sequence[WorkerView], snapshot: Snapshot
    ) -> WorkerView | None:
        return least(workers, by_load)
