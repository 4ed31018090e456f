"""The strategy interface, and the planning loop both drivers share.

A strategy is pure: given a read-only :class:`Snapshot` it says in which order
pending tasks run (:meth:`Strategy.sort_key`) and where each one goes
(:meth:`Strategy.pick_worker`). It never touches Redis or Celery. The live
dispatcher and the simulator both call :func:`plan`, so the order a strategy
produces is the same under both drivers.

A strategy chooses among the workers with a free slot, which :func:`plan`
hands it as a :class:`WorkerPool`. The pool also keeps those workers in the
order of the strategy's :meth:`Strategy.worker_order` key, so a choice that
is "the least worker by that key" (:func:`least`) is found at once, and
kept current with a binary search per change, not a look at every free
worker per decision. The dispatcher builds a pool per planning round; the
simulator keeps one for the whole run and tells it when slots are taken and
freed.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, ClassVar

from scheduler.models import Decision, Estimates, PendingTask, WorkerView
from scheduler.placement import prefers
from scheduler.strategies.pool import WorkerKey, WorkerPool

SortKey = tuple[float, ...]


@dataclass(slots=True)
class Snapshot:
    """What a strategy may look at when it decides.

    Attributes:
        now: The clock (Redis server time live, simulated time in the simulator).
        workers: Every live worker with its slots and load.
        estimates: Duration estimates and affinity scores.
        served: Task names every live worker registered (a plain task of such a name
            fits any free worker); None when no worker said which names it serves.
    """

    now: float
    workers: list[WorkerView]
    estimates: Estimates = field(default_factory=Estimates)
    served: frozenset[str] | None = None


class TaskQueue(ABC):
    """Pending tasks kept in one strategy's order; owned by the driver."""

    @abstractmethod
    def add(self, task: PendingTask) -> None:
        """Insert a task (a task already present is left as it is)."""

    @abstractmethod
    def discard(self, task_id: str) -> PendingTask | None:
        """Remove a task by id; return it, or None when it was not queued."""

    @abstractmethod
    def pop(self) -> PendingTask | None:
        """Remove and return the task that should run next, or None if empty."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of queued tasks."""

    @abstractmethod
    def __contains__(self, task_id: object) -> bool:
        """Whether a task id is queued."""

    @abstractmethod
    def tasks(self) -> Iterator[PendingTask]:
        """Every queued task, in no particular order."""

    def sample(self, limit: int) -> list[PendingTask]:
        """Up to ``limit`` queued tasks, the longest queued first (a cheap look at the backlog)."""
        return list(islice(self.tasks(), limit))


class IndexedQueue(TaskQueue):
    """A queue whose live tasks are a dict by id; subclasses keep the order.

    Order structures may hold ids of tasks already discarded; they skip them
    when they surface (lazy deletion).
    """

    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: dict[str, PendingTask] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tasks

    def tasks(self) -> Iterator[PendingTask]:
        return iter(list(self._tasks.values()))

    def sample(self, limit: int) -> list[PendingTask]:
        return list(islice(self._tasks.values(), limit))


class LazyHeapQueue(IndexedQueue):
    """An :class:`IndexedQueue` ordered by a binary heap whose entries end with the task id.

    Subclasses say how an entry is made (:meth:`add`); popping and lazy
    deletion are shared. ``pop`` and ``discard`` cost O(log n) amortised: a
    discarded task's entry stays until it surfaces, and the heap is rebuilt
    once stale entries outnumber live ones.

    Ties of a strategy's own key go to the longer remaining path
    (``PendingTask.path``), then by submission. A task outside any workflow
    has path 0, and its entry leaves the path out: ``(..., seq, id)``. A task
    with a path has ``(..., -path, seq, id)``. The two shapes compare
    correctly with each other: where the keys before them are equal,
    ``-path`` (below 0) comes before any ``seq`` (never negative), as the
    longer path should. So a backlog without workflows builds the same
    entries as before, and the order is that of the sort key either way.
    """

    __slots__ = ("_heap",)

    def __init__(self) -> None:
        super().__init__()
        self._heap: list[tuple[Any, ...]] = []

    def discard(self, task_id: str) -> PendingTask | None:
        task = self._tasks.pop(task_id, None)
        if task is not None and len(self._heap) > 64 and len(self._heap) > 2 * len(self._tasks):
            self._heap = [entry for entry in self._heap if entry[-1] in self._tasks]
            heapq.heapify(self._heap)
        return task

    def pop(self) -> PendingTask | None:
        while self._heap:
            task = self._tasks.pop(heapq.heappop(self._heap)[-1], None)
            if task is not None:
                return task
        return None


