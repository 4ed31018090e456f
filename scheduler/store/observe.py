"""Read-only views of yardmaster's records for the monitors.

Everything the monitors need comes from what the dispatcher and the worker
hooks already write: the terminal-state events stream, the counters, the
pending index, the worker registry, the EMAs and the strategy keys. Nothing
here writes, and every read is batched in one pipeline per call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.exceptions import ResponseError

from scheduler.store.state import StateStore


@dataclass(frozen=True, slots=True)
class RunningTask:
    """A task a worker has started and not finished."""

    id: str
    name: str
    worker: str
    started_at: float
    duration_key: str
    expected_duration: float | None


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


def read_records(store: StateStore, switches: int = 10) -> ClusterRecords:
    """Counters, backlog, EMAs, leader and strategy, read in one pipeline."""
    k = store.keys
    with store.redis.pipeline(transaction=False) as pipe:
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


def read_events(
    store: StateStore, *, after: str | None = None, since: float | None = None, count: int = 10_000
) -> list[tuple[str, dict[str, str]]]:
    """Terminal-state events, oldest first: those after the id ``after`` (exclusive),
    else those finished at or after ``since`` (UNIX seconds), else all; at most ``count``."""
    if after is not None:
        low = "(" + after
    elif since is not None:
        low = f"{int(since * 1000)}-0"
    else:
        low = "-"
    rows = cast(
        list[tuple[str, dict[str, str]]],
        store.redis.xrange(store.keys.events, min=low, max="+", count=count),
    )
    return rows


def running_tasks(store: StateStore, workers: Sequence[str]) -> list[RunningTask]:
    """Every task in the ``running`` state on ``workers``, with when it started."""
    with store.redis.pipeline(transaction=False) as pipe:
        for name in workers:
            pipe.smembers(store.keys.worker_tasks(name))
        ids = [task_id for members in pipe.execute() for task_id in sorted(members)]
    if not ids:
        return []
    fields = ["state", "name", "worker", "started_at", "duration_key", "expected_duration"]
    with store.redis.pipeline(transaction=False) as pipe:
        for task_id in ids:
            pipe.hmget(store.keys.task(task_id), fields)
        rows = pipe.execute()
    return [
        RunningTask(
            id=task_id,
            name=row[1] or "",
            worker=row[2] or "",
            started_at=float(row[3]),
            duration_key=row[4] or row[1] or "",
            expected_duration=float(row[5]) if row[5] else None,
        )
        for task_id, row in zip(ids, rows, strict=True)
        if row[0] == "running" and row[3]
    ]


def read_memory(store: StateStore) -> dict[str, Any] | None:
    """Redis's memory: ``used_bytes``, ``max_bytes`` (0: no ``maxmemory`` limit) and
    ``ratio`` (used / max; None without a limit), from ``INFO memory``; None where the
    server refuses ``INFO`` (an ACL user without it), so that the rest is still read."""
    try:
        info = store.redis.info("memory")
    except ResponseError:
        return None
    used = int(info.get("used_memory", 0))
    limit = int(info.get("maxmemory", 0))
    return {"used_bytes": used, "max_bytes": limit, "ratio": used / limit if limit else None}
