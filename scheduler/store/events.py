"""The events stream and the counters: what happened, for the monitors and the status views.

Every terminal state appends an entry to ``<ns>:events`` (capped at
``YM_EVENTS_MAXLEN``); ``<ns>:stats`` counts submissions, dispatches, starts
and each terminal state over the cluster's life. :meth:`Events.gauges` reads
what the monitor polls (counters, backlog, EMAs, leader, strategy) in one
pipeline. Nothing here writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from scheduler.store.base import Repository
from scheduler.store.connection import translated


@dataclass(frozen=True, slots=True)
class ClusterRecords:
    """One consistent-enough read of the cluster's gauges (one round trip)."""

    time: float
    counters: dict[str, int]
    pending_by_priority: dict[int, int]
    durations: dict[str, float]
    leader: bool
    active_strategy: str | None
    recent_switches: list[dict[str, Any]]


class Events(Repository):
    """The events stream and the lifetime counters of one namespace."""

    @translated
    def counters(self) -> dict[str, int]:
        """Lifetime counters (submitted, dispatched, started, one per terminal state)."""
        return self._numbers(self._keys.stats, int)

    @translated
    def length(self) -> int:
        """Entries the events stream holds now (fewer than ended, once it was trimmed)."""
        return int(self._client.xlen(self._keys.events))

    @translated
    def finished_since(self, since: float) -> int:
        """How many tasks reached a terminal state since ``since`` (UNIX seconds)."""
        start = f"{int(since * 1000)}-0"
        return len(cast(list[Any], self._client.xrange(self._keys.events, min=start, max="+")))

    @translated
    def read(
        self, *, after: str | None = None, since: float | None = None, count: int = 10_000
    ) -> list[tuple[str, dict[str, str]]]:
        """Terminal-state events, oldest first: those after the id ``after`` (exclusive),
        else those finished at or after ``since`` (UNIX seconds), else all; at most ``count``."""
        if after is not None:
            low = "(" + after
        elif since is not None:
            low = f"{int(since * 1000)}-0"
        else:
            low = "-"
        return cast(
            list[tuple[str, dict[str, str]]],
            self._client.xrange(self._keys.events, min=low, max="+", count=count),
        )

    @translated
    def gauges(self, switches: int = 10) -> ClusterRecords:
        """Counters, backlog, EMAs, leader and strategy, read in one pipeline."""
        k = self._keys
        with self._client.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.hgetall(k.stats)
            pipe.hgetall(k.pending_by_priority)
            pipe.hgetall(k.durations)
            pipe.exists(k.leader)
            pipe.hget(k.strategy, "active")
            pipe.lrange(k.strategy_switches, 0, switches - 1)
            now, stats, pending, ema, leader, active, recent = pipe.execute()
        strategy = None
        if active:
            strategy = str(json.loads(active).get("strategy", "")) or None
        return ClusterRecords(
            time=float(now[0]) + float(now[1]) / 1e6,
            counters={name: int(value) for name, value in stats.items()},
            pending_by_priority={int(p): int(n) for p, n in pending.items() if int(n) > 0},
            durations={name: float(value) for name, value in ema.items()},
            leader=bool(leader),
            active_strategy=strategy,
            recent_switches=[json.loads(text) for text in recent],
        )
