"""Schedule metrics, named as DESIGN.md names them everywhere.

``flow`` = finish - submit_at, ``wait`` = start - submit_at, ``lateness`` =
finish - deadline. Failed tasks count (they finished); tasks cancelled because
a dependency failed do not. Tasks expired by ``edf``'s ``expire`` policy count
as deadline misses, and have no flow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scheduler.simulator.engine import SimulatedTask
from scheduler.stats import percentile

METRIC_NAMES = (
    "tasks",
    "makespan",
    "mean_flow",
    "p50_flow",
    "p95_flow",
    "p99_flow",
    "mean_wait",
    "deadline_misses",
    "max_lateness",
    "utilization",
    "affinity_hits",
)


def metrics(records: Sequence[SimulatedTask], slots_total: int) -> dict[str, Any]:
    """The metrics of one schedule (``slots_total`` = workers x slots)."""
    done = [r for r in records if r.finish is not None and r.start is not None]
    flows = [r.finish - r.task.submit_at for r in done if r.finish is not None]
    waits = [r.start - r.task.submit_at for r in done if r.start is not None]
    late = [
        r.finish - r.task.deadline
        for r in done
        if r.task.deadline is not None and r.finish is not None
    ]
    first = min((r.task.submit_at for r in records), default=0.0)
    last = max((r.finish for r in done if r.finish is not None), default=first)
    makespan = last - first
    busy = sum(r.finish - r.start for r in done if r.finish is not None and r.start is not None)
    return {
        "tasks": len(records),
        "makespan": makespan,
        "mean_flow": sum(flows) / len(flows) if flows else 0.0,
        "p50_flow": percentile(flows, 50) if flows else 0.0,
        "p95_flow": percentile(flows, 95) if flows else 0.0,
        "p99_flow": percentile(flows, 99) if flows else 0.0,
        "mean_wait": sum(waits) / len(waits) if waits else 0.0,
        # An expired task gave up on its deadline: that is a miss too.
        "deadline_misses": sum(1 for x in late if x > 1e-9)
        + sum(1 for r in records if r.state == "expired"),
        "max_lateness": max(late) if late else None,
        "utilization": busy / (slots_total * makespan) if makespan > 0 else 0.0,
        "affinity_hits": sum(1 for r in done if r.warm),
    }
