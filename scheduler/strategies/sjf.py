"""Shortest expected job first.

The estimate of a task is its ``expected_duration`` hint, else the learned EMA
of its duration key (the task name unless one was given), else the configured
default. Learned estimates change while tasks wait, so the queue keeps one
FIFO per duration key and, at each pop, compares the heads by their current
estimate: O(number of keys) per decision, and a change in what is learned
reorders the whole backlog at once. Hinted tasks sit in a heap on their hint.

Ties go to the longer remaining path in a workflow, then by submission.
Tasks on a workflow path wait in a heap per key on ``(-path, seq)`` beside
the key's FIFO, and hinted ones carry ``-path`` in their heap entry; a pop
looks at them only once one has come, so a backlog without workflows pays a
test per pop for them.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence
from typing import Any

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
        # Entries (hint, seq, id), or (hint, -path, seq, id) on a workflow path:
        # the two compare as the sort key says (see LazyHeapQueue).
        self._hinted: list[tuple[Any, ...]] = []
        self._by_key: dict[str, deque[str]] = {}
        # Tasks on a workflow path: per key a heap of (-path, seq, id).
        self._on_paths: dict[str, list[tuple[float, int, str]]] = {}
        self._paths = False  # whether a task on a workflow path has come

    def add(self, task: PendingTask) -> None:
        if task.id in self._tasks:
            return
        self._tasks[task.id] = task
        if task.path:
            self._paths = True
            if task.expected_duration is not None:
                entry = (task.expected_duration, -task.path, task.seq, task.id)
                heapq.heappush(self._hinted, entry)
            else:
                heap = self._on_paths.setdefault(task.duration_key or task.name, [])
                heapq.heappush(heap, (-task.path, task.seq, task.id))
        elif task.expected_duration is not None:
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
        if self._paths:
            return self._pop_with_paths()
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

    def _pop_with_paths(self) -> PendingTask | None:
        """:meth:`pop` once tasks on workflow paths have come: the least ``(estimate,
        -path, seq)`` over the hinted heap's head and each key's head (its path
        heap's, which goes before its FIFO's at the same estimate)."""
        tasks = self._tasks
        hinted = self._hinted
        while hinted and hinted[0][-1] not in tasks:
            heapq.heappop(hinted)
        best: tuple[float, float, int] | None = None
        where = ""  # the key of the best head; "" for the hinted heap
        if hinted:
            head = hinted[0]
            best = (head[0], head[1], head[2]) if len(head) == 4 else (head[0], 0.0, head[1])
        est = self._estimates
        if self._overrun:
            learned = est.learned
        else:

            def learned(key: str) -> float:
                return est.durations.get(key, est.default_duration)

        for key in {*self._by_key, *self._on_paths}:
            heap = self._on_paths.get(key)
            while heap and heap[0][2] not in tasks:
                heapq.heappop(heap)  # discarded while queued
            ids = self._by_key.get(key)
            while ids and ids[0] not in tasks:
                ids.popleft()
            if heap:
                candidate = (learned(key), heap[0][0], heap[0][1])
            elif ids:
                candidate = (learned(key), 0.0, tasks[ids[0]].seq)
            else:
                self._by_key.pop(key, None)
                self._on_paths.pop(key, None)
                continue
            if best is None or candidate < best:  # seqs differ: no two heads tie
                best, where = candidate, key
        if best is None:
            return None
        if not where:
            return tasks.pop(heapq.heappop(hinted)[-1])
        heap = self._on_paths.get(where)
        if heap:
            return tasks.pop(heapq.heappop(heap)[2])
        return tasks.pop(self._by_key[where].popleft())


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
        return (hint, -task.path, float(task.seq))

    def worker_order(self) -> WorkerKey | None:
        return by_load

    def pick_worker(
        self, task: PendingTask, workers: Sequence[WorkerView], snapshot: Snapshot
    ) -> WorkerView | None:
        return least(workers, by_load)
