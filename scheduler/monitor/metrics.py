"""Metrics computed from terminal-state events: pure functions, no I/O.

An event is one entry of the ``events`` stream that ``finish.lua``,
``end_pending.lua``, ``cancel.lua`` and ``requeue.lua`` append. Wait is ``started_at -
submitted_at``, run time is the worker's own measure of the body, a deadline
is missed when a task finishes after it or expires, and the prediction error
of a successful run is its distance from the EMA it was scheduled with.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from scheduler.stats import percentile

QUANTILES = (0.5, 0.95, 0.99)
THROUGHPUT_WINDOWS = {"1s": 1.0, "1m": 60.0, "5m": 300.0}
OTHER = "_other"
MAX_WINDOW_EVENTS = 10_000
BUCKETS_PER_S = 10


@dataclass(frozen=True, slots=True)
class FinishEvent:
    """One terminal state, as the events stream records it.

    ``wait`` is start - submission, None for tasks that never started;
    ``dispatched_at`` when the task was claimed for the run that ended.
    """

    id: str
    name: str
    state: str
    worker: str
    priority: int | None
    submitted_at: float | None
    started_at: float | None
    finished_at: float
    runtime: float | None
    deadline: float | None
    expected: float | None
    wait: float | None = None
    dispatched_at: float | None = None

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> FinishEvent:
        """Parse one stream entry's fields (missing or empty fields are None)."""

        def num(name: str) -> float | None:
            text = fields.get(name, "")
            return float(text) if text else None

        priority = fields.get("priority", "")
        started = num("started_at") if fields.get("state") in ("succeeded", "failed") else None
        submitted = num("submitted_at")
        wait = None if started is None or submitted is None else max(0.0, started - submitted)
        return cls(
            id=fields.get("id", ""),
            name=fields.get("name", ""),
            state=fields.get("state", ""),
            worker=fields.get("worker", ""),
            priority=int(priority) if priority else None,
            submitted_at=num("submitted_at"),
            started_at=started,
            finished_at=num("finished_at") or 0.0,
            runtime=num("runtime"),
            deadline=num("deadline"),
            expected=num("expected"),
            wait=wait,
            dispatched_at=num("dispatched_at"),
        )

    @property
    def missed_deadline(self) -> bool:
        """Whether the task had a deadline and finished after it (or expired)."""
        if self.deadline is None:
            return False
        return self.state == "expired" or self.finished_at > self.deadline

    @property
    def prediction_error(self) -> float | None:
        """Actual run time minus the EMA it was predicted by (successes with an EMA only)."""
        if self.state != "succeeded" or self.expected is None or self.runtime is None:
            return None
        return self.runtime - self.expected


class EventWindow:
    """The events of the last ``horizon`` seconds, in finishing order.

    At most ``max_events`` events are kept (the newest), so a poll costs the
    same at any rate; the latency and error figures then describe the newest
    ``max_events`` runs. Throughput does not depend on that cap: every event
    is also counted in 0.1 s buckets per task name, which is all a rate needs.

    Args:
        horizon: Seconds of events kept.
        max_events: Most events kept.
    """

    def __init__(self, horizon: float, max_events: int = MAX_WINDOW_EVENTS) -> None:
        self.horizon = horizon
        self._events: deque[FinishEvent] = deque(maxlen=max_events)
        self._buckets: deque[tuple[int, Counter[str]]] = deque()

    def add(self, events: Iterable[FinishEvent]) -> None:
        """Append newer events."""
        for e in events:
            self._events.append(e)
            key = math.floor(e.finished_at * BUCKETS_PER_S)
            if self._buckets and self._buckets[-1][0] >= key:
                self._buckets[-1][1][e.name] += 1
            else:
                self._buckets.append((key, Counter({e.name: 1})))

    def prune(self, now: float) -> None:
        """Drop events older than the horizon."""
        cutoff = now - self.horizon
        while self._events and self._events[0].finished_at < cutoff:
            self._events.popleft()
        while self._buckets and self._buckets[0][0] < cutoff * BUCKETS_PER_S:
            self._buckets.popleft()

    def since(self, start: float, end: float | None = None) -> list[FinishEvent]:
        """Events finished in ``[start, end]`` (end unbounded when None)."""
        return [
            e
            for e in self._events
            if e.finished_at >= start and (end is None or e.finished_at <= end)
        ]

    def counts(self, start: float) -> Counter[str]:
        """Events per task name finished after ``start``, to the 0.1 s bucket (a count can
        miss events of the last 0.1 s before ``start``, never include older ones)."""
        out: Counter[str] = Counter()
        low = math.floor(start * BUCKETS_PER_S + 1e-6)  # the bucket holding ``start``: left out
        for key, counter in reversed(self._buckets):
            if key <= low:
                break
            out.update(counter)
        return out

    def __len__(self) -> int:
        return len(self._events)


