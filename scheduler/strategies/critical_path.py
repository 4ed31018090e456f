"""Critical path first: the ready task with the longest expected path to the end of its workflow.

A task's rank is its upward rank, ``PendingTask.path``: the longest expected
time from its start to the end of any sink after it, its own run included,
which the driver computes from the workflow's graph when it releases the task
(:mod:`scheduler.workflow`). A task outside any workflow is its own path: it
ranks by its expected duration (hint, else learned, else the default). Ready
tasks run in decreasing rank, ties by submission; each goes to the worker
expected to finish it first.

This is list scheduling by upward rank (HLFET; the task order of HEFT on
identical workers). A task on the critical path is never held behind work
that could wait, so the makespan stays near the lower bound of the longest
path and of the total work over the slots; on in-trees with unit durations
it is Hu's level algorithm, which is optimal.
"""

from __future__ import annotations

import heapq

from scheduler.models import Estimates, PendingTask
from scheduler.strategies.base import LazyHeapQueue, SortKey, Strategy, TaskQueue
from scheduler.strategies.edf import earliest_finish
from scheduler.strategies.pool import WorkerKey, by_load


class PathQueue(LazyHeapQueue):
    """The order of :meth:`CriticalPathStrategy.sort_key`: a heap of ``(-rank, seq, id)``.

    A rank read from the estimates (a task outside any workflow) is read
    when the task arrives and kept while it waits, as ``weighted`` does.
    """

    __slots__ = ("_estimates",)

    def __init__(self, estimates: Estimates) -> None:
        super().__init__()
        self._estimates = estimates

    def add(self, task: PendingTask) -> None:
        if task.id in self._tasks:
            return
        self._tasks[task.id] = task
        rank = task.path
        if not rank:  # Estimates.duration(task), inlined: this runs once per task
            hint = task.expected_duration
            if hint is not None:
                rank = hint
            else:
                rank = self._estimates.learned(task.duration_key or task.name)
        heapq.heappush(self._heap, (-rank, task.seq, task.id))


class CriticalPathStrategy(Strategy):
    """Longest remaining path first; the worker with the earliest expected finish."""

    name = "critical_path"
    settings_read = ("default_duration", "ema_alpha")

    def __init__(self) -> None:
        self._estimates = Estimates()

    def make_queue(self, estimates: Estimates | None = None) -> TaskQueue:
        if estimates is not None:
            self._estimates = estimates
        return PathQueue(self._estimates)  # the order of sort_key

    def rank(self, task: PendingTask) -> float:
        """The task's remaining path; for a task outside any workflow, its expected duration."""
        return task.path or self._estimates.duration(task)

    def sort_key(self, task: PendingTask) -> SortKey:
        return (-self.rank(task), float(task.seq))

    def worker_order(self) -> WorkerKey | None:
        return by_load

    pick_worker = earliest_finish  # edf's: the worker expected to finish the task first
