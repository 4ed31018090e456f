"""Earliest deadline first: the nearest deadline runs first.

Tasks without a deadline go after every task with one, in submission order.
On one worker this order minimises the maximum lateness (Jackson's rule); a
task whose deadline can no longer be met still runs, in its place.
"""

from __future__ import annotations

from collections.abc import Sequence

from scheduler.models import PendingTask, WorkerView
from scheduler.strategies.base import Snapshot, SortKey, Strategy, least_loaded


class EdfStrategy(Strategy):
    """Nearest deadline first, on the least-loaded worker."""

    name = "edf"

    def sort_key(self, task: PendingTask) -> SortKey:
        if task.deadline is None:
            return (1.0, 0.0, float(task.seq))
        return (0.0, task.deadline, float(task.seq))

    def pick_worker(
        self, task: PendingTask, workers: Sequence[WorkerView], snapshot: Snapshot
    ) -> WorkerView | None:
        return least_loaded(workers)
