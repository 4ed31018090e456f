"""The guard's statistics on windows of made-up events (pure; the live guard is in
test_rollout_live.py)."""

from __future__ import annotations

import numpy as np

from scheduler.monitor.metrics import FinishEvent
from scheduler.tuning.regression import Tolerances
from scheduler.tuning.rollout_stats import MIN_BUCKETS, Window, judgeable, regressions


def events(start, seconds, flows_of, *, deadline=None, failed=lambda i: False, per_second=20):
    """``per_second`` tasks submitted each second from ``start``; ``flows_of(second, i)``."""
    out = []
    for sec in range(seconds):
        for k in range(per_second):
            i = sec * per_second + k
            sub = start + sec + k / per_second
            flow = flows_of(sec, i)
            out.append(
                FinishEvent(
                    id=f"{start}-{i}", name="t", state="failed" if failed(i) else "succeeded",
                    worker="w", priority=5, submitted_at=sub, started_at=sub, finished_at=sub + flow,
                    runtime=flow, deadline=None if deadline is None else sub + deadline,
                    expected=None,
                )
            )  # fmt: skip
    return out


def windows(before, after, seconds=15):
    both = before + after
    return Window.of(both, 0.0, seconds, 1.0), Window.of(both, seconds, 2 * seconds, 1.0)


def test_flows_twice_as_long_after_the_switch_are_a_regression_named_with_its_figures():
    before, after = windows(
        events(0, 15, lambda s, i: 0.1 + 0.01 * (i % 7)),
        events(15, 15, lambda s, i: 0.2 + 0.02 * (i % 7)),
    )
    assert judgeable(before, after, min_tasks=30)
    found = {r.metric: r for r in regressions(before, after, Tolerances())}
    assert set(found) == {"mean_flow", "p95_flow"}
    assert abs(found["mean_flow"].after / found["mean_flow"].before - 2.0) < 1e-9
    assert found["mean_flow"].low > 0.05
    assert "mean_flow 0.260s against 0.130s before (worse by +100%" in found["mean_flow"].words()


def test_busy_periods_that_move_whole_buckets_are_not_mistaken_for_a_regression():
    """Flows rise and fall together within a second (a busy period), by as much as fourfold
    between seconds: the same process before and after the switch, over 100 seeds, is taken
    for a regression at most 5 % of the time."""
    false = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        level = rng.lognormal(0.0, 0.7, 30)
        noise = rng.lognormal(0.0, 0.2, 30 * 20)
        before, after = windows(
            events(0, 15, lambda s, i, lv=level, nz=noise: 0.1 * lv[s] * nz[i]),
            events(15, 15, lambda s, i, lv=level, nz=noise: 0.1 * lv[15 + s] * nz[i]),
        )
        false += bool(regressions(before, after, Tolerances(), looks=6, seed=seed))
    assert false <= 5


def test_misses_and_failures_where_there_were_none_are_a_regression():
    before, after = windows(
        events(0, 15, lambda s, i: 0.1, deadline=0.5),
        events(15, 15, lambda s, i: 0.6 if i % 3 == 0 else 0.1, deadline=0.5,
               failed=lambda i: i % 4 == 0),
    )  # fmt: skip
    found = {r.metric: r for r in regressions(before, after, Tolerances())}
    assert {"miss_ratio", "failure_ratio"} <= set(found)
    assert found["miss_ratio"].before == 0.0
    assert abs(found["miss_ratio"].after - 1 / 3) < 0.01
    assert "miss_ratio 33.3% against 0.0% before" in found["miss_ratio"].words()


def test_a_window_of_too_few_tasks_or_buckets_is_not_judged():
    before, after = windows(
        events(0, 15, lambda s, i: 0.1), events(15, MIN_BUCKETS - 1, lambda s, i: 0.1)
    )
    assert not judgeable(before, after, min_tasks=10)  # 4 buckets after
    before, after = windows(
        events(0, 15, lambda s, i: 0.1), events(15, 15, lambda s, i: 0.1, per_second=1)
    )
    assert not judgeable(before, after, min_tasks=30)  # 15 tasks after
    assert judgeable(before, after, min_tasks=15)
