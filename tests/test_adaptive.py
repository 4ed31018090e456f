"""``adaptive`` against every fixed strategy, in the simulator, on every generated kind.

Objective (the default, ``misses_then_flow``): fewest deadline misses, then
lowest mean flow. Must show: within 5% of the best fixed strategy on every
kind, and better than every fixed strategy on ``phases``, where the best
strategy changes from phase to phase.
"""

from __future__ import annotations

import pytest

from scheduler.adaptive import build_strategy
from scheduler.settings import load_settings
from scheduler.simulator import Simulator, metrics
from scheduler.strategies import PURE_STRATEGY_NAMES
from scheduler.workload_gen import KINDS, generate

WORKERS = 4
SEEDS = (1, 2)


def outcome(kind: str, seed: int, name: str) -> tuple[int, float]:
    tasks = generate(kind, 1000, seed, workers=WORKERS, slots=1)
    sim = Simulator(build_strategy(name, load_settings({})), workers=WORKERS, slots=1)
    m = metrics(sim.run(tasks), WORKERS)
    return m["deadline_misses"], m["mean_flow"]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", KINDS)
def test_adaptive_is_within_five_percent_of_the_best_fixed_strategy(kind, seed):
    fixed = {name: outcome(kind, seed, name) for name in PURE_STRATEGY_NAMES}
    best_name = min(fixed, key=lambda n: fixed[n])
    best_misses, best_flow = fixed[best_name]
    misses, flow = outcome(kind, seed, "adaptive")
    fewer_misses = misses < best_misses
    close = misses <= 1.05 * best_misses and flow <= 1.05 * best_flow
    assert fewer_misses or close, (kind, seed, (misses, flow), best_name, fixed[best_name])


@pytest.mark.parametrize("seed", SEEDS)
def test_adaptive_beats_every_fixed_strategy_on_phases(seed):
    adaptive = outcome("phases", seed, "adaptive")
    for name in PURE_STRATEGY_NAMES:
        assert adaptive < outcome("phases", seed, name), name
