"""The ``adaptive`` strategy: it picks, from the live backlog, which strategy is in charge.

Two modes (setting ``adaptive_mode``):

``rules``
    The fixed baseline: deadlines in the backlog -> ``edf``; a backlog over
    50 -> ``sjf``; a priority spread over 5 -> ``priority``; else
    ``load_balance``.

``simulate`` (the default)
    Every ``adaptive_interval`` seconds, and at once when the backlog more than
    doubles, it replays the most recent arrivals (up to 300 tasks, at their
    real submission times, each with its current duration estimate as its run
    time) through the simulator under each candidate strategy on the live
    workers, and puts the best one for the objective (``adaptive_objective``;
    by default fewest deadline misses, then lowest mean flow) in charge: the
    strategy that would have done best on the work just seen. It changes only
    for a clear gain (``adaptive_miss_margin`` fewer misses, or a mean flow
    ``adaptive_flow_margin`` lower; 10 % each by default), so noise does not
    make it flap.

A change re-orders every pending task at once (the queue is rebuilt under the
new strategy). Each change is a :class:`~scheduler.strategies.Switch`: the
simulator and the dispatcher log and count them.

This module sits above both the strategies and the simulator (DESIGN.md's
layers); :func:`build_strategy` builds any strategy by name, this one included.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterator, Sequence

from scheduler.errors import InvalidInputError
from scheduler.models import Estimates, PendingTask, WorkerView
from scheduler.settings import STRATEGY_NAMES, Settings
from scheduler.simulator.engine import Outcome, Simulator
from scheduler.strategies import (
    Snapshot,
    SortKey,
    Strategy,
    Switch,
    TaskQueue,
    WorkerKey,
    create_strategy,
)
from scheduler.workload import WorkloadTask

log = logging.getLogger("yardmaster.adaptive")

CANDIDATES: tuple[str, ...] = ("edf", "sjf", "priority", "load_balance", "fifo")
# Replays start with cold workers and no affinity learned, so they cannot tell
# what affinity placement earns over time: load_balance is left to the rules.
REPLAYED: tuple[str, ...] = ("edf", "sjf", "priority", "fifo", "load_balance")
RULES_BACKLOG = 50
RULES_SPREAD = 5
MIN_EVIDENCE = 100  # recent arrivals needed before replays decide; the rules decide before


class AdaptiveQueue(TaskQueue):
    """The pending tasks, kept in the order of whichever strategy is in charge."""

    def __init__(
        self, strategy: Strategy, estimates: Estimates, recent: deque[PendingTask] | None = None
    ) -> None:
        self.estimates = estimates
        self.inner = strategy.make_queue(estimates)
        self.pop = self.inner.pop  # type: ignore[method-assign]  # see switch()
        self.recent = recent if recent is not None else deque(maxlen=300)

    def switch(self, strategy: Strategy) -> None:
        """Re-order every queued task under ``strategy``."""
        tasks = list(self.inner.tasks())
        self.inner = strategy.make_queue(self.estimates)
        for task in tasks:
            self.inner.add(task)
        # Pops go straight to the inner queue, without a call through this one.
        self.pop = self.inner.pop  # type: ignore[method-assign]

    def add(self, task: PendingTask) -> None:
        recent = self.recent
        if (not recent or task.seq > recent[-1].seq) and task.id not in self.inner:
            recent.append(task)  # a new arrival (tasks put back are not)
        self.inner.add(task)

    def discard(self, task_id: str) -> PendingTask | None:
        return self.inner.discard(task_id)

    def pop(self) -> PendingTask | None:
        return self.inner.pop()

    def __len__(self) -> int:
        return len(self.inner)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.inner

    def tasks(self) -> Iterator[PendingTask]:
        return self.inner.tasks()

    def sample(self, limit: int) -> list[PendingTask]:
        return self.inner.sample(limit)


class AdaptiveStrategy(Strategy):
    """Puts the best strategy for the current backlog in charge.

    Args:
        settings: Supplies the candidates' parameters and the adaptive settings.
        sample: Most backlog tasks a review simulates.
    """

    name = "adaptive"
    handoff = False
    uses_estimates = True
    settings_read = (
        "adaptive_mode",
        "adaptive_interval",
        "adaptive_objective",
        "adaptive_flow_margin",
        "adaptive_miss_margin",
        "ema_alpha",
    )

    def __init__(self, settings: Settings, sample: int = 300) -> None:
        self.settings = settings
        self.mode = settings.adaptive_mode
        self.interval = settings.adaptive_interval
        self.objective = settings.adaptive_objective
        # A new strategy takes over only if it cuts the mean flow by this share...
        self.flow_margin = settings.adaptive_flow_margin
        # ...or deadline misses by this share (and at least one).
        self.miss_margin = settings.adaptive_miss_margin
        self.sample_size = sample
        self.candidates = {name: create_strategy(name, settings) for name in CANDIDATES}
        self.current: Strategy = self.candidates["load_balance"]
        self._delegate()
        self.recent: deque[PendingTask] = deque(maxlen=sample)
        self.switches: list[Switch] = []
        self._unreported: list[Switch] = []
        self._next_review = -math.inf
        self._reviewed_backlog = 0

    # -- the strategy interface: the one in charge decides ----------------------
    def make_queue(self, estimates: Estimates | None = None) -> TaskQueue:
        est = estimates if estimates is not None else Estimates()
        return AdaptiveQueue(self.current, est, self.recent)

    def sort_key(self, task: PendingTask) -> SortKey:
        return self.current.sort_key(task)

    def pick_worker(
        self, task: PendingTask, workers: Sequence[WorkerView], snapshot: Snapshot
    ) -> WorkerView | None:
        return self.current.pick_worker(task, workers, snapshot)

    def expire_reason(self, task: PendingTask, snapshot: Snapshot) -> str | None:
        return self.current.expire_reason(task, snapshot)

    def worker_order(self) -> WorkerKey | None:
        return self.current.worker_order()

    def _delegate(self) -> None:
        """Let the strategy in charge answer the per-decision calls itself: its bound
        methods shadow this object's, which saves a call per decision. The methods
        above stay as the interface; one a subclass overrides is not shadowed."""
        for name in ("sort_key", "pick_worker", "expire_reason", "worker_order"):
            if getattr(type(self), name) is getattr(AdaptiveStrategy, name):
                setattr(self, name, getattr(self.current, name))

    def take_switches(self) -> list[Switch]:
        out, self._unreported = self._unreported, []
        return out

    def wake_at(self) -> float | None:
        return self.current.wake_at()

    def forget(self) -> None:
        for strategy in self.candidates.values():
            strategy.forget()

    # -- reviews ---------------------------------------------------------------
    def observe(self, queue: TaskQueue, snapshot: Snapshot) -> None:
        self.current.observe(queue, snapshot)  # a new round for the one in charge too
        if not isinstance(queue, AdaptiveQueue):
            return
        backlog = len(queue.inner)
        surge = backlog > 2 * self._reviewed_backlog + 20
        if snapshot.now < self._next_review and not surge:
            return
        if _room_for(backlog, snapshot.workers):
            return  # every task gets a slot now; the order cannot matter
        self._next_review = snapshot.now + self.interval
        self._reviewed_backlog = backlog
        if self.mode == "rules":
            choice, reason = self.by_rules(queue.sample(self.sample_size), backlog)
        elif len(queue.recent) < MIN_EVIDENCE:
            choice, reason = self.by_prior(list(queue.recent))
        else:
            choice, reason = self.by_simulation(list(queue.recent), snapshot)
        if choice != self.current.name:
            switch = Switch(snapshot.now, self.current.name, choice, reason)
            self.current = self.candidates[choice]
            self._delegate()
            queue.switch(self.current)
            self.switches.append(switch)
            self._unreported.append(switch)
            log.info("adaptive: %s -> %s (%s)", switch.old, switch.new, reason)

    @staticmethod
    def by_rules(tasks: Sequence[PendingTask], backlog: int) -> tuple[str, str]:
        """The baseline rules, in order."""
        if any(t.deadline is not None for t in tasks):
            return "edf", "deadlines in the backlog"
        if backlog > RULES_BACKLOG:
            return "sjf", f"backlog {backlog} > {RULES_BACKLOG}"
        priorities = [t.priority for t in tasks]
        if priorities and max(priorities) - min(priorities) > RULES_SPREAD:
            return (
                "priority",
                f"priority spread {max(priorities) - min(priorities)} > {RULES_SPREAD}",
            )
        return "load_balance", "no deadlines, small backlog, narrow priorities"

    @staticmethod
    def by_prior(tasks: Sequence[PendingTask]) -> tuple[str, str]:
        """Before there is enough to replay: the optimum of the textbook cases.

        With deadlines, the nearest deadline first (it meets every deadline any
        order can on one worker); without, the shortest first (it minimises the
        mean flow).
        """
        if any(t.deadline is not None for t in tasks):
            return "edf", "deadlines in the backlog (too few arrivals yet to replay)"
        if tasks and 2 * sum(t.affinity_key is not None for t in tasks) > len(tasks):
            # warm runs on the keys' home workers (load_balance's delay scheduling)
            # save more than any order; replays cannot see it this early
            return "load_balance", "most tasks keyed (too few arrivals yet to replay)"
        return "sjf", "no deadlines (too few arrivals yet to replay)"

    def by_simulation(self, tasks: Sequence[PendingTask], snapshot: Snapshot) -> tuple[str, str]:
        """Replay ``tasks`` (recent arrivals, at their submission times) under each
        candidate; the best for the objective."""
        if not tasks:
            return self.current.name, "nothing to replay"
        origin = min(t.submitted_at for t in tasks)
        learned = snapshot.estimates.durations
        default = snapshot.estimates.default_duration

        def expected(t: PendingTask) -> float:
            # The learned average, not the overrun-raised estimate of runs in flight.
            if t.expected_duration is not None:
                return t.expected_duration
            return learned.get(t.estimate_key, default)

        workload = [
            WorkloadTask(
                id=t.id,
                name=t.name,
                submit_at=t.submitted_at - origin,
                duration=expected(t),
                priority=t.priority,
                deadline=None if t.deadline is None else max(0.0, t.deadline - origin),
                expected_duration=expected(t),
                affinity_key=t.affinity_key,
                depends_on=(),
                fails=False,
            )
            for t in tasks
        ]
        workers = max(1, len(snapshot.workers))
        slots = max(1, round(sum(w.slots for w in snapshot.workers) / workers))
        scores: dict[str, tuple[float, ...]] = {}
        for name in REPLAYED:
            sim = Simulator.from_settings(
                create_strategy(name, self.settings), self.settings, workers=workers, slots=slots
            )
            scores[name] = self._score(sim.simulate(workload))
        if self.current.name not in scores:
            best = min(REPLAYED, key=lambda n: scores[n])
            return best, f"{self.objective}: {_fmt(scores[best])}, best of the replays"
        current = scores[self.current.name]
        best = min(REPLAYED, key=lambda n: (scores[n], n != self.current.name))
        if not self._clearly_better(scores[best], current):
            return self.current.name, "no clear gain"
        return best, f"{self.objective}: {_fmt(scores[best])} against {_fmt(current)}"

    def _score(self, outcome: Outcome) -> tuple[float, ...]:
        misses = 0
        flow = 0.0
        lateness = -math.inf
        for task, finish in zip(outcome.tasks, outcome.finish, strict=True):
            if finish is None:  # expired by policy
                misses += 1
                continue
            flow += finish - task.submit_at
            if task.deadline is not None:
                late = finish - task.deadline
                lateness = max(lateness, late)
                if late > 1e-9:
                    misses += 1
        mean_flow = flow / max(1, len(outcome.tasks))
        if self.objective == "mean_flow":
            return (mean_flow,)
        if self.objective == "max_lateness":
            return (lateness if lateness > -math.inf else 0.0, mean_flow)
        return (float(misses), mean_flow)

    def _clearly_better(self, new: tuple[float, ...], old: tuple[float, ...]) -> bool:
        if self.objective == "misses_then_flow" and new[0] != old[0]:
            return new[0] <= old[0] - max(1.0, self.miss_margin * old[0])
        if new[:-1] != old[:-1]:
            return new[:-1] < old[:-1]
        return new[-1] < (1.0 - self.flow_margin) * old[-1]


def _room_for(backlog: int, workers: Sequence[WorkerView]) -> bool:
    """Whether the workers' free slots add up to ``backlog`` (counting stops once they do)."""
    free = 0
    for worker in workers:
        if free >= backlog:
            return True
        room = worker.slots - worker.inflight  # worker.free, inlined: once per round
        if room > 0:
            free += room
    return free >= backlog


def _fmt(score: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{x:.3g}" for x in score) + ")"


def build_strategy(name: str, settings: Settings) -> Strategy:
    """Build any strategy by name, ``adaptive`` included, with its parameters from ``settings``.

    Raises:
        InvalidInputError: When ``name`` is not a known strategy.
    """
    if name == "adaptive":
        return AdaptiveStrategy(settings)
    if name not in STRATEGY_NAMES:
        raise InvalidInputError("strategy", name, "one of: " + ", ".join(STRATEGY_NAMES))
    return create_strategy(name, settings)
