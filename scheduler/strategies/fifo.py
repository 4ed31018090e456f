"""First in, first out: submission order, on the least-loaded worker."""

from __future__ import annotations

from collections.abc import Sequence

from scheduler.models import PendingTask, WorkerView
from scheduler.strategies.base import (
    Snapshot,
    SortKey,
    Strategy,
    WorkerKey,
    by_load,
    least_loaded,
)


class FifoStrategy(Strategy):
    """Run tasks in the order they were submitted, cluster-wide."""

    name = "fifo"

    def sort_key(self, task: PendingTask) -> SortKey:
        return (float(task.seq),)

    def worker_order(self) -> WorkerKey | None:
        return by_load

    def pick_worker(
        self, task: PendingTask, workers: Sequence[WorkerView], snapshot: Snapshot
    ) -> WorkerView | None:
        return least_loaded(workers)
