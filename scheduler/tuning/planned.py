"""Planned against actual: the simulator's plan for the backlog, measured against what happened.

Every ``YM_PLAN_INTERVAL`` seconds (when the last plan has settled) the
monitor's companion takes the backlog (the oldest ``YM_PLAN_MAX_TASKS``
pending tasks), the workers and their busy slots, the learned duration
estimates and the live configuration, and asks the simulator when each
pending task will start and finish: :func:`make_plan`. Each task's duration
in the plan is what the strategies expect of it (its hint, else the EMA of
its duration key, else ``YM_DEFAULT_DURATION``); a busy slot frees when its
running task's estimate runs out; tasks arriving later are not foreseen (they
are what makes a plan go wrong, with run times). As the planned tasks end,
:meth:`Plan.accuracy` measures:

- **adherence**: of the pairs of planned tasks that started, the share that
  started in the planned order (Kendall's concordance; pairs the plan starts
  at the same instant are not counted);
- **start and finish error**: mean absolute distance of the actual start and
  finish from the planned ones, and the finish error over the mean planned
  time to finish (``finish_error``);
- **the duration model's error per task name**: the run time against the
  duration the plan assumed.

The monitor shows these (JSON ``tuning.plan``, ``/metrics`` ``ym_plan_*``) and
raises ``prediction_drift:plan`` past ``YM_PLAN_MIN_ADHERENCE`` or
``YM_PLAN_MAX_ERROR``, suggesting a new tune.

The simulated workers are identical (as the simulator models them): equal
slot counts are kept, otherwise every slot becomes a one-slot worker. The
plan knows no warm affinity keys (``warm_factor`` 1) and no affinity scores.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from scheduler.adaptive import build_strategy
from scheduler.models import Estimates, PendingTask
from scheduler.monitor.metrics import FinishEvent
from scheduler.monitor.snapshot import PlanAccuracy, TaskPlanError
from scheduler.settings import Settings
from scheduler.simulator import Simulator
from scheduler.store import Store
from scheduler.tuning.rules import Config
from scheduler.tuning.steering import live_config, run_settings
from scheduler.workload import WorkloadTask

SLOT = "ym-plan-slot"  # the rows that hold a slot until it frees (never a real task's name)
LEAD = 1.0  # seconds the slot rows arrive before the oldest pending task
STALE = 600.0  # seconds after which a plan whose tasks did not all end is replaced anyway


@dataclass
class Plan:
    """One plan: when each pending task should start and finish, and what happened.

    Attributes:
        made_at: Redis time of the plan.
        strategy: The live strategy planned with.
        version: Its configuration version.
        start: Task id -> planned start (Redis time).
        finish: Task id -> planned finish.
        duration: Task id -> the duration the plan assumed.
        name: Task id -> its duration key.
        actual: Task id -> (start, finish, run time) of the tasks that ran, as they end.
    """

    made_at: float
    strategy: str
    version: int
    start: dict[str, float]
    finish: dict[str, float]
    duration: dict[str, float]
    name: dict[str, str]
    actual: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)  # planned tasks that ended in any way

    @property
    def horizon(self) -> float:
        """Seconds from the plan to its last planned finish."""
        return max(self.finish.values(), default=self.made_at) - self.made_at

    def observe(self, events: Sequence[FinishEvent]) -> None:
        """Record the planned tasks among ``events`` that ran (and those that ended unrun)."""
        for e in events:
            if e.id in self.start:
                self.gone.add(e.id)
            if e.id in self.start and e.state in ("succeeded", "failed") and e.started_at:
                run = e.runtime if e.runtime is not None else e.finished_at - e.started_at
                self.actual[e.id] = (e.started_at, e.finished_at, run)

    def settled(self, now: float, interval: float) -> bool:
        """Every planned task ended, or the plan is far past its horizon (tasks whose end
        was never seen: a trimmed events stream, a task held back by a breaker)."""
        late = now > self.made_at + max(10.0 * self.horizon, STALE) + interval
        return len(self.gone) == len(self.start) or late

    def accuracy(self, floor: float) -> PlanAccuracy:
        """The plan against what happened so far (``floor``: see ``YM_MONITOR_DRIFT_FLOOR``)."""
        ended = sorted(self.actual)
        by_name: dict[str, list[tuple[float, float]]] = {}
        for i in ended:
            err = abs(self.actual[i][2] - self.duration[i])
            by_name.setdefault(self.name[i], []).append((err, err / max(self.duration[i], floor)))
        start_err = [abs(self.actual[i][0] - self.start[i]) for i in ended]
        finish_err = [abs(self.actual[i][1] - self.finish[i]) for i in ended]
        to_finish = [self.finish[i] - self.made_at for i in ended]
        mean_to_finish = _mean(to_finish)
        relative = (
            None
            if not ended or mean_to_finish is None or mean_to_finish <= 0
            else math.fsum(finish_err) / len(ended) / mean_to_finish
        )
        return PlanAccuracy(
            made_at=self.made_at,
            strategy=self.strategy,
            version=self.version,
            planned=len(self.start),
            ended=len(ended),
            adherence=concordance([(self.start[i], self.actual[i][0]) for i in ended]),
            start_error_s=_mean(start_err),
            finish_error_s=_mean(finish_err),
            finish_error=relative,
            horizon_s=self.horizon,
            by_task={
                name: TaskPlanError(
                    samples=len(rows),
                    mean_abs_error_s=math.fsum(a for a, _ in rows) / len(rows),
                    mean_rel_error=math.fsum(r for _, r in rows) / len(rows),
                )
                for name, rows in sorted(by_name.items())
            },
        )


def concordance(pairs: Sequence[tuple[float, float]]) -> float | None:
    """Of the pairs of (planned, actual) items with different planned values, the share whose
    actual values are in the same order (None when there is no such pair).

    O(n log n): items sorted by planned, then actual, value; a merge sort counts the
    inversions of the actual values, and ties in the plan (sorted by actual value) add none.
    """
    n = len(pairs)
    ordered = sorted(pairs)
    tied = sum(
        k * (k - 1) // 2
        for k in (len(list(g)) for _, g in itertools.groupby(p for p, _ in ordered))
    )
    comparable = n * (n - 1) // 2 - tied
    if comparable <= 0:
        return None
    _, inversions = _sort_count([a for _, a in ordered])
    return 1.0 - inversions / comparable


def _sort_count(values: list[float]) -> tuple[list[float], int]:
    """``values`` sorted, and the number of pairs out of order in them (merge sort)."""
    if len(values) < 2:
        return values, 0
    mid = len(values) // 2
    left, a = _sort_count(values[:mid])
    right, b = _sort_count(values[mid:])
    merged: list[float] = []
    count = a + b
    i = j = 0
    while i < len(left) and j < len(right):
        if right[j] < left[i]:
            merged.append(right[j])
            count += len(left) - i
            j += 1
        else:
            merged.append(left[i])
            i += 1
    merged += left[i:] + right[j:]
    return merged, count


def make_plan(
    now: float,
    config: Config,
    version: int,
    base: Settings,
    slots: Sequence[int],
    busy: Sequence[float],
    pending: Sequence[PendingTask],
    durations: dict[str, float],
) -> Plan:
    """Simulate ``pending`` from ``now`` under ``config``.

    Args:
        now: Redis time of the plan.
        config: The live configuration; version: its version.
        base: The cluster's settings (the configuration's values go over them).
        slots: Each worker's slots.
        busy: Seconds until each busy slot frees (its running task's estimate left).
        pending: The backlog.
        durations: The learned EMA per duration key.
    """
    settings = run_settings(config, base).model_copy(update={"warm_factor": 1.0})
    estimates = Estimates(durations=dict(durations), default_duration=settings.default_duration)
    origin = min([t.submitted_at for t in pending] + [now]) - LEAD
    at = now - origin
    total = sum(slots)
    rows = [  # one row per slot, all arriving at 0: every strategy starts them at once
        WorkloadTask(f"{SLOT}-{i}", SLOT, 0.0, at + (busy[i] if i < len(busy) else 0.0))
        for i in range(total)
    ]
    planned: dict[str, float] = {}
    for t in pending:
        expected = t.expected_duration or estimates.learned(t.estimate_key)
        planned[t.id] = expected
        rows.append(
            WorkloadTask(
                t.id, t.estimate_key, t.submitted_at - origin, max(expected, 1e-9),
                priority=t.priority, expected_duration=t.expected_duration,
                deadline=None if t.deadline is None else max(0.0, t.deadline - origin),
                affinity_key=t.affinity_key,
            )
        )  # fmt: skip
    same = len(set(slots)) == 1
    sim = Simulator.from_settings(
        build_strategy(config.strategy, settings), settings,
        workers=len(slots) if same else total, slots=slots[0] if same else 1,
    )  # fmt: skip
    sim.estimates = estimates
    outcome = sim.simulate(rows)
    start: dict[str, float] = {}
    finish: dict[str, float] = {}
    for task, began, ended in zip(outcome.tasks, outcome.start, outcome.finish, strict=True):
        if task.id in planned and began is not None and ended is not None:
            start[task.id] = origin + began
            finish[task.id] = origin + ended
    names = {t.id: t.estimate_key for t in pending if t.id in start}
    return Plan(now, config.strategy, version, start, finish, {i: planned[i] for i in start}, names)


class PlanTracker:
    """Makes plans of the live backlog and follows them (see the module docstring).

    Args:
        store: The cluster's store.
        settings: ``YM_PLAN_*`` and the monitor's drift floor.
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.plan: Plan | None = None
        self.last: Plan | None = None  # the plan before, shown until the new one has results
        self.next_plan = 0.0

    def observe(self, now: float, events: Sequence[FinishEvent]) -> PlanAccuracy | None:
        """Follow the current plan with the poll's events; plan again when due."""
        s = self.settings
        if self.plan is not None:
            self.plan.observe(events)
        due = s.plan_interval > 0 and now >= self.next_plan
        if due and (self.plan is None or self.plan.settled(now, s.plan_interval)):
            fresh = self.make(now)  # None with nothing pending: ask again at the next poll
            if fresh is not None:
                self.next_plan = now + s.plan_interval
                if self.plan is not None and self.plan.actual:
                    self.last = self.plan
                self.plan = fresh
        shown = self.plan if self.plan is not None and self.plan.actual else self.last
        return None if shown is None else shown.accuracy(s.monitor_drift_floor)

    def make(self, now: float) -> Plan | None:
        """A plan of the backlog now (None when nothing is pending or no worker has slots)."""
        most = self.settings.plan_max_tasks
        pending = list(itertools.islice(self.store.pending.load(chunk=min(2000, most)), most))
        if not pending:
            return None
        workers = [w for w in self.store.workers.load() if w.slots > 0]
        if not workers:
            return None
        durations = self.store.estimates.durations()
        running = self.store.workers.running([w.name for w in workers])
        busy = sorted(
            max(
                0.0,
                (
                    t.expected_duration
                    or durations.get(t.duration_key, self.settings.default_duration)
                )
                - (now - t.started_at),
            )
            for t in running
        )
        config, version = live_config(self.store, self.settings)
        return make_plan(
            now, config, version, self.settings, [w.slots for w in workers], busy, pending,
            durations,
        )  # fmt: skip


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None
