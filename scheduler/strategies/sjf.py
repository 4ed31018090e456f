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
from scheduler.strategies.base import IndexedQueue, Snapshot, SortKey, Strategy, TaskQueue
from scheduler.strategies.pool import WorkerKey, by_load, least


class EstimateQueue(IndexedQueue):
    """Pops the task with the smallest current duration estimate; ties by submission.

    Args:
        estimates: The driver's live estimates.
        overrun: Raise a key's estimate while one of its runs outlasts it
            (:meth:`~scheduler.models.Estimates.learned`); False uses the EMA alone.
    """

    def __init__(self, estimates: Estimates, overrun: bool = True) -> None:
        super().__init__()
        self._estimates = estimates
        self._overrun = overrun
        self._hinted: list[tuple[float, int, str]] = []
        self._by_key: dict[str, deque[str]] = {}

    def add(self, task: PendingTask) -> None:
        if task.id in self._tasks:
            return
        self._tasks[task.id] = task
        if task.expected_duration is not None:
            heapq.heappush(self._hinted, (task.expected_duration, task.seq, task.id))
        else:
            key = task.duration_key or task.name  # task.estimate_key
            ids = self._by_key.get(key)
            if ids is None:
                self._by_key[key] = deque((task.id,))
            else:
                ids.append(task.id)

    def discard(self, task_id: str) -> PendingTask | None:
        return self._tasks.pop(task_id, None)  # stale ids are skipped when they surface

    def pop(self) -> PendingTask | None:
        tasks = self._tasks
        hinted = self._hinted
        while hinted and hinted[0][2] not in tasks:
            heapq.heappop(hinted)
        # The least (estimate, seq) over the hinted heap's head and each key's head.
        best = seq = 0.0
        found = False
        source: deque[str] | None = None
        key_of_source = ""
        if hinted:
            best, seq, _ = hinted[0]
            found = True
        # Estimates.learned(key), inlined: this runs for every key at every pop.
        estimates = self._estimates
        durations = estimates.durations
        default = estimates.default_duration
        overrun = estimates.overrun if self._overrun else None
        emptied: list[str] = []
        for key, ids in self._by_key.items():
            while ids and ids[0] not in tasks:
                ids.popleft()  # discarded while queued
            if not ids:
                emptied.append(key)
                continue
            estimate = durations.get(key, default)
            if overrun:
                running = overrun.get(key)
                if running is not None and running > estimate:
                    estimate = 2.0 * running - estimate
            if not found or estimate < best or (estimate == best and tasks[ids[0]].seq < seq):
                best, seq, source, found = estimate, tasks[ids[0]].seq, ids, True
                key_of_source = key
        for key in emptied:
            del self._by_key[key]
        if not found:
            return None
        if source is None:
            return tasks.pop(heapq.heappop(hinted)[2])
        task_id = source.popleft()
        if not source:  # seqs are unique, so the order of the keys never decides
            del self._by_key[key_of_source]
        return tasks.pop(task_id)


class SjfStrategy(Strategy):
    """Shortest expected duration first, on the least-loaded worker.

    With every slot free at once the choice of worker does not change when a
    task finishes (workers are alike), so the least loaded is the earliest
    expected finish.

    Args:
        overrun: Raise a key's estimate while one of its runs outlasts it.
    """

    name = "sjf"
    settings_read = ("default_duration", "ema_alpha", "sjf_overrun")
    # Its order follows estimates learned while tasks wait, which a prepared
    # hand-off list would not see; the dispatcher fills every slot itself.
    handoff = False
    uses_estimates = True

    def __init__(self, overrun: bool = True) -> None:
        self.overrun = overrun

    def make_queue(self, estimates: Estimates | None = None) -> TaskQueue:
        return EstimateQueue(estimates if estimates is not None else Estimates(), self.overrun)

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
