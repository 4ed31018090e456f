"""The workers with a free slot, and how a strategy chooses among them.

:func:`~scheduler.strategies.plan` hands a strategy's ``pick_worker`` a
:class:`WorkerPool`: the free workers, also kept sorted by the strategy's
``worker_order`` key, so that "the least worker by that key" (:func:`least`)
is found at once instead of by a look at every free worker per decision.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator, Sequence

from scheduler.models import WorkerView

WorkerKey = Callable[[WorkerView], tuple[float | str, ...]]


def by_load(worker: WorkerView) -> tuple[float | str, ...]:
    """Least loaded first (share of slots taken), ties by name."""
    return (worker.inflight / worker.slots if worker.slots else 1.0, worker.name)


def least(workers: Sequence[WorkerView], key: WorkerKey) -> WorkerView:
    """``min(workers, key=key)``; from the pool's order when ``workers`` is a
    :class:`WorkerPool` kept in the order of ``key``."""
    if type(workers) is WorkerPool and workers.key is key:
        order = workers._order
        if order is not None:  # workers.first(), inlined: this runs at every decision
            return workers._free[order[0][-1]]  # type: ignore[index]
        return workers.first()
    return min(workers, key=key)


def in_load_order(workers: Sequence[WorkerView]) -> list[tuple[float, str]] | None:
    """The free workers' ``by_load`` keys, ``(load, name)`` least first, when
    ``workers`` is a :class:`WorkerPool` that keeps them and has a free worker
    (else None).

    A strategy that weighs something besides the load (affinity) can walk
    these instead of the workers: the load is already computed, the names come
    in order (so the first of equals is the least name), and those with the
    least load come first. Read them, never change them.
    """
    if type(workers) is WorkerPool and workers.key is by_load and workers._free:
        if workers._order is None:
            workers.first()  # makes the order
        return workers._order  # type: ignore[return-value]  # by_load's keys are (load, name)
    return None


def least_loaded(workers: Sequence[WorkerView]) -> WorkerView:
    """The worker with the smallest share of its slots taken; ties by name."""
    return least(workers, by_load)


class WorkerPool(Sequence[WorkerView]):
    """The workers with a free slot: the sequence :meth:`Strategy.pick_worker` chooses from.

    Iterating yields the free workers; :meth:`take` and :meth:`release` keep
    them (and each worker's ``inflight``) current as slots are taken and
    freed. With a key (:meth:`order_by`), a sorted list also keeps them in
    that key's order, so :meth:`first` is the least of them at once: the
    list is made at the first :meth:`first` (a pool nobody asks pays nothing
    for it), and from then on a worker is placed again (binary search)
    whenever one of its slots is taken or freed. A key ends with the
    worker's name, so no two are equal and the order of iteration never
    decides a choice.

    A sorted list, not a heap: the usual change is "take the first worker,
    later put it back", which costs a heap a sift through every level, each
    step a comparison of key tuples, and a sorted list only the binary search
    of the put-back (moving the entries after it is one memmove).

    Args:
        workers: Every worker; those without a free slot are left out.
        key: See :meth:`order_by`.
    """

    __slots__ = ("_free", "_key_of", "_order", "free_slots", "key")

    def __init__(self, workers: Iterable[WorkerView], key: WorkerKey | None = None) -> None:
        self._free = {w.name: w for w in workers if w.inflight < w.slots}
        self.free_slots = sum(w.slots - w.inflight for w in self._free.values())
        self.key: WorkerKey | None = None
        # The free workers' keys, sorted (None until first() needs them).
        self._order: list[tuple[float | str, ...]] | None = None
        self._key_of: dict[str, tuple[float | str, ...]] = {}  # worker name -> its key there
        self.order_by(key)

    def order_by(self, key: WorkerKey | None) -> None:
        """Keep the free workers in the order of ``key`` from now on (None: no order)."""
        if key is self.key:
            return
        self.key = key
        self._order = None
        self._key_of = {}

    def named(self, name: str) -> WorkerView:
        """The free worker called ``name`` (KeyError when it is not free)."""
        return self._free[name]

    def first(self) -> WorkerView:
        """The free worker with the least key (the pool must have a key and a free worker).

        Raises:
            ValueError: When a key does not end with its worker's name.
        """
        order = self._order
        if order is None:
            key = self.key
            assert key is not None
            self._key_of = {name: key(w) for name, w in self._free.items()}
            for name, rank in self._key_of.items():
                if rank[-1] != name:
                    raise ValueError(f"a worker key must end with the worker's name; got {rank!r}")
            self._order = order = sorted(self._key_of.values())
        return self._free[order[0][-1]]  # type: ignore[index]

    def take(self, worker: WorkerView) -> None:
        """One of ``worker``'s slots is now taken (it leaves the pool when it has none left)."""
        name = worker.name
        worker.inflight += 1
        self.free_slots -= 1
        full = worker.inflight >= worker.slots
        if full:
            del self._free[name]
        order = self._order
        if order is None:
            return
        rank = self._key_of.pop(name)
        if order[0] is rank:
            del order[0]
        else:
            del order[bisect_left(order, rank)]
        if not full:
            self._key_of[name] = rank = self.key(worker)  # type: ignore[misc]
            insort(order, rank)

    def release(self, worker: WorkerView) -> None:
        """One of ``worker``'s slots is free again. Call it after any other change to the
        worker (its success counts), so that it is placed by its new key."""
        name = worker.name
        worker.inflight -= 1
        self.free_slots += 1
        self._free[name] = worker
        order = self._order
        if order is None:
            return
        key_of = self._key_of
        old = key_of.get(name)
        if old is not None:
            del order[bisect_left(order, old)]
        key_of[name] = rank = self.key(worker)  # type: ignore[misc]  # set with the order
        insort(order, rank)

    def __len__(self) -> int:
        return len(self._free)

    def __iter__(self) -> Iterator[WorkerView]:
        return iter(self._free.values())

    def __contains__(self, worker: object) -> bool:
        return isinstance(worker, WorkerView) and self._free.get(worker.name) is worker

    def __getitem__(self, index: int) -> WorkerView:  # type: ignore[override]
        return list(self._free.values())[index]
