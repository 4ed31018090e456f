"""The regression gate: propose a candidate only when it beats the baseline beyond the noise.

Inputs are two :class:`~scheduler.tuning.objectives.TaskOutcomes` of the same
tasks (the held-out part) under the baseline and under the candidate; where
they came from (a simulation, or one day a live window) is the caller's
business, so the guarded rollout can reuse this gate as it is.

The statistics:

- **Improvement**: relative, ``(b - c) / |b|`` with ``b`` and ``c`` the
  objective of baseline and candidate over the tasks.
- **Its interval**: a paired circular block bootstrap over the tasks in
  arrival order. Each resample draws blocks of ``max(ceil(sqrt(n)), ceil(n /
  10))`` consecutive tasks (wrapping at the end) until it has ``n`` tasks, and computes the
  improvement on those same tasks under both configurations (paired: the
  noise common to both cancels). Blocks, not single tasks, because
  neighbouring tasks share a queue: their flows are correlated, and resampling
  them one by one would make the interval too narrow. The interval is the
  central ``confidence`` share of the resampled improvements (percentile
  method).
- **Decision**: proposed only if the configurations differ, the interval's
  low end exceeds ``min_gain``, and no guarded metric worsens beyond its
  tolerance: deadline misses at most ``floor(b * (1 + miss_tolerance))``, p99
  flow at most ``b * (1 + p99_tolerance)`` (point values over all the tasks).

The resamples are seeded, so the same inputs give the same verdict.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from scheduler.settings import Settings
from scheduler.tuning import objectives
from scheduler.tuning.objectives import Floats, TaskOutcomes

BATCH_CELLS = 4_000_000  # resampled task indices held in memory at once
# A resample is made of at most this many blocks: in a busy queue, one task's
# run time moves the flows of every task behind it for a long while, and blocks
# shorter than that made the interval too narrow (A/A runs, benchmarks/tune_speed.py).
MAX_BLOCKS = 10


@dataclass(frozen=True)
class Tolerances:
    """How the gate decides (``YM_TUNE_*`` settings).

    Attributes:
        confidence: Share of resampled improvements inside the interval.
        resamples: Bootstrap resamples.
        min_gain: Relative improvement the interval's low end must exceed.
        miss_tolerance: Relative rise in deadline misses allowed.
        p99_tolerance: Relative rise in p99 flow allowed.
    """

    confidence: float = 0.95
    resamples: int = 2000
    min_gain: float = 0.01
    miss_tolerance: float = 0.05
    p99_tolerance: float = 0.05

    @classmethod
    def from_settings(cls, settings: Settings) -> Tolerances:
        """The tolerances a cluster's settings give."""
        return cls(
            confidence=settings.tune_confidence,
            resamples=settings.tune_resamples,
            min_gain=settings.tune_min_gain,
            miss_tolerance=settings.tune_miss_tolerance,
            p99_tolerance=settings.tune_p99_tolerance,
        )


@dataclass(frozen=True)
class Guard:
    """One guarded metric: the baseline's value, the candidate's, the limit, and whether it held."""

    metric: str
    baseline: float
    candidate: float
    limit: float
    held: bool


@dataclass(frozen=True)
class Verdict:
    """The gate's answer, in numbers and in plain words.

    Attributes:
        proposed: Whether the candidate should replace the baseline.
        reason: Why, in a sentence.
        objective: The objective compared.
        baseline: Its value under the baseline, over every held-out task.
        candidate: Its value under the candidate.
        improvement: Relative improvement (positive: the candidate is better).
        interval: The improvement's bootstrap interval (low, high).
        tasks: Tasks compared.
        guards: The guarded metrics.
    """

    proposed: bool
    reason: str
    objective: str
    baseline: float
    candidate: float
    improvement: float
    interval: tuple[float, float]
    tasks: int
    guards: list[Guard] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["interval"] = list(self.interval)
        return out