def summarize(values: Iterable[float]) -> dict[str, float | None]:
    """count, sum, mean and p50/p95/p99 of ``values`` (None where there is no value)."""
    data = sorted(values)
    total = math.fsum(data)
    out: dict[str, float | None] = {"count": len(data), "sum": total}
    out["mean"] = total / len(data) if data else None
    for q in QUANTILES:  # linear interpolation between closest ranks, as everywhere
        out[f"p{round(q * 100)}"] = percentile(data, q * 100) if data else None
    return out


def label_names(events: Sequence[FinishEvent], limit: int) -> dict[str, str]:
    """Map each task name to its label: the ``limit`` most frequent keep their name,
    the rest become ``_other``, so label cardinality stays bounded."""
    counts = Counter(e.name for e in events)
    kept = {name for name, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]}
    return {name: (name if name in kept else OTHER) for name in counts}


def throughput(window: EventWindow, now: float, labels: dict[str, str]) -> dict[str, Any]:
    """Tasks finished per second over each of :data:`THROUGHPUT_WINDOWS`, total and per task."""
    total: dict[str, float] = {}
    by_task: dict[str, dict[str, float]] = defaultdict(dict)
    names = sorted(set(labels.values()))
    for span, seconds in THROUGHPUT_WINDOWS.items():
        counts: Counter[str] = Counter()
        for name, n in window.counts(now - seconds).items():
            counts[labels.get(name, OTHER)] += n
        total[span] = sum(counts.values()) / seconds
        for name in names:
            by_task[name][span] = counts.get(name, 0) / seconds
    return {"total": total, "by_task": dict(by_task)}


def latency(events: Sequence[FinishEvent], labels: dict[str, str]) -> dict[str, Any]:
    """Wait and run time summaries: overall, per task label and per priority."""
    groups: dict[str, dict[str, dict[str, list[float]]]] = {
        kind: {"all": defaultdict(list), "by_task": defaultdict(list), "by_priority": defaultdict(list)}
        for kind in ("wait", "run")
    }  # fmt: skip
    for e in events:
        if e.state != "succeeded" and e.state != "failed":
            continue
        name, prio = labels[e.name], None if e.priority is None else str(e.priority)
        for kind, value in (("wait", e.wait), ("run", e.runtime)):
            if value is None:
                continue
            g = groups[kind]
            g["all"][""].append(value)
            g["by_task"][name].append(value)
            if prio is not None:
                g["by_priority"][prio].append(value)
    return {
        kind: {
            "all": summarize(g["all"].get("", [])),
            "by_task": {k: summarize(v) for k, v in sorted(g["by_task"].items())},
            "by_priority": {k: summarize(v) for k, v in sorted(g["by_priority"].items())},
        }
        for kind, g in groups.items()
    }


def deadlines(events: Sequence[FinishEvent]) -> dict[str, float]:
    """Tasks with a deadline that reached a terminal state, how many missed, the ratio."""
    with_deadline = [e for e in events if e.deadline is not None and e.state != "cancelled"]
    missed = sum(1 for e in with_deadline if e.missed_deadline)
    ratio = missed / len(with_deadline) if with_deadline else 0.0
    return {"finished": len(with_deadline), "missed": missed, "miss_ratio": ratio}


def prediction(
    events: Sequence[FinishEvent], labels: dict[str, str], floor: float
) -> dict[str, Any]:
    """Mean absolute and relative error of the EMA against actual run time, per task label.

    The relative error divides by ``max(EMA, floor)`` so that timer jitter on
    very short tasks does not read as a bad prediction.
    """
    by_task: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for e in events:
        err = e.prediction_error
        if err is not None and e.expected is not None:
            by_task[labels[e.name]].append((abs(err), abs(err) / max(e.expected, floor)))
    out: dict[str, dict[str, float]] = {}
    for name, rows in sorted(by_task.items()):
        out[name] = {
            "samples": len(rows),
            "mean_abs_error_s": math.fsum(a for a, _ in rows) / len(rows),
            "mean_rel_error": math.fsum(r for _, r in rows) / len(rows),
        }
    samples = sum(int(v["samples"]) for v in out.values())
    overall = (
        math.fsum(v["mean_rel_error"] * v["samples"] for v in out.values()) / samples
        if samples
        else None
    )
    return {"by_task": out, "samples": samples, "mean_rel_error": overall}


def failures(events: Sequence[FinishEvent]) -> dict[str, float]:
    """Runs that ended (succeeded or failed), how many failed, the ratio."""
    ran = [e for e in events if e.state in ("succeeded", "failed")]
    failed = sum(1 for e in ran if e.state == "failed")
    return {"finished": len(ran), "failed": failed, "ratio": failed / len(ran) if ran else 0.0}


def cache_rate(counters: dict[str, int]) -> dict[str, float] | None:
    """Solution-cache hit rate from counters named ``cache_hit*`` / ``cache_miss*``,
    whatever the cache feature calls them exactly; None when there are none."""
    hits = sum(v for k, v in counters.items() if k.startswith("cache_hit"))
    misses = sum(v for k, v in counters.items() if k.startswith("cache_miss"))
    if not any(k.startswith(("cache_hit", "cache_miss")) for k in counters):
        return None
    looked = hits + misses
    return {"hits": hits, "misses": misses, "hit_ratio": hits / looked if looked else 0.0}
