"""Planned against actual: the simulator's plan for the backlog, and how it is measured.

The pure parts on made-up plans; then a real cluster (redis-server, dispatcher, Celery
worker) whose backlog the monitor's companion plans and follows.
"""

from __future__ import annotations

import itertools
import random
import time

import pytest

from scheduler.models import PendingTask
from scheduler.monitor import Monitor
from scheduler.monitor.prometheus import render
from scheduler.settings import load_settings
from scheduler.tuning.companion import TuningCompanion
from scheduler.tuning.planned import Plan, concordance, make_plan
from scheduler.tuning.rules import Config

BASE = load_settings({})


def brute_concordance(pairs):
    agree = comparable = 0
    for (p1, a1), (p2, a2) in itertools.combinations(pairs, 2):
        if p1 == p2:
            continue
        comparable += 1
        agree += (p1 < p2) == (a1 < a2)
    return None if comparable == 0 else agree / comparable


@pytest.mark.parametrize("seed", range(20))
def test_concordance_counts_the_pairs_in_planned_order_as_a_brute_force_does(seed):
    rng = random.Random(seed)
    pairs = [(rng.randint(0, 15), rng.random()) for _ in range(rng.randint(0, 60))]
    expected = brute_concordance(pairs)
    found = concordance(pairs)
    assert (found is None) == (expected is None)
    if expected is not None:
        assert found == pytest.approx(expected)


def test_a_plan_starts_the_backlog_where_the_slots_free_with_the_estimates_the_strategy_uses():
    now = 1000.0

    def task(i, **kw):
        return PendingTask(f"t{i}", "job", 5, i, now - 10 + i, **kw)

    pending = [
        task(1, expected_duration=1.0),  # the hint
        task(2, duration_key="x"),  # the EMA of x
        task(3, duration_key="never-seen"),  # the default
        task(4, duration_key="x"),
    ]
    plan = make_plan(
        now, Config("fifo", {}), 3, BASE, slots=[1, 1], busy=[0.5], pending=pending,
        durations={"x": 0.2},
    )  # fmt: skip
    d = BASE.default_duration
    # one slot frees now, the other in 0.5 s (its running task's estimate left)
    assert plan.start == pytest.approx(
        {"t1": now, "t2": now + 0.5, "t3": now + 0.7, "t4": now + 1.0}
    )
    assert plan.finish == pytest.approx(
        {"t1": now + 1.0, "t2": now + 0.7, "t3": now + 0.7 + d, "t4": now + 1.2}
    )
    assert plan.duration == {"t1": 1.0, "t2": 0.2, "t3": d, "t4": 0.2}
    assert plan.name == {"t1": "job", "t2": "x", "t3": "never-seen", "t4": "x"}
    assert (plan.strategy, plan.version) == ("fifo", 3)
    assert plan.horizon == pytest.approx(0.7 + d)


def test_priority_plans_the_higher_priority_first_and_unequal_slots_become_one_slot_workers():
    now = 50.0
    pending = [
        PendingTask("low", "job", 1, 1, now - 2, expected_duration=0.1),
        PendingTask("high", "job", 9, 2, now - 1, expected_duration=0.1),
        PendingTask("mid", "job", 5, 3, now - 1, expected_duration=0.1),
    ]
    plan = make_plan(
        now,
        Config("priority", {"priority_aging": 0.0}),
        1,
        BASE,
        [2, 1],
        [0.3, 0.6, 0.9],
        pending,
        {},
    )
    order = sorted(plan.start, key=plan.start.get)
    assert order == ["high", "mid", "low"]
    assert plan.start["high"] == pytest.approx(now + 0.3)  # the first slot to free
    assert plan.start["low"] == pytest.approx(now + 0.5)  # after mid on that slot


