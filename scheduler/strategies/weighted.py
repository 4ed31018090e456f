"""A weighted objective over priority, waiting, expected duration, deadline slack and affinity.

A task's score is ``priority * p + wait * waited + duration * d / (d + e) +
slack * u``, where ``p`` is its priority level, ``waited`` the seconds it has
waited, ``e`` its expected duration (hint, else learned), ``d`` the default
duration and ``u`` the share of its time to deadline it needs, ``e /
(deadline - submitted)`` clipped to [0, 1] (0 without a deadline). The
highest score runs first. Every task waits at the same rate, so the waiting
term only depends on the submission time and the order is fixed when a task
arrives (a heap keeps it; ``e`` is read then). The worker is the one where
``affinity * score(key, worker)`` is highest, then the least loaded; before
that, with ``affinity`` above 0, a keyed task goes to its key's home worker
when it is free and may wait ``affinity_wait`` seconds for it (consistent
hashing with bounded loads and delay scheduling,
:mod:`scheduler.strategies.affinity`).

Every term but waiting is bounded, which gives the promise the weights are
validated for (:class:`~scheduler.settings.Weights`): a task of higher
priority is never overtaken by a lower one submitted more than
``(duration + slack + affinity - priority) / wait`` seconds after it, and with
``wait = 0`` the weights must make one priority level outweigh every other
term, so that no weight set lets low priority overtake high forever.
"""

from __future__ import annotations

from collections.abc import Sequence

from scheduler.models import Estimates, PendingTask, WorkerView
from scheduler.settings import Weights
from scheduler.strategies.affinity import KeyHomes
from scheduler.strategies.base import EPOCH, RankQueue, Snapshot, SortKey, Strategy, TaskQueue
from scheduler.strategies.pool import WorkerKey, by_load, least


class WeightedStrategy(Strategy):
    """Highest weighted score first; the worker with the best affinity.

    Args:
        weights: Validated weights.
        default_duration: ``d`` in the duration term (seconds).
        affinity_wait: Seconds after submission a keyed task may wait for its home worker.
        affinity_balance: ``eps`` of the home load bound (see :class:`KeyHomes`).
        warm_capacity: Keys a worker keeps warm: a task waits for its home only while
            its key is among the last this many sent there.
    """

    name = "weighted"
    handoff = False
    uses_estimates = True
    settings_read = (
        "weights",
        "default_duration",
        "ema_alpha",
        "affinity_step",
        "affinity_wait",
        "affinity_balance",
        "warm_capacity",
    )

    def __init__(
        self,
        weights: Weights | None = None,
        default_duration: float = 1.0,
        affinity_wait: float = 1.0,
        affinity_balance: float = 0.0,
        warm_capacity: int = 4,
    ) -> None:
        self.weights = weights if weights is not None else Weights()
        self.default_duration = default_duration
        self._estimates = Estimates(default_duration=default_duration)
        self.homes = KeyHomes(affinity_wait, affinity_balance, warm_capacity)

    def observe(self, queue: TaskQueue, snapshot: Snapshot) -> None:
        self.homes.new_round()

    def wake_at(self) -> float | None:
        return self.homes.wake_at()

    def forget(self) -> None:
        self.homes.forget()

    def make_queue(self, estimates: Estimates | None = None) -> TaskQueue:
        if estimates is not None:
            self._estimates = estimates
        return RankQueue(self.rank)  # the order of sort_key

    def score(self, task: PendingTask, waited: float = 0.0) -> float:
        """The objective of ``task`` after ``waited`` seconds (affinity excluded)."""
        w = self.weights
        # Estimates.duration(task) and min(), spelled out: this runs once per task.
        hint = task.expected_duration
        if hint is not None:
            expected = hint
        else:
            expected = self._estimates.learned(task.duration_key or task.name)
        d = self.default_duration
        urgency = 0.0
        if task.deadline is not None:
            window = task.deadline - task.submitted_at
            if window <= 0:
                urgency = 1.0
            else:
                share = expected / window
                urgency = share if share < 1.0 else 1.0
        return (
            w.priority * task.priority
            + w.wait * waited
            + w.duration * d / (d + expected)
            + w.slack * urgency
        )

    def rank(self, task: PendingTask) -> float:
        """The first part of the sort key (smaller runs first); ties go to the longer remaining
        path, then by submission."""
        # score at a common clock T is score(waited=0) + wait * (T - submitted_at);
        # T is the same for every task, so it drops out of the comparison.
        static = self.score(task) - self.weights.wait * (task.submitted_at - EPOCH)
        return -static

    def sort_key(self, task: PendingTask) -> SortKey:
        return (self.rank(task), -task.path, float(task.seq))

    def worker_order(self) -> WorkerKey | None:
        return by_load

    def pick_worker(
        self, task: PendingTask, workers: Sequence[WorkerView], snapshot: Snapshot
    ) -> WorkerView | None:
        weight = self.weights.affinity
        if task.affinity_key is None or weight == 0.0:
            return least(workers, by_load)  # the affinity term is the same everywhere
        key = task.affinity_key
        decided, home = self.homes.choose(
            task, key, workers, snapshot.workers, snapshot.now, snapshot.estimates.affinity
        )
        if decided:
            return home
        # min() by (-weight * affinity, load, name), written out: it runs for every
        # free worker at each keyed decision.
        affinity = snapshot.estimates.affinity
        best: WorkerView | None = None
        best_gain = best_load = 0.0
        for w in workers:
            gain = -weight * affinity.get((key, w.name), 0.0)
            if best is not None and gain > best_gain:
                continue
            slots = w.slots
            load = w.inflight / slots if slots else 1.0
            if (
                best is None
                or gain < best_gain
                or load < best_load
                or (load == best_load and w.name < best.name)
            ):
                best, best_gain, best_load = w, gain, load
        if best is not None:
            self.homes.sent(key, best.name)
        return best
