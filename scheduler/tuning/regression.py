"""The regression gate: propose a candidate only when it beats the baseline beyond the noise.

Inputs are the per-task outcomes of the same tasks (the held-out part) under
the baseline and under the candidate, as one :class:`~scheduler.tuning.objectives.TaskOutcomes`
each or as replicates: the part simulated several times with noisy run times,
replicate ``k`` with the same noise under both configurations
(:func:`~scheduler.tuning.evaluate.replicates`). Where they came from is the
caller's business.

The statistics:

- **Improvement**: relative, ``(b - c) / |b|`` with ``b`` and ``c`` the
  objective of baseline and candidate over the tasks (each task's outcome the
  mean over the replicates).
- **Two intervals, both of which must clear the floor** (an intersection-union
  test: each is a test at the confidence asked, so together they are too):

  - *noise*: Student's t interval of the mean of the replicates'
    improvements. Replicates are independent draws of the run times, so this
    interval is honest however long one task's run time moves the flows of
    the tasks behind it: it asks whether the gain survives another draw of
    the run times. (With one replicate there is no such interval.)
  - *traffic*: a paired circular block bootstrap over the tasks in arrival
    order. Each resample draws blocks of ``max(ceil(sqrt(n)), ceil(n / 10))``
    consecutive tasks (wrapping at the end) until it has ``n`` tasks, and
    computes the improvement on those same tasks under both configurations.
    It asks whether the gain is spread over the held-out traffic rather than
    won on a few of its tasks. Alone it is too narrow for a busy queue (its
    blocks are not independent: A/A runs proposed 15 % of the time without a
    floor, benchmarks/tune_speed.py), which is why it is not alone.

  The interval reported is the smallest holding both (low: the lower of the
  two lows).
- **Decision**: proposed only if the configurations differ, the interval's
  low end exceeds ``min_gain``, and no guarded metric worsens beyond its
  tolerance: deadline misses at most ``floor(b * (1 + miss_tolerance))``, p99
  flow at most ``b * (1 + p99_tolerance)`` (point values over all the tasks,
  misses averaged over the replicates).

The resamples are seeded, so the same inputs give the same verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from scheduler.settings import Settings
from scheduler.stats import t_critical
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
        interval: The improvement's interval (low, high): holding both below.
        tasks: Tasks compared.
        guards: The guarded metrics.
        replicates: Noisy replicates each configuration was simulated in.
        noise_interval: Student's t interval over the replicates (None with one).
        traffic_interval: The block bootstrap's interval over the tasks.
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
    replicates: int = 1
    noise_interval: tuple[float, float] | None = None
    traffic_interval: tuple[float, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        for name in ("interval", "noise_interval", "traffic_interval"):
            out[name] = None if out[name] is None else list(out[name])
        return out


def judge(
    baseline: TaskOutcomes | Sequence[TaskOutcomes],
    candidate: TaskOutcomes | Sequence[TaskOutcomes],
    objective: str,
    tolerances: Tolerances,
    *,
    same_config: bool = False,
    seed: int = 0,
) -> Verdict:
    """Compare ``candidate`` with ``baseline`` on the same tasks and decide.

    Args:
        baseline: The current configuration's outcomes, or its replicates.
        candidate: The candidate's, for the same tasks in the same order (as many
            replicates, replicate ``k`` with the same run-time noise as the baseline's).
        objective: One of :data:`~scheduler.tuning.objectives.OBJECTIVES`.
        tolerances: How to decide.
        same_config: The candidate is the baseline itself (never proposed).
        seed: Seed of the resampling.
    """
    base_runs = [baseline] if isinstance(baseline, TaskOutcomes) else list(baseline)
    cand_runs = [candidate] if isinstance(candidate, TaskOutcomes) else list(candidate)
    if not base_runs or len(cand_runs) != len(base_runs):
        raise ValueError(
            f"{len(base_runs)} and {len(cand_runs)} replicates; they must be paired, one or more"
        )
    n = len(base_runs[0])
    if any(len(r) != n for r in base_runs + cand_runs):
        sizes = sorted({len(r) for r in base_runs + cand_runs})
        raise ValueError(f"the outcomes cover {sizes} tasks; they must be paired")
    base, cand = TaskOutcomes.mean(base_runs), TaskOutcomes.mean(cand_runs)
    scale = objectives.value("mean_flow", base, 1.0) or 1.0
    b = objectives.value(objective, base, scale)
    c = objectives.value(objective, cand, scale)
    improvement = _relative(np.asarray([b]), np.asarray([c]))[0]
    traffic = _interval(base, cand, objective, scale, tolerances, seed)
    noise = _noise_interval(base_runs, cand_runs, objective, scale, tolerances.confidence)
    low = traffic[0] if noise is None else min(traffic[0], noise[0])
    high = traffic[1] if noise is None else max(traffic[1], noise[1])
    guards = _guards(base, cand, tolerances)
    shown = _describe(objective, improvement, low, high, tolerances, n, len(base_runs))
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
    return Verdict(
        proposed, reason, objective, b, c, float(improvement), (low, high), n, guards,
        len(base_runs), noise, traffic,
    )  # fmt: skip


def _noise_interval(
    base_runs: Sequence[TaskOutcomes],
    cand_runs: Sequence[TaskOutcomes],
    objective: str,
    scale: float,
    confidence: float,
) -> tuple[float, float] | None:
    """Student's t interval of the mean improvement over replicates (None with one)."""
    r = len(base_runs)
    if r < 2:
        return None
    b = np.asarray([objectives.value(objective, run, scale) for run in base_runs])
    c = np.asarray([objectives.value(objective, run, scale) for run in cand_runs])
    gains = _relative(b, c)
    half = t_critical(confidence, r - 1) * float(gains.std(ddof=1)) / math.sqrt(r)
    mean = float(gains.mean())
    return mean - half, mean + half


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
    objective: str,
    improvement: float,
    low: float,
    high: float,
    tol: Tolerances,
    n: int,
    replicates: int,
) -> str:
    pct = tol.confidence * 100
    runs = f" x {replicates} noisy replicates" if replicates > 1 else ""
    return (
        f"{objective} better by {improvement:+.1%} on {n} held-out tasks{runs}, {pct:g}% interval "
        f"{low:+.1%} to {high:+.1%} against a floor of {tol.min_gain:+.1%}"
    )


def _guard_text(g: Guard) -> str:
    return f"{g.metric} {g.candidate:.4g} against {g.baseline:.4g} (limit {g.limit:.4g})"


def _guard_words(failed: list[Guard]) -> str:
    return "; ".join(f"it worsens {_guard_text(g)}" for g in failed)
