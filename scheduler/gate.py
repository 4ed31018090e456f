"""Cluster-wide limits the dispatcher enforces around a pure strategy.

Two kinds of limit decide whether a pending task may be dispatched now:

- a **concurrency key** (``concurrency_key="customer-42", max_concurrent=2``)
  caps how many tasks of that key are dispatched or running at once; the
  count is the key's set in Redis, which the claim script also checks;
- a **global rate limit** per task name (tokens per second), a token bucket
  kept by the one leading dispatcher.

:class:`GatedQueue` wraps the strategy's own queues. Tasks are grouped in
*lanes*, one per concurrency key plus one for tasks without a key; the lanes
take turns (round-robin, as Hatchet's ``GROUP_ROUND_ROBIN``), so a flood of
one key gets one turn in each round like every other key, and inside a lane
tasks come in the strategy's order. A lane at its cap, or a task whose name
has no token, is skipped where it stands: it keeps its place and is the
first served when it opens. Without concurrency keys and rate limits there is
one lane and one queue, and the order is exactly the strategy's.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from scheduler.models import PendingTask
from scheduler.strategies import Strategy, TaskQueue


class Gate:
    """What the limits allow now: running counts per concurrency key and token buckets.

    Args:
        burst: Seconds of tokens a bucket may bank (never less than one token).
        clock: A monotonic clock (seconds).
    """

    def __init__(self, burst: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.clock = clock
        self.running: dict[str, int] = {}
        self.rates: dict[str, float] = {}
        self._buckets: dict[str, list[float]] = {}  # name -> [tokens, last refill]

    def set_rates(self, rates: dict[str, float]) -> bool:
        """Replace the rate limits; True if they changed. A new bucket starts empty."""
        if rates == self.rates:
            return False
        self.rates = dict(rates)
        self._buckets = {n: b for n, b in self._buckets.items() if n in rates}
        return True

    def key_open(self, key: str, cap: int) -> bool:
        """Whether one more task of ``key`` may be dispatched under ``cap``."""
        return self.running.get(key, 0) < cap

    def _bucket(self, name: str) -> list[float]:
        rate = self.rates[name]
        now = self.clock()
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = [0.0, now]
        capacity = max(1.0, rate * self.burst)
        bucket[0] = min(capacity, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        return bucket

    def has_token(self, name: str) -> bool:
        """Whether task name ``name`` may start one more task now."""
        return name not in self.rates or self._bucket(name)[0] >= 1.0

    def next_token_in(self, names: Iterator[str]) -> float | None:
        """Seconds until one of ``names`` (rate limited) gets a token; None if none is limited."""
        waits = []
        for name in names:
            if name in self.rates:
                tokens = self._bucket(name)[0]
                waits.append(max(0.0, (1.0 - tokens) / self.rates[name]))
        return min(waits, default=None)

    def charge(self, task: PendingTask) -> None:
        """Count ``task`` as dispatched: one slot of its key, one token of its name."""
        if task.concurrency_key is not None:
            key = task.concurrency_key
            self.running[key] = self.running.get(key, 0) + 1
        if task.name in self.rates:
            self._bucket(task.name)[0] -= 1.0

    def refund(self, task: PendingTask) -> None:
        """Undo :meth:`charge` for a task that was not dispatched after all."""
        if task.concurrency_key is not None:
            key = task.concurrency_key
            self.running[key] = max(0, self.running.get(key, 0) - 1)
        if task.name in self.rates and task.name in self._buckets:
            self._buckets[task.name][0] += 1.0


@dataclass(slots=True)
class _Lane:
    cap: int | None
    subs: dict[str, TaskQueue] = field(default_factory=dict)


class GatedQueue(TaskQueue):
    """The strategy's order within lanes, lanes in turn, limits applied at :meth:`pop`.

    Args:
        strategy: Gives the order between a lane's inner queues.
        make_queue: Builds one inner queue (the strategy's ``make_queue``).
        gate: The limits.
    """

    def __init__(self, strategy: Strategy, make_queue: Callable[[], TaskQueue], gate: Gate) -> None:
        self.strategy = strategy
        self.gate = gate
        self._make = make_queue
        self._plain = make_queue()  # tasks under no limit: the lane without a key
        # The rotation, next turn first; the plain lane is always in it.
        self._lanes: OrderedDict[str, _Lane] = OrderedDict({"": _Lane(None, {"": self._plain})})
        self._place: dict[str, tuple[str, str]] = {}  # limited tasks only: (lane, name)
        self._charged: dict[str, PendingTask] = {}

    # -- TaskQueue -------------------------------------------------------------
    def add(self, task: PendingTask) -> None:
        charged = self._charged.pop(task.id, None)
        if charged is not None:
            self.gate.refund(charged)
        lane_key = task.concurrency_key or ""
        sub_key = task.name if task.name in self.gate.rates else ""
        if not lane_key and not sub_key:
            self._plain.add(task)
            return
        if task.id in self._place:
            return
        lane = self._lanes.get(lane_key)
        if lane is None:
            lane = self._lanes[lane_key] = _Lane(task.max_concurrent)
        elif task.max_concurrent is not None:
            lane.cap = min(lane.cap or task.max_concurrent, task.max_concurrent)
        sub = lane.subs.get(sub_key)
        if sub is None:
            sub = lane.subs[sub_key] = self._make()
        sub.add(task)
        self._place[task.id] = (lane_key, sub_key)

    def discard(self, task_id: str) -> PendingTask | None:
        place = self._place.pop(task_id, None)
        if place is None:
            return self._plain.discard(task_id)
        return self._lanes[place[0]].subs[place[1]].discard(task_id)

    def pop(self) -> PendingTask | None:
        """The next task the limits allow: the first open lane's best open task."""
        for lane_key in list(self._lanes):
            lane = self._lanes[lane_key]
            if lane_key and lane.cap is not None and not self.gate.key_open(lane_key, lane.cap):
                continue
            task = self._pop_lane(lane)
            if task is None:
                if lane_key and not any(len(q) for q in lane.subs.values()):
                    del self._lanes[lane_key]
                continue
            self._lanes.move_to_end(lane_key)  # its turn is used: to the back of the rotation
            self._place.pop(task.id, None)
            self.gate.charge(task)
            self._charged[task.id] = task
            return task
        return None

    def __len__(self) -> int:
        return sum(len(q) for lane in self._lanes.values() for q in lane.subs.values())

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._place or task_id in self._plain

    def tasks(self) -> Iterator[PendingTask]:
        for lane in list(self._lanes.values()):
            for sub in list(lane.subs.values()):
                yield from sub.tasks()

    # -- for the dispatcher ----------------------------------------------------
    def plain(self) -> TaskQueue | None:
        """The one inner queue when no waiting task is under a limit, else None.

        The dispatcher then plans on it directly: the strategy sees its own
        queue (the adaptive strategy reviews it), and the order is exactly its own.
        """
        return None if self._place else self._plain

    def settle(self) -> None:
        """The tasks popped so far were dispatched (or expired): their charges stand."""
        self._charged.clear()

    def keys(self) -> list[str]:
        """The concurrency keys with waiting tasks."""
        return [key for key in self._lanes if key]

    def limited_names(self) -> Iterator[str]:
        """Rate-limited task names with waiting tasks."""
        for lane in self._lanes.values():
            for name, sub in lane.subs.items():
                if name and len(sub):
                    yield name

    def regroup(self) -> None:
        """Place every task again (after the rate limits changed)."""
        tasks = list(self.tasks())
        self._plain = self._make()
        self._lanes = OrderedDict({"": _Lane(None, {"": self._plain})})
        self._place.clear()
        for task in tasks:
            self.add(task)

    # -- internals -------------------------------------------------------------
    def _pop_lane(self, lane: _Lane) -> PendingTask | None:
        open_subs = [
            q for name, q in lane.subs.items() if len(q) and (not name or self.gate.has_token(name))
        ]
        if not open_subs:
            return None
        if len(open_subs) == 1:
            return open_subs[0].pop()
        heads = [(q, q.pop()) for q in open_subs]
        _, best = min(
            ((q, t) for q, t in heads if t is not None),
            key=lambda qt: self.strategy.sort_key(qt[1]),
        )
        for q, t in heads:
            if t is not None and t is not best:
                q.add(t)
        return best
