"""Run a configuration through the simulator: the live strategy code, on a trace part.

Nothing here changes how the simulator decides: a configuration becomes
settings (:func:`~scheduler.tuning.rules.settings_for`), the strategy is
built by :func:`~scheduler.adaptive.build_strategy` and the world model by
:meth:`Simulator.from_settings`, exactly as ``yardmaster simulate`` does.

The simulator is deterministic, but the run times it is given are one draw
of what the tasks take: :func:`replicates` simulates a part several times,
each run time multiplied by log-normal noise, the same draws for every
configuration (common random numbers), so the regression gate can tell a
gain from the luck of one draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np

from scheduler.adaptive import build_strategy
from scheduler.settings import Settings
from scheduler.simulator import Outcome, Simulator, outcome_metrics
from scheduler.tuning.objectives import TaskOutcomes
from scheduler.tuning.rules import Config, settings_for
from scheduler.workload import WorkloadTask

LATE = 1e-9  # the simulator's metrics count a task this late as a miss


def simulate(
    config: Config,
    tasks: Sequence[WorkloadTask],
    *,
    base: Settings,
    workers: int,
    slots: int,
) -> TaskOutcomes:
    """Simulate ``tasks`` under ``config`` on ``workers`` x ``slots``.

    Raises:
        InvalidInputError: When the configuration breaks a rule (see rules.py).
    """
    settings = settings_for(config, base)
    strategy = build_strategy(config.strategy, settings)
    sim = Simulator.from_settings(strategy, settings, workers=workers, slots=slots)
    return task_outcomes(sim.simulate(tasks), workers * slots)


def replicates(
    config: Config,
    tasks: Sequence[WorkloadTask],
    *,
    base: Settings,
    workers: int,
    slots: int,
    noise: float,
    count: int,
    seed: int,
) -> list[TaskOutcomes]:
    """``tasks`` under ``config``, simulated ``count`` times with noisy run times.

    Replicate ``k`` multiplies each task's duration by ``exp(N(0, noise))`` drawn
    from the seed ``(seed, k)``: the same draws whatever the configuration, so
    two configurations' replicate ``k`` differ only by what they decide. With
    ``noise`` 0 every replicate is the trace as it is.

    Raises:
        InvalidInputError: When the configuration breaks a rule (see rules.py).
    """
    return [
        simulate(config, jittered(tasks, noise, (seed, k)), base=base, workers=workers, slots=slots)
        for k in range(count)
    ]


def jittered(
    tasks: Sequence[WorkloadTask], noise: float, seed: int | tuple[int, ...]
) -> list[WorkloadTask]:
    """``tasks`` with each duration multiplied by log-normal noise of ``sigma = noise``."""
    if noise <= 0:
        return list(tasks)
    factors = np.exp(np.random.default_rng(seed).normal(0.0, noise, len(tasks)))
    return [
        msgspec.structs.replace(t, duration=t.duration * float(f))
        for t, f in zip(tasks, factors, strict=True)
    ]


def task_outcomes(outcome: Outcome, slots_total: int) -> TaskOutcomes:
    """Per-task flow, lateness and misses of a simulated run, in its workload order."""
    submit = np.asarray(outcome.submit, dtype=np.float64)
    finish = np.asarray([np.nan if f is None else f for f in outcome.finish], dtype=np.float64)
    ran = np.asarray([s in ("succeeded", "failed") for s in outcome.state])
    flow = np.where(ran, finish - submit, np.nan)
    deadline = np.asarray(
        [np.nan if t.deadline is None else t.deadline for t in outcome.tasks], dtype=np.float64
    )
    lateness = np.where(ran, finish - deadline, np.nan)
    expired = np.asarray([s == "expired" for s in outcome.state])
    with np.errstate(invalid="ignore"):
        missed = ((lateness > LATE) | expired).astype(np.float64)
    return TaskOutcomes(flow, lateness, missed, outcome_metrics(outcome, slots_total))
