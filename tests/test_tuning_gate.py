"""The regression gate's two intervals: noisy replicates and the block bootstrap over tasks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from scheduler.settings import load_settings
from scheduler.stats import t_critical
from scheduler.tuning.evaluate import jittered, replicates
from scheduler.tuning.regression import Tolerances, judge
from scheduler.tuning.rules import Config, current_config
from scheduler.tuning.trace import split_trace
from scheduler.workload_gen import generate

BASE = load_settings({})
RUN = dict(base=BASE, workers=4, slots=1)


@pytest.mark.parametrize(
    ("confidence", "df", "table"),
    [(0.95, 1, 12.706), (0.95, 4, 2.776), (0.95, 9, 2.262), (0.99, 7, 3.499), (0.90, 30, 1.697)],
)
def test_the_t_critical_value_matches_the_printed_tables(confidence, df, table):
    assert t_critical(confidence, df) == pytest.approx(table, abs=1e-3)


def test_replicates_draw_the_same_noise_for_every_configuration():
    tasks = generate("bursty", 300, 2, workers=2)
    one = jittered(tasks, 0.1, (7, 0))
    assert [t.duration for t in one] == [t.duration for t in jittered(tasks, 0.1, (7, 0))]
    assert [t.duration for t in one] != [t.duration for t in jittered(tasks, 0.1, (7, 1))]
    assert jittered(tasks, 0.0, (7, 0)) == list(tasks)
    ratios = np.log([a.duration / b.duration for a, b in zip(one, tasks, strict=True)])
    assert abs(ratios.std() - 0.1) < 0.02
    fifo = replicates(Config("fifo", {}), tasks, noise=0.1, count=3, seed=7, **RUN)
    again = replicates(Config("fifo", {}), tasks, noise=0.1, count=3, seed=7, **RUN)
    assert [r.flow.tolist() for r in fifo] == [r.flow.tolist() for r in again]
    assert fifo[0].flow.tolist() != fifo[1].flow.tolist()


def test_an_a_a_gain_the_block_bootstrap_alone_would_take_is_refused_by_the_replicates():
    """The baseline against itself under independent run-time noise: in a busy queue the
    block bootstrap alone finds a 'gain' above the floor now and then; the replicates' t
    interval does not, so the gate proposes nothing."""
    baseline = current_config(BASE.strategy, BASE)
    tol = dataclasses.replace(Tolerances(), min_gain=0.0)  # the intervals alone decide
    fooled = []
    for seed in range(40):
        holdout = 0.2 + 0.2 * (seed % 3)
        part = split_trace(generate("affinity", 2000, 1000 + seed, workers=4), holdout).holdout
        one = replicates(baseline, part, noise=0.1, count=5, seed=2 * seed, **RUN)
        two = replicates(baseline, part, noise=0.1, count=5, seed=2 * seed + 1, **RUN)
        verdict = judge(one, two, "misses_then_flow", tol, seed=seed)
        assert verdict.traffic_interval is not None
        assert verdict.noise_interval is not None
        if verdict.traffic_interval[0] > tol.min_gain:
            fooled.append(verdict)
        if len(fooled) == 2:
            break
    assert fooled, "no A/A run fooled the block bootstrap: the test shows nothing"
    for verdict in fooled:
        assert not verdict.proposed
        assert verdict.noise_interval[0] <= tol.min_gain
        assert verdict.interval[0] == verdict.noise_interval[0]
        assert "within the noise" in verdict.reason
        assert "x 5 noisy replicates" in verdict.reason


def test_a_real_gain_clears_both_intervals():
    part = split_trace(generate("bursty", 3000, 4, workers=4), 0.3).holdout
    noisy = dict(noise=0.1, count=5, seed=0, **RUN)
    base = replicates(current_config("priority", BASE), part, **noisy)
    sjf = replicates(current_config("sjf", BASE), part, **noisy)
    verdict = judge(base, sjf, "mean_flow", Tolerances())
    assert verdict.proposed, verdict.reason
    assert verdict.noise_interval is not None
    assert verdict.traffic_interval is not None
    assert verdict.noise_interval[0] > 0.01
    assert verdict.traffic_interval[0] > 0.01
    assert verdict.interval == (
        min(verdict.noise_interval[0], verdict.traffic_interval[0]),
        max(verdict.noise_interval[1], verdict.traffic_interval[1]),
    )
    as_json = verdict.as_dict()
    assert as_json["replicates"] == 5
    assert len(as_json["noise_interval"]) == 2


def test_one_replicate_leaves_the_block_bootstrap_alone_and_unpaired_replicates_are_refused():
    part = generate("mixed", 500, 5, workers=4)
    one = replicates(Config("fifo", {}), part, noise=0.1, count=1, seed=0, **RUN)
    verdict = judge(one, one, "mean_flow", dataclasses.replace(Tolerances(), min_gain=0.0))
    assert verdict.noise_interval is None
    assert verdict.replicates == 1
    three = replicates(Config("fifo", {}), part, noise=0.1, count=3, seed=0, **RUN)
    with pytest.raises(ValueError, match="paired"):
        judge(one, three, "mean_flow", Tolerances())
