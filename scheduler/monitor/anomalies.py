"""Anomaly detection: pure rules over one observation, and a tracker that raises and clears.

Each rule looks at an :class:`Observation` (built by the monitor from
yardmaster's records) and returns the anomalies it sees now, each with a
stable id (type plus subject), so the tracker can tell a new anomaly from one
still going, and clear it when the rule stops returning it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from scheduler.monitor.metrics import FinishEvent, failures
from scheduler.monitor.snapshot import PlanAccuracy
from scheduler.settings import Settings
from scheduler.store import RunningTask

SEVERITIES = ("info", "warning", "critical")
TYPES = (
    "stalled_worker",
    "throughput_drop",
    "failure_spike",
    "prediction_drift",
    "backlog_growth",
    "redis_memory",
    "unschedulable",
)
FULL = 0.98
"""Share of ``maxmemory`` past which Redis is about to refuse writes: ``redis_memory`` is
critical."""


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One anomaly: what, how bad, whom it concerns, why, what to do, since when."""

    id: str
    type: str
    severity: str
    reason: str
    recommendation: str
    workers: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    since: float = 0.0
    last_seen: float = 0.0
    cleared_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "id": self.id,
            "type": self.type,
            "severity": self.severity,
            "reason": self.reason,
            "recommendation": self.recommendation,
            "workers": list(self.workers),
            "tasks": list(self.tasks),
            "since": self.since,
            "last_seen": self.last_seen,
            "cleared_at": self.cleared_at,
        }


@dataclass(frozen=True, slots=True)
class WorkerView:
    """A registered worker as the detectors see it."""

    name: str
    slots: int
    busy: int
    heartbeat_age: float


@dataclass(slots=True)
class Observation:
    """Everything the rules look at, at one instant.

    Attributes:
        now: Redis server time.
        short: Events finished in the short window.
        base: Events finished in the long window before the short one.
        workers: Registered workers.
        running: Tasks running now.
        durations: EMA per duration key.
        backlog: (time, pending tasks) samples over the short window, oldest first.
        drained: Terminal-state counter at the first and last backlog sample.
        counts: Finished in the short window and in the baseline, when known
            apart from ``short`` and ``base`` (which may be capped).
        plan: The latest plan for the backlog against what happened (None without one).
        memory_ratio: Redis's used memory over its ``maxmemory`` (None: no limit, or
            unknown).
        unschedulable: Pending tasks no live worker could ever run, id -> reason.
    """

    now: float
    short: Sequence[FinishEvent]
    base: Sequence[FinishEvent]
    workers: Sequence[WorkerView]
    running: Sequence[RunningTask]
    durations: dict[str, float]
    backlog: Sequence[tuple[float, int]]
    drained: tuple[int, int] = (0, 0)
    counts: tuple[int, int] | None = None
    plan: PlanAccuracy | None = None
    memory_ratio: float | None = None
    unschedulable: dict[str, str] = field(default_factory=dict)

    @property
    def finished(self) -> tuple[int, int]:
        """Tasks finished in the short window and in the baseline before it (every one
        counted, even where the event window keeps only the newest)."""
        return self.counts if self.counts is not None else (len(self.short), len(self.base))


def detect(obs: Observation, s: Settings) -> list[Anomaly]:
    """Every anomaly the rules see in ``obs``."""
    found: list[Anomaly] = []
    found += stalled_workers(obs, s)
    found += throughput_drop(obs, s)
    found += failure_spike(obs, s)
    found += prediction_drift(obs, s)
    found += plan_drift(obs, s)
    found += backlog_growth(obs, s)
    found += redis_memory(obs, s)
    found += unschedulable(obs, s)
    return found


