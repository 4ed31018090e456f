"""The monitor's recent past in memory: a bounded ring of points taken from its snapshots.

The dashboard's charts draw from it. A point keeps only what the charts show
(throughput, wait p50/p95 by priority, backlog, slot utilization, health
score, Redis memory), not the whole snapshot: a snapshot carries every task
name's latencies and can take tens of kilobytes, so an hour of them would
cost the monitor far more memory than the charts need. The JSON Lines
history file (:mod:`.history`) is the long-term record; this ring is gone
when the monitor stops.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from scheduler.monitor.snapshot import Snapshot

POINTS = 3600  # an hour at the default poll interval (YM_MONITOR_INTERVAL, 1 s)
PRIORITIES = tuple(str(p) for p in range(10))


@dataclass(frozen=True, slots=True)
class Point:
    """One poll's figures (time is Redis server time, UNIX seconds)."""

    time: float
    throughput_1s: float
    throughput_1m: float
    backlog: int
    utilization: float
    health: float
    wait_p50: dict[str, float | None]
    wait_p95: dict[str, float | None]
    redis_memory_ratio: float | None

    @classmethod
    def of(cls, snap: Snapshot) -> Point:
        """The figures of one monitor snapshot."""
        by_priority = snap.latency.wait.by_priority
        return cls(
            time=snap.time,
            throughput_1s=snap.throughput.total["1s"],
            throughput_1m=snap.throughput.total["1m"],
            backlog=snap.backlog.total,
            utilization=snap.slots.utilization,
            health=snap.health.score,
            wait_p50={p: s.p50 for p, s in by_priority.items()},
            wait_p95={p: s.p95 for p, s in by_priority.items()},
            redis_memory_ratio=None if snap.redis is None else snap.redis.ratio,
        )


class Series:
    """The last ``points`` points, oldest first; safe to add to and read from two threads.

    Args:
        points: How many points are kept (the oldest is dropped first).
    """

    def __init__(self, points: int = POINTS) -> None:
        self._points: deque[Point] = deque(maxlen=points)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._points)

    def add(self, snap: Snapshot) -> None:
        """Keep the figures of ``snap``."""
        point = Point.of(snap)
        with self._lock:
            self._points.append(point)

    def columns(self, since: float | None = None) -> dict[str, Any]:
        """Points after ``since`` (all when None) as columns, the shape chart libraries
        take: ``time`` and one list per figure, with ``wait_p50`` and ``wait_p95``
        one list per priority seen in those points (null where a point has none)."""
        with self._lock:
            points = [p for p in self._points if since is None or p.time > since]
        seen = sorted(
            {q for p in points for q in p.wait_p95} & set(PRIORITIES), key=int, reverse=True
        )
        return {
            "time": [p.time for p in points],
            "throughput_1s": [p.throughput_1s for p in points],
            "throughput_1m": [p.throughput_1m for p in points],
            "backlog": [p.backlog for p in points],
            "utilization": [p.utilization for p in points],
            "health": [p.health for p in points],
            "redis_memory_ratio": [p.redis_memory_ratio for p in points],
            "wait_p50": {q: [p.wait_p50.get(q) for p in points] for q in seen},
            "wait_p95": {q: [p.wait_p95.get(q) for p in points] for q in seen},
        }
