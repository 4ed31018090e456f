"""The monitor's snapshot as a typed value, and its one JSON encoding.

:meth:`Monitor.poll <scheduler.monitor.monitor.Monitor.poll>` returns a
:class:`Snapshot`; Prometheus text (:mod:`.prometheus`), the terminal view
(:mod:`.live`), the health probe and the history read its fields by name.
What goes over HTTP to the dashboard and to API clients is :meth:`Snapshot.to_json`:
field names and order are those of the JSON object the monitor has always
served, and it is encoded the way FastAPI encoded that object, so the bytes are
the same. The pure metric functions (:mod:`.metrics`, :mod:`.health`) return
plain mappings; :func:`typed` checks each against its type here.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


class Summary(msgspec.Struct):
    """count, sum, mean and p50/p95/p99 of a set of seconds (None where there is no value)."""

    count: int
    sum: float
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None


class Latencies(msgspec.Struct):
    """One measure (wait or run time) over all tasks, per task label and per priority."""

    all: Summary
    by_task: dict[str, Summary]
    by_priority: dict[str, Summary]


class Latency(msgspec.Struct):
    """Wait (submission to start) and run time of the tasks of the long window."""

    wait: Latencies
    run: Latencies


class Throughput(msgspec.Struct):
    """Tasks finished per second over each window (``1s``, ``1m``, ``5m``), total and per task."""

    total: dict[str, float]
    by_task: dict[str, dict[str, float]]


class Deadlines(msgspec.Struct):
    """Tasks with a deadline that ended in the long window, and how many missed it."""

    finished: int
    missed: int
    miss_ratio: float


class TaskPrediction(msgspec.Struct):
    """How far one task label's run times were from the EMAs they were scheduled by."""

    samples: int
    mean_abs_error_s: float
    mean_rel_error: float


class Prediction(msgspec.Struct):
    """Prediction error per task label and overall (None before any sample)."""

    by_task: dict[str, TaskPrediction]
    samples: int
    mean_rel_error: float | None


class FailureRate(msgspec.Struct):
    """Runs that ended in a window, and how many failed."""

    finished: int
    failed: int
    ratio: float


class Failures(msgspec.Struct):
    """Failure rates over the short and the long window."""

    short: FailureRate
    long: FailureRate


class CacheRate(msgspec.Struct):
    """Solution-cache lookups that hit and missed."""

    hits: int
    misses: int
    hit_ratio: float


class Health(msgspec.Struct):
    """The health score (0..100), its status word, its components and why it is not healthy."""

    score: float
    status: str
    components: dict[str, float]
    reasons: list[str]


class AnomalyView(msgspec.Struct):
    """An anomaly as the snapshot shows it (see :class:`~scheduler.monitor.anomalies.Anomaly`)."""

    id: str
    type: str
    severity: str
    reason: str
    recommendation: str
    workers: list[str]
    tasks: list[str]
    since: float
    last_seen: float
    cleared_at: float | None


class DispatcherView(msgspec.Struct):
    """Whether a dispatcher leads, what it runs, and the adaptive strategy's switches."""

    leader: bool
    strategy: str | None
    strategy_switches: int
    recent_switches: list[dict[str, Any]]


class WorkerLoad(msgspec.Struct):
    """One registered worker: its slots, how many are busy, its heartbeat and its counts."""

    name: str
    slots: int
    busy: int
    free: int
    utilization: float
    heartbeat_age: float
    succeeded: int
    failed: int


class Slots(msgspec.Struct):
    """Slots of all workers, busy and free."""

    total: int
    busy: int
    free: int
    utilization: float


class Backlog(msgspec.Struct):
    """Pending tasks, in total and per priority (keys ``"0"`` .. ``"9"``)."""

    total: int
    by_priority: dict[str, int]


class Windows(msgspec.Struct):
    """The monitor's short and long windows, in seconds."""

    short_s: float
    long_s: float


class RedisMemory(msgspec.Struct):
    """Redis's memory from ``INFO memory``: bytes used, the ``maxmemory`` limit (0: none)
    and used / limit (None without a limit)."""

    used_bytes: int
    max_bytes: int
    ratio: float | None


class PollStats(msgspec.Struct):
    """The cost of the poll that made the snapshot."""

    poll_seconds: float
    polls: int
    events_in_window: int


class TaskPlanError(msgspec.Struct):
    """How far one task name's run times were from the durations the plan assumed."""

    samples: int
    mean_abs_error_s: float
    mean_rel_error: float


class PlanAccuracy(msgspec.Struct):
    """The simulator's plan for the backlog of one instant against what then happened.

    ``adherence``: of the pairs of planned tasks that have started, the share that
    started in the planned order (1.0 = the plan's order exactly; None before two
    started). ``start_error_s`` / ``finish_error_s``: mean absolute distance of the
    actual start and finish from the planned ones; ``finish_error``: that finish
    distance over the mean planned time to finish (None before a task ended).
    """

    made_at: float
    strategy: str
    version: int
    planned: int
    ended: int
    adherence: float | None
    start_error_s: float | None
    finish_error_s: float | None
    finish_error: float | None
    horizon_s: float
    by_task: dict[str, TaskPlanError]


class RolloutView(msgspec.Struct):
    """The guarded rollout of a strategy version: watched, kept or rolled back."""

    version: int
    state: str
    window_s: float
    switched_at: float | None
    experiment: str
    reason: str
    before: dict[str, float | int | None]
    after: dict[str, float | int | None]


class TuningView(msgspec.Struct):
    """What the monitor's tuning companion reports: the plan's accuracy and the rollout."""

    plan: PlanAccuracy | None = None
    rollout: RolloutView | None = None


class Snapshot(msgspec.Struct, kw_only=True):
    """Everything the monitor knows at one poll (Redis server time ``time``)."""

    time: float
    dispatcher: DispatcherView
    workers: list[WorkerLoad]
    slots: Slots
    backlog: Backlog
    counters: dict[str, int]
    throughput: Throughput
    latency: Latency
    deadlines: Deadlines
    prediction: Prediction
    failures: Failures
    cache: CacheRate | None
    windows: Windows
    anomalies: list[AnomalyView]
    cleared_anomalies: list[AnomalyView] = []
    health: Health
    redis: RedisMemory | None = None  # None where Redis refuses INFO (an ACL user without it)
    monitor: PollStats | None = None
    tuning: TuningView | None = None  # None: the monitor runs without its tuning companion

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as plain JSON values (what :meth:`to_json` encodes)."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        if out["monitor"] is None:  # a snapshot not made by a poll (tests) has no poll stats
            del out["monitor"]
        if out["tuning"] is None:
            del out["tuning"]
        return out

    def to_json(self) -> bytes:
        """The JSON the dashboard and ``/monitor/snapshot`` serve (compact, UTF-8)."""
        return dump(self.as_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        """A snapshot from its :meth:`as_dict` form (checked field by field)."""
        return msgspec.convert(data, cls)


def typed(value: Any, kind: type[T]) -> T:
    """``value`` (a metric function's mapping) checked against and turned into ``kind``."""
    return msgspec.convert(value, kind)


def dump(data: Any) -> bytes:
    """Compact JSON, as FastAPI's JSONResponse writes it (so the served bytes do not change)."""
    return json.dumps(
        data, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")
