"""Synthetic workloads, each shaped to show what one kind of strategy is for.

:func:`generate` is pure and deterministic: the same arguments give the same
tasks, drawn from one ``random.Random(seed)``. Load is relative to the
cluster's capacity (``workers * slots`` slots busy all the time is load 1),
and every duration, gap and deadline is multiplied by ``scale``, so a
workload keeps its shape at any speed.

Kinds:
    mixed: five task types of stable, distinct durations (about 0.06 to
        0.45 s, +-10 %), Poisson arrivals at 85 % load, priorities 0..9, a
        third with affinity keys, a fifth with deadlines of moderate slack.
    bursty: bursts of about ten tasks per slot submitted within 2 ms, each
        followed by an idle gap long enough for any work-conserving strategy
        to drain it.
    deadlines: every task has ``deadline = submit_at + slack * duration``
        with slack from 1.2 to 6, at 95 % load, arrivals paced by work.
    affinity: every task carries one of ``warm_capacity * workers`` keys: more
        than one worker keeps warm, as many as the cluster does; 95 % load
        counted at cold run times.
    phases: (a) tight deadlines whose slack does not follow the duration,
        (b) one burst of half the tasks without deadlines, (c) arrivals with
        priorities spread over 0..9; each phase drains before the next.
"""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass

from scheduler.errors import InvalidInputError
from scheduler.workload import WorkloadTask

KINDS: tuple[str, ...] = ("mixed", "bursty", "deadlines", "affinity", "phases")
MAX_TASKS = 10_000_000
# DESIGN.md's warm model: a worker keeps its 4 most recently used keys warm.
DEFAULT_WARM_CAPACITY = 4
# Submissions of one burst fall within this many seconds (times scale).
BURST_SPREAD = 0.002


@dataclass(frozen=True, slots=True)
class TaskType:
    """A task type: its name, base run time in seconds, and share of the mix."""

    name: str
    duration: float
    weight: float


TASK_TYPES: tuple[TaskType, ...] = (
    TaskType("thumbnail", 0.06, 0.35),
    TaskType("resize", 0.10, 0.25),
    TaskType("ocr", 0.18, 0.20),
    TaskType("report", 0.30, 0.12),
    TaskType("export", 0.45, 0.08),
)
_WEIGHTS = [t.weight for t in TASK_TYPES]
MEAN_DURATION = sum(t.duration * t.weight for t in TASK_TYPES) / sum(_WEIGHTS)
MAX_DURATION = max(t.duration for t in TASK_TYPES) * 1.1
# Phase (a): seconds (times scale) a task may finish after its intended finish.
TIGHT_SLACK = 0.05


class _Builder:
    """Draws tasks for one workload from one random stream."""

    def __init__(self, rng: random.Random, capacity: int, scale: float) -> None:
        self.rng = rng
        self.capacity = capacity
        self.scale = scale
        self.tasks: list[WorkloadTask] = []

    def duration(self) -> tuple[str, float]:
        """A task type and its run time (+-10 % around the type's)."""
        kind = self.rng.choices(TASK_TYPES, weights=_WEIGHTS)[0]
        return kind.name, kind.duration * self.scale * self.rng.uniform(0.9, 1.1)

    def arrivals(self, count: int, load: float, start: float) -> list[float]:
        """``count`` Poisson arrival times from ``start`` at ``load`` of capacity."""
        rate = load * self.capacity / (MEAN_DURATION * self.scale)
        times, t = [], start
        for _ in range(count):
            t += self.rng.expovariate(rate)
            times.append(t)
        return times

    def paced(self, durations: list[float], load: float, jitter: float = 10.0) -> list[float]:
        """Arrival times that bring in work at ``load`` of capacity on average.

        Each task arrives when the work before it is due, moved later by up to
        ``jitter`` mean run times: local bursts, but no long drift into overload.
        """
        times, work = [], 0.0
        spread = jitter * MEAN_DURATION * self.scale
        for duration in durations:
            times.append(work / (load * self.capacity) + self.rng.uniform(0, spread))
            work += duration
        return times

    def burst(self, count: int, start: float) -> list[float]:
        """``count`` submission times within :data:`BURST_SPREAD` of ``start``."""
        return sorted(start + self.rng.uniform(0, BURST_SPREAD * self.scale) for _ in range(count))

    def add(
        self,
        task_id: str,
        name: str,
        submit_at: float,
        duration: float,
        *,
        priority: int = 5,
        deadline: float | None = None,
        affinity_key: str | None = None,
    ) -> None:
        self.tasks.append(
            WorkloadTask(
                id=task_id,
                name=name,
                submit_at=round(submit_at, 6),
                duration=round(duration, 6),
                priority=priority,
                deadline=None if deadline is None else round(deadline, 6),
                affinity_key=affinity_key,
            )
        )

    def drained(self, since: int) -> float:
        """A time by which every work-conserving schedule has run the tasks added since ``since``.

        From the last submission, the remaining work spread over every slot,
        plus one longest task (list scheduling's bound), plus a mean task of margin.
        """
        added = self.tasks[since:]
        work = sum(t.duration for t in added)
        last = max(t.submit_at for t in added)
        longest = max(t.duration for t in added)
        return last + work / self.capacity + longest + MEAN_DURATION * self.scale


