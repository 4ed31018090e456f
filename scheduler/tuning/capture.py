"""Traces of live traffic: what really ran, as a workload file the simulator and tune read.

A task that reached a terminal state left an entry in the events stream (its
name, state, priority, submission, start and finish times, run time,
deadline) and, until ``YM_RESULT_TTL`` passes, its record (its hints, affinity
key, dependencies). :func:`export_trace` joins the two for the tasks
submitted in a time range and writes DESIGN's workload rows:

- ``submit_at``: the submission (Redis time) less the first one of the trace;
- ``duration``: the run time the worker measured (of the last attempt, for a
  retried task); a task that expired unrun gets an estimate (the median run
  time of its name in the trace, else its hint, else the cluster's EMA, else
  ``YM_DEFAULT_DURATION``);
- ``name``: the task's duration key (its name unless submitted with another
  ``duration_key``), since that is what duration estimates are learned by, live
  and in the simulator;
- ``priority``, ``deadline`` (from the same origin), ``expected_duration``,
  ``affinity_key``, ``depends_on`` (the record's field, a JSON list of ids, when
  the cluster records dependencies; parents outside the trace are dropped),
  ``on_parent_failure``, and ``fails`` for a failed run.

Cancelled tasks are left out (a person's decision, not the scheduler's), and
so are tasks still pending or running (they have no run time yet). A run time
is what happened, warm affinity included: the simulator's warm model then
discounts a warm run again, so a trace of tasks whose affinity made them
faster replays a little fast unless simulated with ``YM_WARM_FACTOR=1``.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from scheduler.monitor.metrics import FinishEvent
from scheduler.store import Store
from scheduler.workload import WorkloadTask

RECORD_FIELDS = (
    "duration_key", "expected_duration", "affinity_key", "depends_on", "seq", "on_parent_failure",
)  # fmt: skip
MIN_DURATION = 1e-6  # a workload row's duration must be positive
READ_CHUNK = 10_000
TERMINAL = ("succeeded", "failed", "cancelled", "expired")


@dataclass
class Trace:
    """An exported trace.

    Attributes:
        tasks: The workload rows, in submission order.
        origin: Redis time of the first submission (``submit_at`` 0).
        since: Start of the range asked for (Redis time).
        until: Its end.
        left_out: Tasks in the range not in the trace, by reason.
        estimated: Rows whose duration is an estimate (expired unrun).
        overhead: Mean seconds a run held its slot beyond its run time (dispatch
            to finish, less the run time): the simulator's ``dispatch_overhead``. The
            mean, not the median: a mean flow adds up every run's overhead, and on a
            loaded host the slow tail is what the median leaves out.
        warnings: What the trace cannot show, in sentences.
    """

    tasks: list[WorkloadTask]
    origin: float
    since: float
    until: float
    left_out: dict[str, int] = field(default_factory=dict)
    estimated: int = 0
    overhead: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def header(self) -> str:
        """The file's comment line: what the trace covers (workload readers skip it)."""
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.origin))
        left = ", ".join(f"{n} {why}" for why, n in sorted(self.left_out.items())) or "none"
        return (
            f"# yardmaster trace export: {len(self.tasks)} tasks submitted from {when} "
            f"(Redis time {self.origin:.6f}); left out: {left}; durations estimated: "
            f"{self.estimated}; dispatch overhead (mean) {self.overhead:.6f} s"
        )

    def write(self, path: str | Path) -> None:
        """Write the trace as a workload file (a header comment, then one row per line)."""
        encode = msgspec.json.Encoder().encode
        with open(path, "wb") as out:
            out.write(self.header().encode() + b"\n")
            for row in self.tasks:
                out.write(encode(plain_row(row)) + b"\n")


def export_trace(store: Store, *, since: float, until: float | None = None) -> Trace:
    """The trace of the tasks submitted in ``[since, until]`` (Redis time; ``until`` None: now)
    that reached a terminal state, read from the events stream and the task records."""
    end = store.server_time() if until is None else until
    events = list(_read(store, since))
    warnings: list[str] = []
    first = store.events.read(count=1)
    ended = sum(store.events.counters().get(k, 0) for k in TERMINAL)
    trimmed = ended > store.events.length()
    if trimmed and first and float(first[0][0].split("-")[0]) / 1000 > since:
        warnings.append(
            "the events stream no longer reaches back to the start asked for (it keeps "
            "YM_EVENTS_MAXLEN entries): the trace starts later"
        )
    chosen: dict[str, FinishEvent] = {}
    for event in events:
        if event.submitted_at is not None and since <= event.submitted_at <= end:
            chosen[event.id] = event  # a later entry of the same task wins
    ids = list(chosen)
    records = store.tasks.fields(ids, RECORD_FIELDS) if ids else []
    trace = build_trace(
        [chosen[i] for i in ids], records, estimates=store.events.gauges().durations,
        default_duration=store.settings.default_duration,
    )  # fmt: skip
    trace.since, trace.until = since, end
    trace.warnings = warnings + trace.warnings
    return trace