def unschedulable(obs: Observation, s: Settings) -> list[Anomaly]:
    """Tasks wait that no live worker could ever run (placement): one anomaly per reason."""
    by_reason: dict[str, list[str]] = {}
    for task_id, why in obs.unschedulable.items():
        by_reason.setdefault(why, []).append(task_id)
    return [
        Anomaly(
            id=f"unschedulable:{why}",
            type="unschedulable",
            severity="warning",
            reason=f"{len(ids)} tasks cannot run on any live worker: {why}",
            recommendation=(
                "start a worker that offers what they need (yardmaster worker --resources/"
                "--label/-Q, with their task module), or cancel them; they run as soon as "
                "one registers"
            ),
            tasks=tuple(sorted(ids)[:20]),
        )
        for why, ids in sorted(by_reason.items())
    ]


def stalled_workers(obs: Observation, s: Settings) -> list[Anomaly]:
    """A worker whose heartbeat stopped, or that runs a task far past its EMA."""
    out: list[Anomaly] = []
    limit = s.monitor_heartbeat_misses * s.heartbeat_interval
    silent = {w.name for w in obs.workers if w.heartbeat_age > limit}
    for w in obs.workers:
        if w.name in silent:
            out.append(
                Anomaly(
                    id=f"stalled_worker:{w.name}",
                    type="stalled_worker",
                    severity="critical",
                    reason=(
                        f"no heartbeat from {w.name} for {w.heartbeat_age:.1f}s "
                        f"(expected every {s.heartbeat_interval:g}s; limit {limit:g}s)"
                    ),
                    recommendation=(
                        "check the worker process and its host; the dispatcher returns its "
                        f"{w.busy} task(s) to pending after YM_WORKER_TIMEOUT "
                        f"({s.worker_timeout:g}s)"
                    ),
                    workers=(w.name,),
                )
            )
    slow: dict[str, list[tuple[RunningTask, float, float]]] = {}
    for task in obs.running:
        estimate = obs.durations.get(task.duration_key, task.expected_duration)
        if estimate is None or task.worker in silent:
            continue
        elapsed = obs.now - task.started_at
        if elapsed > max(s.monitor_stall_factor * estimate, s.monitor_stall_min):
            slow.setdefault(task.worker, []).append((task, elapsed, estimate))
    for worker, rows in sorted(slow.items()):
        task, elapsed, estimate = max(rows, key=lambda r: r[1] / max(r[2], 1e-9))
        out.append(
            Anomaly(
                id=f"stalled_worker:{worker}",
                type="stalled_worker",
                severity="warning",
                reason=(
                    f"{task.name} {task.id} has run {elapsed:.1f}s on {worker}, "
                    f"{elapsed / max(estimate, 1e-9):.1f}x its EMA of {estimate:.3f}s"
                    + (f" ({len(rows)} such tasks)" if len(rows) > 1 else "")
                ),
                recommendation=(
                    "look for a hung call in the task (a lock, I/O without a timeout); "
                    "give the task a time limit, or revoke it"
                ),
                workers=(worker,),
                tasks=tuple(sorted(r[0].id for r in rows)),
            )
        )
    return out


def throughput_drop(obs: Observation, s: Settings) -> list[Anomaly]:
    """Recent throughput far below the baseline while work is waiting."""
    base_span = s.monitor_long_window - s.monitor_short_window
    short_n, base_n = obs.finished
    if base_n < s.monitor_min_samples or not obs.backlog or obs.backlog[-1][1] == 0:
        return []
    base_rate = base_n / base_span
    rate = short_n / s.monitor_short_window
    if rate >= s.monitor_drop_ratio * base_rate:
        return []
    busy = sorted(w.name for w in obs.workers if w.busy > 0)
    return [
        Anomaly(
            id="throughput_drop:cluster",
            type="throughput_drop",
            severity="critical" if rate == 0 else "warning",
            reason=(
                f"{rate:.2f} tasks/s over the last {s.monitor_short_window:g}s against "
                f"{base_rate:.2f} tasks/s before, with {obs.backlog[-1][1]} tasks waiting"
            ),
            recommendation=(
                "see whether workers stalled or left, or long tasks hold the slots; "
                "add workers if the task mix got slower"
            ),
            workers=tuple(busy),
        )
    ]


