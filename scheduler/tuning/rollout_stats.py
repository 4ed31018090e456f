"""The guard's statistics: has a live window after a switch regressed against the one before?

Each window holds the tasks submitted in it that ended (from the events
stream), cut into time buckets by submission. Tasks of one bucket share a
busy period, so their flows rise and fall together (in a busy queue one task's
run time moves every task behind it): the bootstrap resamples **buckets**, not
tasks (a cluster bootstrap), and a window is judged only once it holds
``MIN_BUCKETS`` of them. Per metric:

- ``mean_flow``, ``p95_flow``: the relative change ``after / before - 1``; a
  regression when its interval's low end is above the flow tolerance;
- ``miss_ratio`` (of tasks with a deadline), ``failure_ratio`` (of runs): the
  excess ``after - before * (1 + tolerance)``; a regression when its interval's
  low end is above 0 (so with none before, any clear rise is one).

The guard looks several times as a window fills; each look uses the
confidence divided among the looks (Bonferroni), so the chance that a version
no worse than the one before is rolled back at some look stays within
``1 - confidence``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scheduler.monitor.metrics import FinishEvent
from scheduler.tuning.regression import Tolerances

RESAMPLES = 2000
MIN_BUCKETS = 5
ENDED = ("succeeded", "failed", "expired")
Array = np.ndarray[Any, np.dtype[Any]]


@dataclass(frozen=True)
class Sample:
    """Values (one per task) and the bucket each task belongs to."""

    values: Array
    bucket: Array

    def stat(self, statistic: str) -> float | None:
        """The statistic over every value (None when there is none)."""
        if not len(self.values):
            return None
        if statistic == "p95":
            return float(np.percentile(self.values, 95))
        return float(self.values.mean())


@dataclass(frozen=True)
class Window:
    """The tasks submitted in one window that ended."""

    flow: Sample  # each run's flow
    missed: Sample  # 1/0 per task with a deadline
    failed: Sample  # 1/0 per run

    @classmethod
    def of(cls, events: Sequence[FinishEvent], start: float, end: float, bucket: float) -> Window:
        """The events of tasks submitted in ``[start, end)``, in buckets of ``bucket`` seconds."""
        chosen = [
            e
            for e in events
            if e.state in ENDED and e.submitted_at is not None and start <= e.submitted_at < end
        ]
        ran = [e for e in chosen if e.state != "expired"]
        dated = [e for e in chosen if e.deadline is not None]

        def where(rows: list[FinishEvent]) -> Array:
            return np.asarray([int(((e.submitted_at or start) - start) // bucket) for e in rows])

        return cls(
            Sample(np.asarray([e.finished_at - (e.submitted_at or 0.0) for e in ran]), where(ran)),
            Sample(np.asarray([float(e.missed_deadline) for e in dated]), where(dated)),
            Sample(np.asarray([float(e.state == "failed") for e in ran]), where(ran)),
        )

    @property
    def buckets(self) -> int:
        """Buckets holding a run."""
        return len(np.unique(self.flow.bucket))

    def summary(self) -> dict[str, float | int | None]:
        """The window's figures, for the verdict."""
        return {
            "tasks": len(self.flow.values),
            "buckets": self.buckets,
            "mean_flow": self.flow.stat("mean"),
            "p95_flow": self.flow.stat("p95"),
            "miss_ratio": self.missed.stat("mean"),
            "failure_ratio": self.failed.stat("mean"),
        }


@dataclass(frozen=True)
class Regression:
    """One metric worse beyond its tolerance: its values and the change's interval."""

    metric: str
    before: float
    after: float
    low: float
    tolerance: float

    def words(self) -> str:
        """The regression in a phrase."""
        if self.metric.endswith("_ratio"):
            return (
                f"{self.metric} {self.after:.1%} against {self.before:.1%} before (the rise "
                f"beyond the tolerance of {self.tolerance:.0%} is at least {self.low:.1%} points)"
            )
        return (
            f"{self.metric} {self.after:.3f}s against {self.before:.3f}s before (worse by "
            f"{self.after / self.before - 1:+.0%}, at least {self.low:+.0%}; tolerance "
            f"{self.tolerance:.0%})"
        )


def judgeable(before: Window, after: Window, min_tasks: int) -> bool:
    """Whether both windows hold enough tasks and buckets to be compared."""
    tasks = min(len(before.flow.values), len(after.flow.values))
    return tasks >= min_tasks and min(before.buckets, after.buckets) >= MIN_BUCKETS


def regressions(
    before: Window, after: Window, tol: Tolerances, *, looks: int = 1, seed: int = 0
) -> list[Regression]:
    """The metrics of ``after`` worse than ``before`` beyond their tolerances, at the
    confidence ``tol.confidence`` shared among ``looks`` looks (see the module docstring)."""
    rng = np.random.default_rng(seed)
    tail = (1.0 - tol.confidence) / looks / 2.0 * 100.0
    found: list[Regression] = []
    for metric, statistic in (("mean_flow", "mean"), ("p95_flow", "p95")):
        b, a = _resampled(before.flow, statistic, rng), _resampled(after.flow, statistic, rng)
        low = float(np.percentile(a / np.maximum(b, 1e-12) - 1.0, tail))
        if low > tol.p99_tolerance:
            found.append(_found(metric, before.flow, after.flow, statistic, low, tol.p99_tolerance))
    for metric, b_rows, a_rows in (
        ("miss_ratio", before.missed, after.missed),
        ("failure_ratio", before.failed, after.failed),
    ):
        if not len(b_rows.values) or not len(a_rows.values):
            continue
        b, a = _resampled(b_rows, "mean", rng), _resampled(a_rows, "mean", rng)
        low = float(np.percentile(a - b * (1.0 + tol.miss_tolerance), tail))
        if low > 0.0:
            found.append(_found(metric, b_rows, a_rows, "mean", low, tol.miss_tolerance))
    return found


def _found(
    metric: str, before: Sample, after: Sample, statistic: str, low: float, tolerance: float
) -> Regression:
    return Regression(
        metric, before.stat(statistic) or 0.0, after.stat(statistic) or 0.0, low, tolerance
    )


def _resampled(sample: Sample, statistic: str, rng: np.random.Generator) -> Array:
    """The statistic over ``RESAMPLES`` resamples of the sample's buckets (with replacement)."""
    kept, index = np.unique(sample.bucket, return_inverse=True)
    n = len(kept)
    draws = rng.integers(0, n, size=(RESAMPLES, n))
    times = np.zeros((RESAMPLES, n))
    np.add.at(times, (np.arange(RESAMPLES)[:, None], draws), 1.0)  # how often each bucket
    return STATISTICS[statistic](sample.values, index, times)


def _mean(values: Array, index: Array, times: Array) -> Array:
    sums = np.bincount(index, weights=values, minlength=times.shape[1])
    counts = np.bincount(index, minlength=times.shape[1]).astype(np.float64)
    return np.asarray((times @ sums) / np.maximum(times @ counts, 1e-12))


def _p95(values: Array, index: Array, times: Array) -> Array:
    """The 95th percentile of each resample, every task weighted by its bucket's draws."""
    order = np.argsort(values, kind="stable")
    weights = np.cumsum(times[:, index[order]], axis=1)
    rank = (weights < 0.95 * weights[:, -1:]).sum(axis=1)
    return np.asarray(values[order][np.minimum(rank, len(values) - 1)])


STATISTICS: dict[str, Callable[[Array, Array, Array], Array]] = {"mean": _mean, "p95": _p95}
