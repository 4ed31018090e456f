"""Home workers for affinity keys, and delay scheduling towards them.

Two parts, shared by ``load_balance`` and ``weighted``:

* **Consistent hashing with bounded loads** (Mirrokni, Thorup and
  Zadimoghaddam, 2018). Each affinity key has a home worker: the first worker
  in the key's order of choice (its rendezvous order, a per-key permutation
  of the workers that is the same every time, led by the workers with the
  best learned affinity score for the key) whose load, the number of keys whose home it is, is below
  ``(1 + balance) * average``. So keys spread evenly (no worker is home to
  more than its share plus ``balance``), and a key keeps its home for as long
  as that worker lives. When the set of live workers changes, every known key
  is placed again in the order the keys were first seen; rendezvous order
  moves only the keys that must move.
* **Delay scheduling** (Zaharia et al., 2010). A keyed task whose home has no
  free slot, and to which one of the last ``capacity`` keys sent there was
  its own (so its key is likely warm there), may be held back while other tasks take the free slots, until
  ``wait`` seconds after its submission; after that it runs anywhere. The
  strategy remembers the earliest such instant (:meth:`KeyHomes.wake_at`) so
  a driver plans again then, even when nothing else happens.

Both drivers call this through :func:`~scheduler.strategies.base.plan` with
their own clock (``Snapshot.now``), so a held task is held identically live
and in the simulator.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from functools import lru_cache

from scheduler.errors import InvalidInputError
from scheduler.models import PendingTask, WorkerView
from scheduler.strategies.pool import WorkerPool

# Keys remembered at most; past it the key seen longest ago is forgotten (its
# next task finds a home again), so a stream of one-off keys cannot grow memory.
MAX_KEYS = 1 << 16


def check_affinity_settings(wait: float, balance: float) -> None:
    """Validate the two settings, naming the field, the value and what is allowed."""
    if not 0.0 <= wait <= 3600.0:
        raise InvalidInputError("affinity_wait", wait, "seconds from 0 to 3600")
    if not 0.0 <= balance <= 10.0:
        raise InvalidInputError("affinity_balance", balance, "a number from 0 to 10")


@lru_cache(maxsize=1 << 16)
def rendezvous(key: str, worker: str) -> int:
    """A stable pseudo-random rank of ``worker`` for ``key`` (rendezvous hashing).

    The same (key, worker) pair always gets the same rank, and the ranks of one
    key over the workers are a uniform random order: that order is the key's
    list of choices, and removing a worker moves only the keys it held.
    """
    return zlib.crc32(f"{key}\0{worker}".encode())


Affinity = Mapping[tuple[str, str], float]


def ring(key: str, names: Sequence[str], affinity: Affinity | None = None) -> list[str]:
    """The workers in ``key``'s order of choice: the highest learned affinity score for
    ``key`` first (where its runs went well, as after a dispatcher restart), then
    rendezvous rank, then name. A key no worker has a score for is in pure
    rendezvous order."""
    if not affinity:
        return sorted(names, key=lambda name: (-rendezvous(key, name), name))
    return sorted(
        names, key=lambda name: (-affinity.get((key, name), 0.0), -rendezvous(key, name), name)
    )


class KeyHomes:
    """Each affinity key's home worker, and the delay scheduling towards it.

    Args:
        wait: Seconds after submission a keyed task may wait for its home (0: never).
        balance: ``eps`` of the load bound: a worker takes a new key only while it is
            home to fewer than ``(1 + eps)`` times the average number of keys.
    """

    __slots__ = (
        "_home",
        "_load",
        "_names",
        "_seen",
        "_sent",
        "_wake",
        "balance",
        "capacity",
        "wait",
    )

    def __init__(self, wait: float = 1.0, balance: float = 0.0, capacity: int = 4) -> None:
        check_affinity_settings(wait, balance)
        self.wait = wait
        self.balance = balance
        self.capacity = capacity
        # worker name -> the keys last sent there (most recent last), at most `capacity`:
        # the keys this dispatcher expects to be warm there
        self._sent: dict[str, dict[str, None]] = {}
        self._home: dict[str, str] = {}  # key -> worker name, in the order keys were first seen
        self._load: dict[str, int] = {}  # worker name -> keys whose home it is
        self._names: tuple[str, ...] = ()  # the live workers the homes were made for
        self._seen: list[WorkerView] | None = None  # the worker list last checked
        self._wake: float | None = None

    def forget(self) -> None:
        """Drop every home (a simulated run starts from nothing, as a new dispatcher does)."""
        self._home.clear()
        self._load.clear()
        self._names = ()
        self._seen = None
        self._wake = None
        self._sent.clear()

    def homes(self) -> dict[str, str]:
        """A copy of the key -> home worker table."""
        return dict(self._home)

    def home(
        self, key: str, workers: list[WorkerView], affinity: Affinity | None = None
    ) -> str | None:
        """The home worker of ``key`` among the live ``workers`` (None when there are none).

        ``affinity`` (learned scores) leads the order of choice of a key placed now.
        """
        if workers is not self._seen:
            self._seen = workers
            names = tuple(sorted(w.name for w in workers))
            if names != self._names:
                self._rebalance(names, affinity)
        if not self._names:
            return None
        home = self._home.get(key)
        if home is None:
            if len(self._home) >= MAX_KEYS:
                old = next(iter(self._home))
                self._load[self._home.pop(old)] -= 1
            home = self._place(key, affinity)
        return home

    def _place(self, key: str, affinity: Affinity | None) -> str:
        """Give ``key`` the first worker in its order that is under the load bound."""
        load = self._load
        names = self._names
        bound = (1.0 + self.balance) * (len(self._home) + 1) / len(names)
        chosen = names[0]
        for name in ring(key, names, affinity):
            if load[name] < bound:
                chosen = name
                break
        # The least loaded worker holds at most the average, below the bound, so the
        # loop always breaks; `chosen` only keeps mypy sure of a value.
        self._home[key] = chosen
        load[chosen] += 1
        return chosen

    def _rebalance(self, names: tuple[str, ...], affinity: Affinity | None) -> None:
        """Place every known key again for a new set of live workers."""
        keys = list(self._home)
        self._names = names
        self._home = {}
        self._load = dict.fromkeys(names, 0)
        if names:
            for key in keys:
                self._place(key, affinity)

    def sent(self, key: str, worker: str) -> None:
        """Note that a task of ``key`` was placed on ``worker`` (its most recent key now)."""
        keys = self._sent.get(worker)
        if keys is None:
            self._sent[worker] = keys = {}
        elif key in keys:
            del keys[key]
        keys[key] = None
        if len(keys) > self.capacity:
            del keys[next(iter(keys))]

    def wake_at(self) -> float | None:
        """The earliest instant a task held back in this round may run anywhere."""
        return self._wake

    def new_round(self) -> None:
        """Forget the previous round's wake-up instant (called as a planning round starts)."""
        self._wake = None

    def choose(
        self,
        task: PendingTask,
        key: str,
        workers: Sequence[WorkerView],
        live: list[WorkerView],
        now: float,
        affinity: Affinity | None = None,
    ) -> tuple[bool, WorkerView | None]:
        """The home worker's part of a keyed decision.

        ``workers`` are those with a free slot the task may go to, ``live`` every
        live worker (``Snapshot.workers``), ``now`` the driver's clock, ``affinity``
        the learned scores (see :meth:`home`).

        Returns:
            ``(True, worker)``: the decision is made (``worker`` is the free home,
            or None to hold the task back for it); ``(False, None)``: no home
            worker applies (none live, it cannot run the task, or the wait is
            over) and the strategy chooses among ``workers`` as it would anyway.
        """
        home = self.home(key, live, affinity)
        if home is None:
            return False, None
        if isinstance(workers, WorkerPool):
            try:
                free = workers.named(home)
            except KeyError:
                pass
            else:
                self.sent(key, home)
                return True, free
        else:
            for w in workers:
                if w.name == home:
                    self.sent(key, home)
                    return True, w
        if self.wait <= 0.0:
            return False, None
        until = task.submitted_at + self.wait
        if now >= until:
            return False, None
        if key not in self._sent.get(home, ()):
            return False, None  # not warm there as far as we know: waiting would not pay
        for w in live:
            if w.name == home:
                if w.names is not None and task.name not in w.names:
                    return False, None  # the home can never run it: do not wait for it
                break
        if self._wake is None or until < self._wake:
            self._wake = until
        return True, None
