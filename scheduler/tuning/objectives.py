"""What tuning minimises, measured task by task so the gate can resample tasks.

A simulated schedule becomes :class:`TaskOutcomes`: per task (in the order of
the trace part simulated) its flow, its lateness and whether it missed its
deadline. An objective is a statistic of those over any subset of the tasks:

- ``mean_flow``: the mean flow;
- ``p95_flow``: the 95th percentile of flow (linear interpolation, as the
  simulator's metrics);
- ``max_lateness``: the largest lateness (needs tasks with deadlines);
- ``misses_then_flow``: deadline misses first, then mean flow, as one number:
  ``misses + m / (m + s)`` with ``m`` the mean flow and ``s`` a fixed scale (the
  baseline's mean flow on the same part). The second term is below 1, so one
  miss fewer always wins, and among equal misses the lower flow wins.

Tasks that did not run (expired by ``edf``'s policy, or cancelled because a
parent failed) have no flow; an expired task counts as a miss.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from scheduler.errors import InvalidInputError

OBJECTIVES: tuple[str, ...] = ("mean_flow", "p95_flow", "misses_then_flow", "max_lateness")
Floats = npt.NDArray[np.float64]
Indices = npt.NDArray[np.intp]


@dataclass(frozen=True)
class TaskOutcomes:
    """What happened to each task of one simulated part, as arrays in the part's order.

    Attributes:
        flow: Finish minus submission (NaN for a task that did not run).
        lateness: Finish minus deadline (NaN without a deadline or a finish).
        missed: 1.0 when the deadline was missed or the task expired, else 0.0.
        metrics: The simulator's metrics of the whole part (``outcome_metrics``).
    """

    flow: Floats
    lateness: Floats
    missed: Floats
    metrics: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.flow)

    @classmethod
    def concat(cls, parts: Sequence[TaskOutcomes]) -> TaskOutcomes:
        """The parts one after the other (metrics are not merged)."""
        return cls(
            np.concatenate([p.flow for p in parts]),
            np.concatenate([p.lateness for p in parts]),
            np.concatenate([p.missed for p in parts]),
        )

    @classmethod
    def mean(cls, replicates: Sequence[TaskOutcomes]) -> TaskOutcomes:
        """Task by task, the mean over replicates of the same tasks (a flow or lateness
        over the replicates where the task ran; ``missed`` becomes the share that missed)."""
        if len(replicates) == 1:
            return replicates[0]
        with warnings.catch_warnings():  # a task that ran in no replicate stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            return cls(
                np.nanmean([r.flow for r in replicates], axis=0),
                np.nanmean([r.lateness for r in replicates], axis=0),
                np.mean([r.missed for r in replicates], axis=0),
            )


def check_objective(name: str) -> str:
    """Return ``name`` if it is an objective.

    Raises:
        InvalidInputError: Naming ``--objective`` and the objectives.
    """
    if name not in OBJECTIVES:
        raise InvalidInputError("--objective", name, "one of: " + ", ".join(OBJECTIVES))
    return name


def value(name: str, outcomes: TaskOutcomes, scale: float) -> float:
    """The objective over every task (``scale``: see ``misses_then_flow``)."""
    return float(values(name, outcomes, np.arange(len(outcomes))[None, :], scale)[0])


def flow_percentile(outcomes: TaskOutcomes, q: float) -> float:
    """The ``q``-th percentile of flow over every task that ran (0 when none ran)."""
    return float(_nan_percentile(outcomes.flow[None, :], q)[0])


def values(name: str, outcomes: TaskOutcomes, rows: Indices, scale: float) -> Floats:
    """The objective over each row of task indices (a 2-D array, one resample a row)."""
    if name == "mean_flow":
        return _mean_flow(outcomes.flow[rows])
    if name == "p95_flow":
        return _nan_percentile(outcomes.flow[rows], 95.0)
    if name == "max_lateness":
        late = outcomes.lateness[rows]
        has = ~np.isnan(late).all(axis=1)
        out = np.zeros(len(rows))
        out[has] = np.nanmax(late[has], axis=1)
        return out
    mean = _mean_flow(outcomes.flow[rows])
    return np.asarray(outcomes.missed[rows].sum(axis=1) + mean / (mean + scale), dtype=np.float64)


def _mean_flow(flows: Floats) -> Floats:
    ran = ~np.isnan(flows)
    count = ran.sum(axis=1)
    total = np.where(ran, flows, 0.0).sum(axis=1)
    return np.asarray(np.divide(total, count, out=np.zeros(len(flows)), where=count > 0))


def _nan_percentile(flows: Floats, q: float) -> Floats:
    if not np.isnan(flows).any():
        return np.asarray(np.percentile(flows, q, axis=1), dtype=np.float64)
    ran = ~np.isnan(flows).all(axis=1)
    out = np.zeros(len(flows))
    out[ran] = np.nanpercentile(flows[ran], q, axis=1)
    return out
