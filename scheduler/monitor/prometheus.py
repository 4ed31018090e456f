"""Render a monitor snapshot in the Prometheus text exposition format (version 0.0.4).

Names follow Prometheus conventions: a ``ym_`` prefix, base units in the
name (``_seconds``, ``_ratio``), ``_total`` only on counters. Labels are
bounded: task names are capped by ``YM_MONITOR_MAX_TASK_LABELS`` (the rest
are ``_other``), priorities are 0..9, windows and severities are fixed sets,
and worker names are the registered workers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from scheduler.monitor.anomalies import SEVERITIES, TYPES
from scheduler.monitor.metrics import QUANTILES
from scheduler.monitor.snapshot import Snapshot, Summary, TuningView

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ROLLOUT_STATES = ("waiting", "watching", "kept", "rolled_back", "superseded")
TASK_EVENTS = (
    "submitted", "dispatched", "started", "succeeded", "failed", "cancelled", "expired",
)  # fmt: skip
Sample = tuple[dict[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self, name: str, kind: str, help_text: str, samples: Iterable[Sample], suffix: str = ""
    ) -> None:
        self.lines.append(f"# HELP {name}{suffix} {help_text}")
        self.lines.append(f"# TYPE {name}{suffix} {kind}")
        self.samples(name + suffix, samples)

    def samples(self, name: str, samples: Iterable[Sample]) -> None:
        for labels, value in samples:
            if labels:
                text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
                self.lines.append(f"{name}{{{text}}} {_number(value)}")
            else:
                self.lines.append(f"{name} {_number(value)}")

    def summary(self, name: str, help_text: str, groups: Mapping[str, Summary], label: str) -> None:
        """A summary family: one quantile set plus _sum and _count per label value."""
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} summary")
        for key, stats in groups.items():
            base = {label: key} if label else {}
            for q in QUANTILES:
                value: float | None = getattr(stats, f"p{round(q * 100)}")
                self.samples(
                    name,
                    [({**base, "quantile": str(q)}, math.nan if value is None else value)],
                )
            self.samples(name + "_sum", [(base, stats.sum)])
            self.samples(name + "_count", [(base, stats.count)])


def render(snap: Snapshot) -> str:
    """The ``/metrics`` body for one snapshot."""
    w = _Writer()
    counters = snap.counters
    w.family(
        "ym_tasks",
        "counter",
        "Tasks that reached each step of their life since the cluster's Redis was new.",
        [({"event": e}, counters.get(e, 0)) for e in TASK_EVENTS],
        suffix="_total",
    )
    others = sorted(
        k
        for k in counters
        if k not in TASK_EVENTS and k != "strategy_switches" and not k.startswith("cache_")
    )
    if others:
        w.family(
            "ym_counter",
            "counter",
            "Other lifetime counters yardmaster keeps, by name.",
            [({"name": k}, counters[k]) for k in others],
            suffix="_total",
        )
    thr = snap.throughput
    w.family(
        "ym_throughput_tasks_per_second",
        "gauge",
        "Tasks reaching a terminal state per second, averaged over the window.",
        [({"window": k}, v) for k, v in thr.total.items()],
    )
    w.family(
        "ym_task_throughput_tasks_per_second",
        "gauge",
        "Tasks of one name reaching a terminal state per second, over the window.",
        [
            ({"task": name, "window": k}, v)
            for name, per in thr.by_task.items()
            for k, v in per.items()
        ],
    )
    long_s = snap.windows.long_s
    for kind, what, lat in (
        ("wait", "submission to start", snap.latency.wait),
        ("run", "run time of the body", snap.latency.run),
    ):
        w.summary(
            f"ym_{kind}_seconds",
            f"Seconds from {what}, all tasks finished in the last {long_s:g}s.",
            {"": lat.all},
            "",
        )
        w.summary(
            f"ym_task_{kind}_seconds",
            f"Seconds from {what}, by task name, last {long_s:g}s.",
            lat.by_task,
            "task",
        )
        w.summary(
            f"ym_priority_{kind}_seconds",
            f"Seconds from {what}, by priority, last {long_s:g}s.",
            lat.by_priority,
            "priority",
        )
    w.family(
        "ym_backlog_tasks",
        "gauge",
        "Pending tasks by priority (0..9, higher runs first).",
        [({"priority": str(p)}, snap.backlog.by_priority.get(str(p), 0)) for p in range(10)],
    )
    workers = snap.workers
    w.family("ym_workers", "gauge", "Registered workers.", [({}, len(workers))])
    w.family(
        "ym_worker_slots",
        "gauge",
        "Slots (concurrency) of each worker.",
        [({"worker": x.name}, x.slots) for x in workers],
    )
    w.family(
        "ym_worker_busy_slots",
        "gauge",
        "Slots of each worker holding a dispatched or running task.",
        [({"worker": x.name}, x.busy) for x in workers],
    )
    w.family(
        "ym_worker_heartbeat_age_seconds",
        "gauge",
        "Seconds since each worker's last heartbeat.",
        [({"worker": x.name}, x.heartbeat_age) for x in workers],
    )
    slots = snap.slots
    w.family("ym_slots", "gauge", "Slots of all workers.", [({}, slots.total)])
    w.family("ym_free_slots", "gauge", "Slots without a task.", [({}, slots.free)])
    w.family(
        "ym_slot_utilization_ratio",
        "gauge",
        "Share of all slots holding a task.",
        [({}, slots.utilization)],
    )
    dl = snap.deadlines
    w.family(
        "ym_deadline_miss_ratio",
        "gauge",
        "Share of tasks with a deadline, finished in the long window, that missed it.",
        [({}, dl.miss_ratio)],
    )
    pred = snap.prediction.by_task
    w.family(
        "ym_prediction_error_seconds",
        "gauge",
        "Mean absolute difference between run time and the EMA it was scheduled by.",
        [({"task": k}, v.mean_abs_error_s) for k, v in pred.items()],
    )
    w.family(
        "ym_prediction_error_ratio",
        "gauge",
        "Mean relative error of the EMA against run time (see YM_MONITOR_DRIFT_FLOOR).",
        [({"task": k}, v.mean_rel_error) for k, v in pred.items()],
    )
    w.family(
        "ym_failure_ratio",
        "gauge",
        "Share of runs that failed, over the short and the long window.",
        [
            ({"window": "short"}, snap.failures.short.ratio),
            ({"window": "long"}, snap.failures.long.ratio),
        ],
    )
    if snap.cache is not None:
        w.family(
            "ym_cache_hit_ratio",
            "gauge",
            "Share of cache lookups that hit.",
            [({}, snap.cache.hit_ratio)],
        )
    disp = snap.dispatcher
    w.family(
        "ym_strategy_switches",
        "counter",
        "Strategy switches the adaptive strategy made.",
        [({}, disp.strategy_switches)],
        suffix="_total",
    )
    if disp.strategy:
        w.family(
            "ym_strategy_info",
            "gauge",
            "The strategy the active dispatcher runs (value 1).",
            [({"strategy": disp.strategy}, 1)],
        )
    w.family(
        "ym_dispatcher_up", "gauge", "1 when a dispatcher holds the lease.", [({}, disp.leader)]
    )
    counts = {(t, s): 0 for t in TYPES for s in SEVERITIES}
    for a in snap.anomalies:
        counts[(a.type, a.severity)] += 1
    w.family(
        "ym_anomalies",
        "gauge",
        "Active anomalies by type and severity.",
        [({"type": t, "severity": s}, n) for (t, s), n in counts.items()],
    )
    h = snap.health
    w.family("ym_health_score", "gauge", "Health score, 0..100.", [({}, h.score)])
    w.family(
        "ym_health_component_score",
        "gauge",
        "Health component scores, 0..100.",
        [({"component": k}, v) for k, v in h.components.items()],
    )
    w.family(
        "ym_health_status",
        "gauge",
        "1 for the current health status.",
        [({"status": st}, st == h.status) for st in ("healthy", "degraded", "unhealthy")],
    )
    memory = snap.redis
    if memory is not None:
        w.family(
            "ym_redis_memory_used_bytes",
            "gauge",
            "Bytes Redis uses (INFO memory used_memory).",
            [({}, memory.used_bytes)],
        )
        w.family(
            "ym_redis_memory_max_bytes",
            "gauge",
            "Redis's maxmemory limit in bytes; 0 when it has none.",
            [({}, memory.max_bytes)],
        )
        if memory.ratio is not None:
            w.family(
                "ym_redis_memory_ratio",
                "gauge",
                "Redis's used memory over its maxmemory (submissions are refused above "
                "YM_MEMORY_HIGH_WATER).",
                [({}, memory.ratio)],
            )
    if snap.tuning is not None:
        _tuning(w, snap.tuning)
    w.family(
        "ym_monitor_poll_seconds",
        "gauge",
        "Seconds the last monitor poll took.",
        [({}, snap.monitor.poll_seconds if snap.monitor else 0.0)],
    )
    return "\n".join(w.lines) + "\n"


def _tuning(w: _Writer, view: TuningView) -> None:
    """The plan of the backlog against what happened, and the guarded rollout."""
    plan = view.plan
    if plan is not None:
        w.family(
            "ym_plan_tasks",
            "gauge",
            "Tasks of the latest plan of the backlog: planned, and ended so far.",
            [({"kind": "planned"}, plan.planned), ({"kind": "ended"}, plan.ended)],
        )
        for name, help_text, value in (
            ("ym_plan_adherence_ratio", "Share of pairs of planned tasks that started in the "
             "planned order.", plan.adherence),
            ("ym_plan_start_error_seconds", "Mean absolute distance of the actual start from "
             "the planned one.", plan.start_error_s),
            ("ym_plan_finish_error_seconds", "Mean absolute distance of the actual finish from "
             "the planned one.", plan.finish_error_s),
            ("ym_plan_finish_error_ratio", "Finish error over the mean planned time to finish.",
             plan.finish_error),
        ):  # fmt: skip
            w.family(name, "gauge", help_text, [({}, math.nan if value is None else value)])
        w.family(
            "ym_plan_duration_error_seconds",
            "gauge",
            "Mean absolute difference between run time and the duration the plan assumed.",
            [({"task": k}, v.mean_abs_error_s) for k, v in plan.by_task.items()],
        )
        w.family(
            "ym_plan_duration_error_ratio",
            "gauge",
            "Mean relative error of the duration the plan assumed (see YM_MONITOR_DRIFT_FLOOR).",
            [({"task": k}, v.mean_rel_error) for k, v in plan.by_task.items()],
        )
    rollout = view.rollout
    if rollout is not None:
        w.family(
            "ym_rollout_state",
            "gauge",
            "1 for the state of the latest guarded strategy version's rollout.",
            [
                ({"version": str(rollout.version), "state": st}, st == rollout.state)
                for st in ROLLOUT_STATES
            ],
        )