def build_trace(
    events: Sequence[FinishEvent],
    records: Sequence[dict[str, str]],
    *,
    estimates: dict[str, float],
    default_duration: float,
    origin: float | None = None,
    known: Collection[str] = (),
) -> Trace:
    """The trace of ``events`` (terminal states) with each task's record fields (may be empty).

    Pure: the rolling trace and :func:`export_trace` share it.

    Args:
        origin: The time ``submit_at`` counts from (None: the first submission).
        known: Ids of tasks already in the trace (parents a row may keep).
    """
    left: Counter[str] = Counter()
    kept: list[tuple[FinishEvent, dict[str, str]]] = []
    for event, record in zip(events, records, strict=True):
        if event.state == "cancelled":
            left["cancelled"] += 1
        elif event.state not in ("succeeded", "failed", "expired"):
            left[f"state {event.state}"] += 1
        elif event.submitted_at is None:
            left["no submission time"] += 1
        else:
            kept.append((event, record))
    missing = sum(1 for _, record in kept if not record)
    kept.sort(key=lambda pair: (pair[0].submitted_at or 0.0, _seq(pair[1])))
    if origin is None:
        origin = (kept[0][0].submitted_at or 0.0) if kept else 0.0
    ran: dict[str, list[float]] = {}
    for event, record in kept:
        if event.runtime is not None and event.state != "expired":
            ran.setdefault(_name(event, record), []).append(event.runtime)
    medians = {name: statistics.median(values) for name, values in ran.items()}
    ids = {event.id for event, _ in kept} | set(known)
    rows: list[WorkloadTask] = []
    estimated = dropped = 0
    for event, record in kept:
        name = _name(event, record)
        hint = _positive(record.get("expected_duration"))
        if event.runtime is not None and event.state != "expired":
            duration = max(event.runtime, MIN_DURATION)
        else:
            estimated += 1
            duration = medians.get(name) or hint or estimates.get(name) or default_duration
        parents = _parents(record.get("depends_on"))
        inside = tuple(p for p in parents if p in ids)
        dropped += len(parents) - len(inside)
        rows.append(
            WorkloadTask(
                id=event.id,
                name=name,
                submit_at=max(0.0, (event.submitted_at or origin) - origin),
                duration=duration,
                priority=5 if event.priority is None else min(9, max(0, event.priority)),
                deadline=None if event.deadline is None else max(0.0, event.deadline - origin),
                expected_duration=hint,
                affinity_key=record.get("affinity_key") or None,
                depends_on=inside,
                fails=event.state == "failed",
                on_parent_failure="run" if record.get("on_parent_failure") == "run" else "cancel",
            )
        )
    warnings = []
    if missing:
        warnings.append(
            f"{missing} tasks had no record left (YM_RESULT_TTL passed): their hints, affinity "
            "keys and dependencies are not in the trace"
        )
    if dropped:
        warnings.append(f"{dropped} dependencies on tasks outside the trace were dropped")
    return Trace(rows, origin, origin, origin, dict(left), estimated, _overhead(kept), warnings)


def _read(store: Store, since: float) -> Iterable[FinishEvent]:
    """Every event finished at or after ``since`` (a task submitted then finished later)."""
    rows = store.events.read(since=since, count=READ_CHUNK)
    while rows:
        yield from (FinishEvent.from_fields(fields) for _, fields in rows)
        if len(rows) < READ_CHUNK:
            return
        rows = store.events.read(after=rows[-1][0], count=READ_CHUNK)


def _overhead(kept: Sequence[tuple[FinishEvent, dict[str, str]]]) -> float:
    held = [
        e.finished_at - e.dispatched_at - e.runtime
        for e, _ in kept
        if e.dispatched_at is not None and e.runtime is not None and e.state != "expired"
    ]
    return max(0.0, statistics.fmean(held)) if held else 0.0


def _name(event: FinishEvent, record: dict[str, str]) -> str:
    return record.get("duration_key") or event.name or "?"


def _seq(record: dict[str, str]) -> int:
    text = record.get("seq", "")
    return int(text) if text.isdigit() else 0


def _positive(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and value > 0 else None


def _parents(text: str | None) -> tuple[str, ...]:
    """A record's dependencies: a JSON list of ids (or ids separated by commas)."""
    if not text:
        return ()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text.split(",")
    if isinstance(value, str):
        value = [value]
    return tuple(str(v).strip() for v in value if str(v).strip()) if isinstance(value, list) else ()


def plain_row(row: WorkloadTask) -> dict[str, object]:
    """A row without the fields at their defaults, as ``workload gen`` writes them."""
    out: dict[str, object] = {
        "id": row.id, "name": row.name, "submit_at": round(row.submit_at, 6),
        "duration": round(row.duration, 6) or MIN_DURATION, "priority": row.priority,
    }  # fmt: skip
    if row.deadline is not None:
        out["deadline"] = round(row.deadline, 6)
    if row.expected_duration is not None:
        out["expected_duration"] = row.expected_duration
    if row.affinity_key is not None:
        out["affinity_key"] = row.affinity_key
    if row.depends_on:
        out["depends_on"] = list(row.depends_on)
    if row.on_parent_failure != "cancel":
        out["on_parent_failure"] = row.on_parent_failure
    if row.fails:
        out["fails"] = True
    return out
