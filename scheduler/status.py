"""A snapshot of the cluster for ``yardmaster status`` (and any other face)."""

from __future__ import annotations

from typing import Any

from scheduler.store import Store
from scheduler.workflow_client import live_workflows


def cluster_status(store: Store, window: float = 60.0) -> dict[str, Any]:
    """Workers, slots, pending by priority, waiting tasks, live workflows with their
    progress, counters and recent throughput.

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
            "free": w.free,
            "heartbeat_age": round(w.heartbeat_age(now), 3),
            "succeeded": w.succeeded,
            "failed": w.failed,
            "host": w.host,
            "resources": w.resources,
            "labels": w.labels,
            "queues": list(w.queues),
            "task_names": None if w.task_names is None else sorted(w.task_names),
        }
        for w in store.workers.load()
    ]
    pending = store.pending.counts()
    finished = store.events.finished_since(now - window)
    return {
        "time": now,
        "dispatcher": {"leader": store.leases.leader() is not None},
        "workers": workers,
        "slots": {
            "total": sum(w["slots"] for w in workers),
            "in_flight": sum(w["in_flight"] for w in workers),
        },
        "pending": {
            "total": sum(pending.values()),
            "by_priority": {str(p): n for p, n in sorted(pending.items(), reverse=True)},
        },
        "waiting": store.workflows.waiting(),
        "workflows": live_workflows(store),
        "counters": store.events.counters(),
        "retrying": store.pending.delayed_count(),
        "unschedulable": store.tasks.unschedulable(),
        "breakers": {n: b["state"] for n, b in store.breakers.states().items()},
        "throughput": {
            "window_s": window,
            "finished": finished,
            "per_s": round(finished / window, 3),
        },
    }