class HeapQueue(LazyHeapQueue):
    """A binary heap on a fixed sort key, with lazy deletion.

    ``add``, ``pop`` and ``discard`` cost O(log n) amortised, so a decision
    stays cheap with a million tasks pending.
    """

    __slots__ = ("_key",)

    def __init__(self, key: Callable[[PendingTask], SortKey]) -> None:
        super().__init__()
        self._key = key

    def add(self, task: PendingTask) -> None:
        if task.id in self._tasks:
            return
        self._tasks[task.id] = task
        heapq.heappush(self._heap, (self._key(task), task.seq, task.id))


class RankQueue(LazyHeapQueue):
    """The order of a :class:`HeapQueue` on ``(rank(task), -task.path, float(task.seq))``,
    in flat entries.

    For strategies whose sort key is one number, then the longer remaining
    path, then submission order (``priority``, ``weighted``): an entry
    ``(rank, seq, id)`` (``(rank, -path, seq, id)`` on a workflow path) is
    one tuple instead of a tuple holding the key tuple, cheaper to build and
    to compare, and the same order (``seq`` is an integer, exact as a float).
    """

    __slots__ = ("_rank",)

    def __init__(self, rank: Callable[[PendingTask], float]) -> None:
        super().__init__()
        self._rank = rank

    def add(self, task: PendingTask) -> None:
        if task.id in self._tasks:
            return
        self._tasks[task.id] = task
        if task.path:
            heapq.heappush(self._heap, (self._rank(task), -task.path, task.seq, task.id))
        else:
            heapq.heappush(self._heap, (self._rank(task), task.seq, task.id))


class SubmissionQueue(LazyHeapQueue):
    """Submission order (``seq``) alone: a heap of ``(seq, id)`` with lazy deletion.

    The order of a :class:`HeapQueue` on a sort key of ``(seq,)``, without
    calling the key: a task that arrives after the others joins in O(1).
    Sequence numbers never tie, so there is no tie for a longer remaining
    path to break.
    """

    __slots__ = ()

    def add(self, task: PendingTask) -> None:
        if task.id in self._tasks:
            return
        self._tasks[task.id] = task
        heapq.heappush(self._heap, (task.seq, task.id))


class Strategy(ABC):
    """Orders pending tasks and places each on a worker.

    Attributes:
        name: Registry name.
        handoff: True when any free slot is as good as another for this
            strategy, so a finishing worker may take the next task itself
            (the dispatcher's hand-off list).
    """

    name: ClassVar[str]
    handoff: bool = True
    # True when decisions read learned estimates, so drivers keep ``overrun`` current.
    uses_estimates: bool = False
    # The settings this strategy's decisions depend on (its own parameters and the
    # learning settings it reads); those with a search range are what tuning searches.
    settings_read: ClassVar[tuple[str, ...]] = ()

    def make_queue(self, estimates: Estimates | None = None) -> TaskQueue:
        """A queue that pops tasks in this strategy's order.

        Args:
            estimates: The driver's live estimates, for strategies whose order
                follows what is learned while tasks wait (read, never written).
        """
        return HeapQueue(self.sort_key)

    @abstractmethod
    def sort_key(self, task: PendingTask) -> SortKey:
        """Key of a task: smaller runs first. It must not change while the task waits."""

    @abstractmethod
    def pick_worker(
        self, task: PendingTask, workers: Sequence[WorkerView], snapshot: Snapshot
    ) -> WorkerView | None:
        """Choose among ``workers`` (each has a free slot); None holds the task back.

        ``workers`` is a :class:`WorkerPool` under both drivers; a choice that is
        the least worker by :meth:`worker_order` should use :func:`least`.
        """

    def worker_order(self) -> WorkerKey | None:
        """The key by which :meth:`pick_worker` ranks workers when the task does not
        matter, for the pool to keep them in that order (None: no such key).

        It must be one function object each time (a module-level function), so
        :func:`least` can tell that the pool is ordered by the key it is asked for.
        """
        return None

    def observe(self, queue: TaskQueue, snapshot: Snapshot) -> None:
        """Called at the start of every planning round; strategies that review
        the backlog (``adaptive``) do it here. The default does nothing."""
        return None

    def expire_reason(self, task: PendingTask, snapshot: Snapshot) -> str | None:
        """Why ``task`` should end as expired instead of running, or None to run it."""
        return None

    def wake_at(self) -> float | None:
        """The clock at which a task this strategy held back in the last :func:`plan`
        round may be placed even if nothing else changes (delay scheduling's bound), or
        None. A driver plans again by then; the default holds nothing back for time."""
        return None

    def forget(self) -> None:
        """Drop what the strategy learned across rounds (a simulated run calls it first,
        so that a run depends on its workload alone). The default keeps nothing."""
        return None

    def take_switches(self) -> list[Switch]:
        """Strategy changes made since the last call (only ``adaptive`` makes any)."""
        return []