def failure_spike(obs: Observation, s: Settings) -> list[Anomaly]:
    """A share of failed runs in the short window at or above the threshold."""
    stats = failures(obs.short)
    if stats["finished"] < s.monitor_min_samples or stats["ratio"] < s.monitor_failure_ratio:
        return []
    failed = [e for e in obs.short if e.state == "failed"]
    names = sorted({e.name for e in failed})
    workers = sorted({e.worker for e in failed if e.worker})
    return [
        Anomaly(
            id="failure_spike:cluster",
            type="failure_spike",
            severity="critical" if stats["ratio"] >= 0.5 else "warning",
            reason=(
                f"{int(stats['failed'])} of {int(stats['finished'])} runs failed in the last "
                f"{s.monitor_short_window:g}s ({stats['ratio']:.0%}; threshold "
                f"{s.monitor_failure_ratio:.0%})"
            ),
            recommendation=(
                "read the errors of the failed tasks (`yardmaster` task records); if they share "
                "a worker, drain it"
            ),
            workers=tuple(workers),
            tasks=tuple(names),
        )
    ]


def prediction_drift(obs: Observation, s: Settings) -> list[Anomaly]:
    """A task name whose run times have moved away from its EMA."""
    by_name: dict[str, list[tuple[float, float]]] = {}
    for e in obs.short:
        err = e.prediction_error
        if err is not None and e.expected is not None:
            rel = abs(err) / max(e.expected, s.monitor_drift_floor)
            by_name.setdefault(e.name, []).append((rel, err))
    out: list[Anomaly] = []
    for name, rows in sorted(by_name.items()):
        if len(rows) < s.monitor_min_samples:
            continue
        mean_rel = sum(r for r, _ in rows) / len(rows)
        if mean_rel < s.monitor_drift_ratio:
            continue
        bias = sum(e for _, e in rows) / len(rows)
        out.append(
            Anomaly(
                id=f"prediction_drift:{name}",
                type="prediction_drift",
                severity="warning",
                reason=(
                    f"{name}: mean error {mean_rel:.0%} of the EMA over {len(rows)} runs "
                    f"(runs are {'longer' if bias > 0 else 'shorter'} by {abs(bias):.3f}s "
                    "on average)"
                ),
                recommendation=(
                    "the task's run time changed or depends on its input: give a duration_key "
                    "per input class or an expected_duration hint; a higher YM_EMA_ALPHA "
                    "follows change faster. " + RETUNE
                ),
                tasks=(name,),
            )
        )
    return out


RETUNE = (
    "The live configuration was chosen for other traffic: tune it again on what runs now "
    "(`yardmaster trace export --since 1h --out trace.jsonl`, then `yardmaster tune "
    "trace.jsonl --workers N --apply`)"
)


def plan_drift(obs: Observation, s: Settings) -> list[Anomaly]:
    """The simulator's plan for the backlog no longer says what happens: tasks start out of
    its order, or finish far from when it said (``prediction_drift:plan``)."""
    plan = obs.plan
    if plan is None or plan.ended < s.monitor_min_samples:
        return []
    off_order = plan.adherence is not None and plan.adherence < s.plan_min_adherence
    off_time = plan.finish_error is not None and plan.finish_error > s.plan_max_error
    if not off_order and not off_time:
        return []
    worst = sorted(plan.by_task.items(), key=lambda kv: -kv[1].mean_rel_error)[:3]
    names = ", ".join(f"{n} {e.mean_rel_error:.0%}" for n, e in worst)
    adherence = "n/a" if plan.adherence is None else f"{plan.adherence:.2f}"
    finish = "n/a" if plan.finish_error is None else f"{plan.finish_error:.0%}"
    return [
        Anomaly(
            id="prediction_drift:plan",
            type="prediction_drift",
            severity="warning",
            reason=(
                f"the simulator's plan for {plan.planned} backlog tasks under {plan.strategy} "
                f"(version {plan.version}) is off: of {plan.ended} that ended, start order "
                f"adherence {adherence} (limit {s.plan_min_adherence:g}), finish times off by "
                f"{finish} of the planned time (limit {s.plan_max_error:.0%}); duration "
                f"errors: {names or 'none measured'}"
            ),
            recommendation=(
                "run times, arrivals or placement no longer match what the configuration was "
                "chosen for. " + RETUNE
            ),
            tasks=tuple(n for n, _ in worst),
        )
    ]


