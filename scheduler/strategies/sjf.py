"""Shortest expected job first.

The estimate of a task is its ``expected_duration`` hint, else the learned EMA
of its duration key (the task name unless one was given), else the configured
default. Learned estimates change while tasks wait, so the queue keeps one
FIFO per duration key and, at each pop, compares the heads by their current
estimate: O(number of keys) per decision, and a change in what is learned
reorders the whole backlog at once. Hinted tasks sit in a heap on their hint.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence

from scheduler.models import Estimates, PendingTask, WorkerView
from scheduler.strategies.base import (
    IndexedQueue,
    Snapshot,
    SortKey,
    Strategy,
    TaskQueue,
    WorkerKey,
    by_load,
    least,
)


class EstimateQueue(IndexedQueue):
    """Pops the task with the smallest current duration estimate; ties by submission."""

    def __init__(self, estimates: Estimates) -> None:
        super().__init__()
        self._estimates = estimates
        self._hinted: list[tuple[float, int, str]] = []
        self._by_key: dict[str, deque[str]] = {}

    def add(self, task: PendingTask) -> None:
        if task.id in self._tasks:
            return
        self._tasks[task.id] = task
        if task.expected_duration is not None:
            heapq.heappush(self._hinted, (task.expected_duration, task.seq, task.id))
        else:
            self._by_key.setdefault(task.estimate_key, deque()).append(task.id)

    def discard(self, task_id: str) -> PendingTask | None:
        return self._tasks.pop(task_id, None)  # stale ids are skipped when they surface

    def _head(self, ids: deque[str]) -> PendingTask | None:
        while ids and ids[0] not in self._tasks:
            ids.popleft()
        return self._tasks[ids[0]] if ids else None

    def pop(self) -> PendingTask | None:
        while self._hinted and self._hinted[0][2] not in self._tasks:
            heapq.heappop(self._hinted)
        best: tuple[float, int] | None = None
        source: deque[str] | None = None
        if self._hinted:
            best = (self._hinted[0][0], self._hinted[0][1])
        for key, ids in list(self._by_key.items()):
            head = self._head(ids)
            if head is None:
                del self._by_key[key]
                continue
            rank = (self._estimates.learned(key), head.seq)
            if best is None or rank < best:
                best, source = rank, ids
        if best is None:
            return None
        task_id = source.popleft() if source is not None else heapq.heappop(self._hinted)[2]
        return self._tasks.pop(task_id)


class SjfStrategy(Strategy):
    """Shortest expected duration first, on the least-loaded worker.

    With every slot free at once the choice of worker does not change when a
    task finishes (workers are alike), so the least loaded is the earliest
    expected finish.
    """

    name = "sjf"
    # Its order follows estimates learned while tasks wait, which a prepared
    # hand-off list would not see; the dispatcher fills every slot itself.
    handoff = False
    uses_estimates = True

    def make_queue(self, estimates: Estimates | None = None) -> TaskQueue:
        return EstimateQueue(estimates if estimates is not None else Estimates())

    def sort_key(self, task: PendingTask) -> SortKey:
        # Only the hint is known without estimates; the queue uses live ones.
        hint = task.expected_duration if task.expected_duration is not None else float("inf")
        return (hint, float(task.seq))

    def worker_order(self) -> WorkerKey | None:
        return by_load

    def pick_worker(
        self, task: PendingTask, workers: Sequence[WorkerView], snapshot: Snapshot
    ) -> WorkerView | None:
        return least(workers, by_load)