@dataclass(frozen=True, slots=True)
class Switch:
    """One change of the strategy in charge, made by an adaptive strategy.

    Attributes:
        at: The clock at the change.
        old: Name of the strategy it replaced.
        new: Name of the strategy now in charge.
        reason: Why, in words.
    """

    at: float
    old: str
    new: str
    reason: str


# Submission times are taken relative to this instant (2025-01-01 UTC) so that
# a rate times a time keeps its precision in a float.
EPOCH = 1_735_689_600.0


def plan(
    strategy: Strategy,
    queue: TaskQueue,
    snapshot: Snapshot,
    limit: int,
    pool: WorkerPool | None = None,
) -> list[Decision]:
    """Pop up to ``limit`` tasks from ``queue`` and place each on a free slot.

    Without ``pool``, the workers of the snapshot with a free slot are copied
    into a new pool, and the copies are updated as slots are handed out, so
    later choices in the same round see earlier ones (the dispatcher's case).
    A driver that keeps its own pool (the simulator) passes it: its workers
    are then the driver's own, and each decision has already taken its slot.
    Tasks the strategy holds back go back into the queue, and so do tasks that
    fit no free worker now (placement: a task goes only to a worker that
    registered its name, carries its labels and has its resources free; the
    strategy chooses among those). Such a task is skipped, never blocking the
    ones behind it. A task that prefers labels (``prefer``) is placed among the
    fitting workers carrying them when there is one, else among all fitting ones:
    it never waits for them. A task the strategy
    expires (:meth:`Strategy.expire_reason`) becomes a decision with
    ``expire`` set and takes no slot; only tasks that take a slot count
    towards ``limit``.

    Returns:
        Decisions in the order the tasks should start.
    """
    strategy.observe(queue, snapshot)
    if pool is None:
        pool = WorkerPool([w.copy() for w in snapshot.workers if w.inflight < w.slots])
    key = strategy.worker_order()
    if key is not pool.key:
        pool.order_by(key)
    decisions: list[Decision] = []
    held: list[PendingTask] | None = None  # made when a task is first held back
    served = snapshot.served
    while pool.free_slots > 0 and limit > 0:
        task = queue.pop()
        if task is None:
            break
        reason = strategy.expire_reason(task, snapshot)
        if reason is not None:
            decisions.append(Decision(task, "", reason))
            continue
        needs = task.needs
        if needs is None and (served is None or task.name in served):
            worker = strategy.pick_worker(task, pool, snapshot)
        else:
            fit = [w for w in pool if w.can_take(task)]
            if needs is not None and needs.prefer and fit:
                # soft: the strategy chooses among the preferred workers when one is free
                fit = [w for w in fit if prefers(needs, w.labels)] or fit
            worker = strategy.pick_worker(task, fit, snapshot) if fit else None
        if worker is None:
            if held is None:
                held = []
            held.append(task)
            continue
        decisions.append(Decision(task, worker.name))
        limit -= 1
        pool.take(worker)
        if needs is not None:
            worker.hold(needs.resources)
    if held is not None:
        for task in held:
            queue.add(task)
    return decisions