def test_accuracy_measures_order_times_and_each_names_duration_error():
    plan = Plan(
        made_at=0.0, strategy="fifo", version=0,
        start={"a": 0.0, "b": 1.0, "c": 2.0, "d": 3.0},
        finish={"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0},
        duration={"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0},
        name={"a": "x", "b": "x", "c": "y", "d": "y"},
    )  # fmt: skip
    plan.actual = {  # b and c swapped; y ran twice as long
        "a": (0.0, 1.0, 1.0), "b": (3.0, 4.0, 1.0), "c": (1.0, 3.0, 2.0), "d": (4.0, 6.0, 2.0),
    }  # fmt: skip
    acc = plan.accuracy(floor=0.05)
    assert acc.planned == acc.ended == 4
    assert acc.adherence == pytest.approx(brute_concordance([(0, 0), (1, 3), (2, 1), (3, 4)]))
    assert acc.start_error_s == pytest.approx((0 + 2 + 1 + 1) / 4)
    assert acc.finish_error_s == pytest.approx((0 + 2 + 0 + 2) / 4)
    assert acc.finish_error == pytest.approx(1.0 / 2.5)  # over the mean planned time to finish
    assert acc.by_task["x"].mean_abs_error_s == 0.0
    assert acc.by_task["y"].mean_rel_error == pytest.approx(1.0)


def poll_until(mon, check, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = mon.poll()
        if check(snap):
            return snap
        time.sleep(0.2)
    raise AssertionError(f"{what} not seen within {timeout}s; last: {snap.tuning}")


def backlog(c, seconds: float, hint: float, n: int) -> None:
    c.client.submit_many(
        [{"name": "sleep", "args": [seconds], "expected_duration": hint} for _ in range(n)]
    )


def test_a_plan_of_the_live_backlog_is_followed_and_drift_raises_prediction_drift(cluster):
    c = cluster(strategy="fifo", monitor_min_samples=5, plan_interval=0.5)
    c.dispatcher()
    c.worker("w1@test", slots=1)
    mon = Monitor(c.store, companion=TuningCompanion(c.store))
    assert mon.poll().tuning.plan is None  # nothing pending: no plan
    backlog(c, 0.1, 0.1, 20)  # hints that tell the truth; one slot: a backlog of 19 or so
    first = mon.poll()
    assert first.tuning.plan is None  # planned, nothing of it ended yet
    plan = mon.companion.plans.plan
    assert plan is not None
    assert len(plan.start) >= 15
    assert plan.strategy == "fifo"
    planned = len(plan.start)
    snap = poll_until(
        mon, lambda s: s.tuning.plan and s.tuning.plan.ended == planned, what="the plan ended"
    )
    acc = snap.tuning.plan
    assert acc.adherence == 1.0  # one slot, fifo: the planned order exactly
    assert acc.finish_error < 0.25
    assert acc.by_task["sleep"].mean_rel_error < 0.25
    assert not [a for a in snap.anomalies if a.id == "prediction_drift:plan"]
    text = render(snap)
    assert "ym_plan_adherence_ratio 1" in text
    assert 'ym_plan_duration_error_seconds{task="sleep"}' in text
    assert '"tuning":{"plan":' in snap.to_json().decode()

    backlog(c, 0.25, 0.02, 12)  # run times far past what the plan is told
    time.sleep(0.6)  # the next plan is due (YM_PLAN_INTERVAL)
    snap = poll_until(
        mon,
        lambda s: [a for a in s.anomalies if a.id == "prediction_drift:plan"],
        what="prediction_drift:plan",
    )
    (a,) = [a for a in snap.anomalies if a.id == "prediction_drift:plan"]
    assert a.type == "prediction_drift"
    assert "backlog tasks under fifo (version 0) is off" in a.reason
    assert "yardmaster trace export" in a.recommendation
    assert "yardmaster tune" in a.recommendation
    assert snap.tuning.plan.by_task["sleep"].mean_abs_error_s > 0.15  # 0.25 s runs, 0.02 s told