def _mixed(b: _Builder, n: int, workers: int, warm_capacity: int) -> None:
    keys = 2 * warm_capacity * workers
    for i, at in enumerate(b.arrivals(n, 0.85, 0.0)):
        name, duration = b.duration()
        key = f"user-{b.rng.randrange(keys)}" if b.rng.random() < 1 / 3 else None
        deadline = None
        if b.rng.random() < 0.2:
            deadline = at + duration + b.rng.uniform(3, 10) * MEAN_DURATION * b.scale
        b.add(
            f"t{i}",
            name,
            at,
            duration,
            priority=b.rng.randint(0, 9),
            deadline=deadline,
            affinity_key=key,
        )


def _bursty(b: _Builder, n: int) -> None:
    typical = 10 * b.capacity
    start, i = 0.0, 0
    while i < n:
        size = min(n - i, b.rng.randint(max(1, typical // 2), typical * 3 // 2))
        first = len(b.tasks)
        for at in b.burst(size, start):
            name, duration = b.duration()
            b.add(f"t{i}", name, at, duration, priority=b.rng.randint(0, 9))
            i += 1
        start = b.drained(first) + b.rng.uniform(0, 2) * MEAN_DURATION * b.scale


def _deadlines(b: _Builder, n: int) -> None:
    # Arrivals paced by work, not Poisson: at 95 % load a Poisson queue drifts
    # into long overloads where every order misses nearly everything.
    drawn = [b.duration() for _ in range(n)]
    rows = sorted(zip(b.paced([d for _, d in drawn], 0.95), drawn, strict=True))
    for i, (at, (name, duration)) in enumerate(rows):
        deadline = at + b.rng.uniform(1.2, 6.0) * duration
        b.add(f"t{i}", name, at, duration, priority=b.rng.randint(0, 9), deadline=deadline)


def _affinity(b: _Builder, n: int, workers: int, warm_capacity: int) -> None:
    keys = max(warm_capacity + 1, warm_capacity * workers)
    for i, at in enumerate(b.arrivals(n, 0.95, 0.0)):
        name, duration = b.duration()
        key = f"key-{b.rng.randrange(keys)}"
        b.add(f"t{i}", name, at, duration, priority=b.rng.randint(0, 9), affinity_key=key)


def phase_sizes(n: int) -> tuple[int, int, int]:
    """Tasks in phases (a), (b) and (c): a quarter, a half, the rest."""
    a = max(1, n // 4)
    b = max(1, n // 2)
    return a, b, n - a - b


def _phases(b: _Builder, n: int) -> None:
    size_a, size_b, size_c = phase_sizes(n)
    i = 0
    # (a) rounds of tasks submitted together whose deadlines follow a random
    # intended schedule: the nearest deadline first meets nearly all of them,
    # while submission order and shortest-first both stray from it.
    first = len(b.tasks)
    start = 0.0
    while i < size_a:
        count = min(size_a - i, 3 * b.capacity)
        drawn = [b.duration() for _ in range(count)]
        intended = list(range(count))
        b.rng.shuffle(intended)
        free = [start] * b.capacity
        finish = [0.0] * count
        for j in intended:
            begin = heapq.heappop(free)
            finish[j] = begin + drawn[j][1]
            heapq.heappush(free, finish[j])
        for (name, duration), done in zip(drawn, finish, strict=True):
            b.add(f"a{i}", name, start, duration, deadline=done + TIGHT_SLACK * b.scale)
            i += 1
        start = max(finish) + b.rng.uniform(0.5, 1.5) * MEAN_DURATION * b.scale
    # (b) one burst, no deadlines, one priority: only the order by length matters.
    start = b.drained(first)
    first = len(b.tasks)
    for at in b.burst(size_b, start):
        name, duration = b.duration()
        b.add(f"b{i}", name, at, duration)
        i += 1
    # (c) priorities over the whole range, no deadlines.
    start = b.drained(first)
    for at in b.arrivals(size_c, 0.9, start):
        name, duration = b.duration()
        b.add(f"c{i}", name, at, duration, priority=b.rng.randint(0, 9))
        i += 1


def generate(
    kind: str,
    n: int,
    seed: int,
    *,
    workers: int = 2,
    slots: int = 1,
    scale: float = 1.0,
    warm_capacity: int = DEFAULT_WARM_CAPACITY,
) -> list[WorkloadTask]:
    """Generate ``n`` tasks of ``kind`` for ``workers`` x ``slots``, in submission order.

    Raises:
        InvalidInputError: Naming the argument, its value and what is allowed.
    """
    if kind not in KINDS:
        raise InvalidInputError("kind", kind, "one of: " + ", ".join(KINDS))
    lowest = 3 if kind == "phases" else 1
    if isinstance(n, bool) or not isinstance(n, int) or not lowest <= n <= MAX_TASKS:
        raise InvalidInputError(
            "n", n, f"an integer from {lowest} to {MAX_TASKS}" + (" (three phases)" * (lowest > 1))
        )
    for field, value in (("workers", workers), ("slots", slots), ("warm_capacity", warm_capacity)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(field, value, "an integer >= 1")
    if not 0.001 <= scale <= 1000.0:
        raise InvalidInputError("scale", scale, "a number from 0.001 to 1000")
    b = _Builder(random.Random(seed), workers * slots, scale)
    if kind == "mixed":
        _mixed(b, n, workers, warm_capacity)
    elif kind == "bursty":
        _bursty(b, n)
    elif kind == "deadlines":
        _deadlines(b, n)
    elif kind == "affinity":
        _affinity(b, n, workers, warm_capacity)
    else:
        _phases(b, n)
    return b.tasks


def to_jsonl(tasks: Iterable[WorkloadTask], header: str | None = None) -> str:
    """Workload file text: an optional ``#`` header line, then one JSON object per task."""
    lines = [] if header is None else [f"# {header}"]
    for t in tasks:
        row: dict[str, object] = {
            "id": t.id,
            "name": t.name,
            "submit_at": t.submit_at,
            "duration": t.duration,
            "priority": t.priority,
        }
        if t.deadline is not None:
            row["deadline"] = t.deadline
        if t.expected_duration is not None:
            row["expected_duration"] = t.expected_duration
        if t.affinity_key is not None:
            row["affinity_key"] = t.affinity_key
        if t.depends_on:
            row["depends_on"] = list(t.depends_on)
        if t.fails:
            row["fails"] = True
        if t.on_parent_failure != "cancel":
            row["on_parent_failure"] = t.on_parent_failure
        lines.append(json.dumps(row))
    return "\n".join(lines) + "\n"
