"""Admission: which pending tasks may reach the strategy (the dispatcher's part in
retries and circuit breakers).

Strategies stay pure: they only ever see tasks that may run now. This layer
decides which pending tasks those are:

- **Retries.** A retried task waits in the delayed set until its not-before
  time; :meth:`Admission.step` moves due ones to pending (``promote.lua``,
  which tells the dispatcher through its inbox), so they reach the strategy
  again like any other pending task.
- **Breakers.** The outcome counters per task name are sampled and fed to the
  pure :class:`~scheduler.breaker.Breakers`. While a name's breaker is open,
  its tasks are held here, still pending in Redis (mode ``wait``), or ended as
  failed with reason ``breaker_open`` (mode ``fail``); half-open releases the
  probes; closing releases the rest.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from scheduler.breaker import Breakers, BreakerState, Transition
from scheduler.models import PendingTask
from scheduler.store import Store
from scheduler.strategies import TaskQueue

log = logging.getLogger("yardmaster.dispatcher")

BREAKER_POLL = 0.1
"""Seconds between two samples of the outcome counters."""


class Admission:
    """Retry promotion and circuit breaker gating for one dispatcher.

    Args:
        store: The cluster's state store.
    """

    def __init__(self, store: Store) -> None:
        settings = store.settings
        self.store = store
        self.breakers = Breakers(settings.breaker_policy(), settings.breaker_policies())
        self.enabled = settings.breaker or any(p.enabled for p in self.breakers.overrides.values())
        self.held: dict[str, dict[str, PendingTask]] = {}
        self.next_due = 0.0
        self._next_poll = 0.0

    def resync(self) -> None:
        """Start over as a new leader: due retries are checked at once, breakers restored."""
        self.next_due = 0.0
        self.held = {}
        self.breakers.reset()
        if not self.enabled:
            return
        for name, rec in self.store.breakers.states().items():
            self.breakers.get(name).restore(BreakerState(rec["state"]), float(rec["since"]))

    def admit(self, task: PendingTask) -> bool:
        """Whether ``task`` may join the strategy's queue now; if not, it is held or failed."""
        if not self.enabled:
            return True
        breaker = self.breakers.by_name.get(task.name)
        if breaker is None or breaker.admit():
            return True
        if breaker.state == BreakerState.OPEN and breaker.policy.mode == "fail":
            self._fail(task.id, task.name)
        else:
            self.held.setdefault(task.name, {})[task.id] = task
        return False

    def held_count(self) -> int:
        """How many pending tasks the open breakers hold back here (still pending in Redis)."""
        return sum(len(held) for held in self.held.values())

    def forget(self, task_id: str) -> None:
        """A cancelled task leaves the held tasks too."""
        for held in self.held.values():
            held.pop(task_id, None)

    def note_delayed(self, at: float) -> None:
        """A retry waits until ``at`` (Redis server time)."""
        self.next_due = min(self.next_due, at)

    def wait(self, now: float) -> float:
        """Seconds until the next retry is due (the dispatcher blocks no longer than this)."""
        return max(0.0, self.next_due - now)

    def step(self, now: float, queue: TaskQueue, reclaim: Callable[[], None]) -> None:
        """Promote due retries; sample outcomes and apply breaker transitions to ``queue``."""
        if now >= self.next_due:
            _, nxt = self.store.pending.promote()
            self.next_due = math.inf if nxt is None else nxt
        if not self.enabled or time.monotonic() < self._next_poll:
            return
        self._next_poll = time.monotonic() + BREAKER_POLL
        transitions = self.breakers.observe(now, self.store.breakers.outcome_counts())
        if transitions:
            self._apply(transitions, queue, reclaim)

    # -- internals -------------------------------------------------------------
    def _apply(
        self, transitions: list[Transition], queue: TaskQueue, reclaim: Callable[[], None]
    ) -> None:
        states: dict[str, dict[str, object]] = {}
        for moved in transitions:
            breaker = self.breakers.get(moved.name)
            log.warning("breaker %s: %s -> %s (%s)", moved.name, moved.old, moved.new, moved.reason)
            states[moved.name] = {
                "state": str(moved.new),
                "since": moved.at,
                "reason": moved.reason,
                "mode": breaker.policy.mode,
            }
            held = self.held.setdefault(moved.name, {})
            if moved.new == BreakerState.OPEN:
                reclaim()  # the hand-off list may hold tasks of this name
                for task in [t for t in queue.tasks() if t.name == moved.name]:
                    queue.discard(task.id)
                    held[task.id] = task
                if breaker.policy.mode == "fail":
                    for task_id in list(held):
                        self._fail(task_id, moved.name)
                    held.clear()
            else:  # half-open lets the probes through; closed lets everything through
                for task in sorted(held.values(), key=lambda t: t.seq):
                    if not breaker.admit():
                        break
                    del held[task.id]
                    queue.add(task)
        self.store.breakers.record(states, [t.as_dict() for t in transitions])

    def _fail(self, task_id: str, name: str) -> None:
        self.store.tasks.end(
            task_id,
            "failed",
            f"circuit breaker of {name!r} is open; the task failed fast without running",
            "breaker_open",
        )
