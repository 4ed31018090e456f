"""A snapshot of the cluster for ``yardmaster status`` (and any other face)."""

from __future__ import annotations

from typing import Any, cast

from scheduler.store import StateStore
from scheduler.store.lifecycle import LifecycleStore


def cluster_status(store: StateStore, window: float = 60.0) -> dict[str, Any]:
    """Workers, slots, pending by priority, counters and recent throughput.

    Args:
        store: The cluster's state store.
        window: Seconds over which throughput is averaged.
    """
    now = store.server_time()
    workers = [
        {
            "name": w.name,
            "slots": w.slots,
            "in_flight": w.inflight,
            "free": max(0, w.slots - w.inflight),
            "heartbeat_age": round(now - w.heartbeat, 3),
            "succeeded": w.succeeded,
            "failed": w.failed,
            "host": w.host,
        }
        for w in store.load_workers()
    ]
    pending = store.pending_counts()
    finished = store.finished_since(now - window)
    leader = cast(str | None, store.redis.get(store.keys.leader))
    return {
        "time": now,
        "dispatcher": {"leader": leader is not None},
        "workers": workers,
        "slots": {
            "total": sum(w["slots"] for w in workers),
            "in_flight": sum(w["in_flight"] for w in workers),
        },
        "pending": {
            "total": sum(pending.values()),
            "by_priority": {str(p): n for p, n in sorted(pending.items(), reverse=True)},
        },
        "counters": store.counters(),
        "retrying": LifecycleStore(store).delayed_count(),
        "breakers": {n: b["state"] for n, b in LifecycleStore(store).breakers().items()},
        "throughput": {
            "window_s": window,
            "finished": finished,
            "per_s": round(finished / window, 3),
        },
    }