def judge(
    baseline: TaskOutcomes,
    candidate: TaskOutcomes,
    objective: str,
    tolerances: Tolerances,
    *,
    same_config: bool = False,
    seed: int = 0,
) -> Verdict:
    """Compare ``candidate`` with ``baseline`` on the same tasks and decide.

    Args:
        baseline: The current configuration's outcomes.
        candidate: The candidate's, for the same tasks in the same order.
        objective: One of :data:`~scheduler.tuning.objectives.OBJECTIVES`.
        tolerances: How to decide.
        same_config: The candidate is the baseline itself (never proposed).
        seed: Seed of the resampling.
    """
    n = len(baseline)
    if len(candidate) != n:
        raise ValueError(f"the outcomes cover {n} and {len(candidate)} tasks; they must be paired")
    scale = objectives.value("mean_flow", baseline, 1.0) or 1.0
    b = objectives.value(objective, baseline, scale)
    c = objectives.value(objective, candidate, scale)
    improvement = _relative(np.asarray([b]), np.asarray([c]))[0]
    low, high = _interval(baseline, candidate, objective, scale, tolerances, seed)
    guards = _guards(baseline, candidate, tolerances)
    shown = _describe(objective, improvement, low, high, tolerances, n)
    failed = [g for g in guards if not g.held]
    if same_config:
        proposed, reason = False, "not proposed: the best configuration found is the current one"
    elif not low > tolerances.min_gain:
        proposed = False
        reason = f"not proposed: the gain is within the noise ({shown})"
    elif failed:
        proposed = False
        reason = f"not proposed: {_guard_words(failed)} ({shown})"
    else:
        proposed = True
        held = "; ".join(_guard_text(g) for g in guards)
        reason = f"proposed: {shown}; {held}"
    return Verdict(proposed, reason, objective, b, c, float(improvement), (low, high), n, guards)


def _relative(b: Floats, c: Floats) -> Floats:
    scale = np.maximum(np.abs(b), 1e-12)
    return np.asarray((b - c) / scale, dtype=np.float64)


def _interval(
    baseline: TaskOutcomes,
    candidate: TaskOutcomes,
    objective: str,
    scale: float,
    tolerances: Tolerances,
    seed: int,
) -> tuple[float, float]:
    n = len(baseline)
    block = max(1, math.ceil(math.sqrt(n)), math.ceil(n / MAX_BLOCKS))
    blocks = math.ceil(n / block)
    rng = np.random.default_rng(seed)
    offsets = np.arange(block)
    per_batch = max(1, BATCH_CELLS // max(1, n))
    found: list[Floats] = []
    left = tolerances.resamples
    while left > 0:
        size = min(left, per_batch)
        starts = rng.integers(0, n, size=(size, blocks))
        rows = ((starts[:, :, None] + offsets) % n).reshape(size, -1)[:, :n]
        b = objectives.values(objective, baseline, rows, scale)
        c = objectives.values(objective, candidate, rows, scale)
        found.append(_relative(b, c))
        left -= size
    resampled = np.concatenate(found)
    tail = (1.0 - tolerances.confidence) / 2.0 * 100.0
    low, high = np.percentile(resampled, [tail, 100.0 - tail])
    return float(low), float(high)


def _guards(baseline: TaskOutcomes, candidate: TaskOutcomes, tol: Tolerances) -> list[Guard]:
    b_miss = float(baseline.missed.sum())
    c_miss = float(candidate.missed.sum())
    miss_limit = float(math.floor(b_miss * (1.0 + tol.miss_tolerance) + 1e-9))
    b_p99 = objectives.flow_percentile(baseline, 99.0)
    c_p99 = objectives.flow_percentile(candidate, 99.0)
    p99_limit = b_p99 * (1.0 + tol.p99_tolerance)
    return [
        Guard("deadline_misses", b_miss, c_miss, miss_limit, c_miss <= miss_limit),
        Guard("p99_flow", b_p99, c_p99, p99_limit, c_p99 <= p99_limit + 1e-12),
    ]


def _describe(
    objective: str, improvement: float, low: float, high: float, tol: Tolerances, n: int
) -> str:
    pct = tol.confidence * 100
    return (
        f"{objective} better by {improvement:+.1%} on {n} held-out tasks, {pct:g}% interval "
        f"{low:+.1%} to {high:+.1%} against a floor of {tol.min_gain:+.1%}"
    )


def _guard_text(g: Guard) -> str:
    return f"{g.metric} {g.candidate:.4g} against {g.baseline:.4g} (limit {g.limit:.4g})"


def _guard_words(failed: list[Guard]) -> str:
    return "; ".join(f"it worsens {_guard_text(g)}" for g in failed)