def backlog_growth(obs: Observation, s: Settings) -> list[Anomaly]:
    """The backlog rose by at least the threshold over the short window, and in both of its
    halves: work arrives faster than it drains."""
    if len(obs.backlog) < 3:
        return []
    (t0, first), (t1, last) = obs.backlog[0], obs.backlog[-1]
    mid = obs.backlog[len(obs.backlog) // 2][1]
    span = t1 - t0
    # Growth through both halves of the window: a burst that is already
    # draining, or one that only just arrived, is not a backlog outgrowing
    # the workers.
    if span <= 0 or last - first < s.monitor_backlog_growth or not first < mid < last:
        return []
    drained = max(0, obs.drained[1] - obs.drained[0])
    drain_rate = drained / span
    growth = (last - first) / span
    slots = sum(w.slots for w in obs.workers)
    return [
        Anomaly(
            id="backlog_growth:cluster",
            type="backlog_growth",
            severity="critical" if drained == 0 else "warning",
            reason=(
                f"backlog grew from {first} to {last} in {span:.1f}s (+{growth:.2f}/s) "
                f"while {drain_rate:.2f} tasks/s finished"
            ),
            recommendation=(
                f"add workers or slots ({slots} slots now); at this rate about "
                f"{growth / drain_rate:.0%} more capacity is needed"
                if drain_rate > 0
                else "no task finished meanwhile: check that workers and the dispatcher run"
            ),
            workers=tuple(sorted(w.name for w in obs.workers)),
        )
    ]


def redis_memory(obs: Observation, s: Settings) -> list[Anomaly]:
    """Redis's used memory passed the high-water mark (submissions are refused: warning), or
    nearly its whole ``maxmemory`` (Redis is about to refuse writes: critical)."""
    ratio = obs.memory_ratio
    high = s.memory_high_water or FULL
    if ratio is None or ratio < min(high, FULL):
        return []
    critical = ratio >= FULL
    return [
        Anomaly(
            id="redis_memory:cluster",
            type="redis_memory",
            severity="critical" if critical else "warning",
            reason=(
                f"Redis uses {ratio:.0%} of its maxmemory"
                + (
                    "; it refuses writes at 100 %"
                    if critical
                    else f", above YM_MEMORY_HIGH_WATER ({high:.0%}): submissions are refused"
                )
            ),
            recommendation=(
                "let the backlog drain (add workers or slots), raise Redis's maxmemory, or "
                "shorten YM_RESULT_TTL so finished records leave sooner (reliability.md, "
                '"Backpressure")'
            ),
        )
    ]


class Tracker:
    """Keeps the active anomalies; raises new ones and clears those whose cause went."""

    def __init__(self, keep_cleared: int = 50) -> None:
        self.active: dict[str, Anomaly] = {}
        self.cleared: list[Anomaly] = []
        self.keep_cleared = keep_cleared

    def update(self, found: Sequence[Anomaly], now: float) -> tuple[list[Anomaly], list[Anomaly]]:
        """Apply one round of findings; returns (raised, cleared) in this round."""
        raised: list[Anomaly] = []
        seen: dict[str, Anomaly] = {}
        for a in found:
            # two rules on one subject: keep the more severe
            if a.id in seen and SEVERITIES.index(a.severity) <= SEVERITIES.index(
                seen[a.id].severity
            ):
                continue
            seen[a.id] = a
        for aid, a in seen.items():
            old = self.active.get(aid)
            if old is None:
                self.active[aid] = replace(a, since=now, last_seen=now)
                raised.append(self.active[aid])
            else:
                self.active[aid] = replace(a, since=old.since, last_seen=now)
        gone = [aid for aid in self.active if aid not in seen]
        cleared = [replace(self.active.pop(aid), cleared_at=now) for aid in gone]
        self.cleared = (cleared + self.cleared)[: self.keep_cleared]
        return raised, cleared
