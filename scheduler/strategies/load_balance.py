"""Load balancing with worker affinity.

Tasks run in submission order. Each goes to the worker with the lowest
``load - weight * affinity``: ``load`` is the share of the worker's slots
taken, and ``affinity`` is the score in [0, 1] of the (affinity key, worker)
pair, raised by each success of that key there and lowered by each failure.
So a key's tasks keep returning to the worker where they ran well (and whose
caches are warm), unless that worker is busier by more than the weight says
the affinity is worth. Ties (a key new to every worker) go by rendezvous
hashing of (key, worker), which spreads keys evenly and stably. Weight 0 is
plain least-loaded.

Before that (weight above 0), a keyed task goes to its key's home worker when it has a free
slot (consistent hashing with bounded loads, :mod:`scheduler.strategies.affinity`),
and with ``affinity_wait`` above 0 it waits up to that many seconds after
submission for the home while other tasks take the free slots (delay
scheduling); after the bound it runs wherever the cost above says.
"""

from __future__ import annotations

from collections.abc import Sequence

from scheduler.errors import InvalidInputError
from scheduler.models import Estimates, PendingTask, WorkerView
from scheduler.strategies.affinity import KeyHomes, rendezvous
from scheduler.strategies.base import Snapshot, SortKey, Strategy, SubmissionQueue, TaskQueue
from scheduler.strategies.pool import WorkerKey, by_load, least


class LoadBalanceStrategy(Strategy):
    """Submission order; least load weighted by affinity.

    Args:
        affinity_weight: How many units of load one unit of affinity is worth.
        affinity_wait: Seconds after submission a keyed task may wait for its home worker.
        affinity_balance: ``eps`` of the home load bound (see :class:`KeyHomes`).
        warm_capacity: Keys a worker keeps warm: a task waits for its home only while
            its key is among the last this many sent there.
    """

    name = "load_balance"
    # The worker matters (affinity), so a freed slot must not simply take the
    # next task: the dispatcher places every task itself.
    handoff = False
    settings_read = (
        "affinity_weight",
        "affinity_step",
        "affinity_wait",
        "affinity_balance",
        "warm_capacity",
    )

    def __init__(
        self,
        affinity_weight: float = 1.0,
        affinity_wait: float = 1.0,
        affinity_balance: float = 0.0,
        warm_capacity: int = 4,
    ) -> None:
        if not 0.0 <= affinity_weight <= 100.0:
            raise InvalidInputError("affinity_weight", affinity_weight, "a number from 0 to 100")
        self.affinity_weight = affinity_weight
        self.homes = KeyHomes(affinity_wait, affinity_balance, warm_capacity)

    def observe(self, queue: TaskQueue, snapshot: Snapshot) -> None:
        self.homes.new_round()

    def wake_at(self) -> float | None:
        return self.homes.wake_at()

    def forget(self) -> None:
        self.homes.forget()

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
        key = task.affinity_key
        if key is None:
            return least(workers, by_load)
        if self.affinity_weight > 0.0:  # weight 0: plain least loaded, no home to wait for
            decided, home = self.homes.choose(
                task, key, workers, snapshot.workers, snapshot.now, snapshot.estimates.affinity
            )
            if decided:
                return home
        # min() by (load - weight * affinity, -rendezvous, name), written out: this
        # runs for every free worker at each keyed decision, and the hash that
        # breaks ties is only needed between workers that tie.
        affinity = snapshot.estimates.affinity
        weight = self.affinity_weight
        best: WorkerView | None = None
        least_cost = 0.0
        best_rank = -1  # rendezvous(key, best.name) once asked (a CRC is never negative)
        for w in workers:
            slots = w.slots
            load = w.inflight / slots if slots else 1.0
            cost = load - weight * affinity.get((key, w.name), 0.0)
            if best is None or cost < least_cost:
                best, least_cost, best_rank = w, cost, -1
            elif cost == least_cost:
                if best_rank < 0:
                    best_rank = rendezvous(key, best.name)
                rank = rendezvous(key, w.name)
                if rank > best_rank or (rank == best_rank and w.name < best.name):
                    best, best_rank = w, rank
        if best is not None and self.affinity_weight > 0.0:
            self.homes.sent(key, best.name)
        return best


__all__ = ["LoadBalanceStrategy", "rendezvous"]
