"""load_balance, weighted, edf's expire policy, sjf's overrun fallback and adaptive:
pure tests on hand-made snapshots (no Redis, no Celery), plus simulator checks."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from scheduler.adaptive import AdaptiveQueue, AdaptiveStrategy, build_strategy
from scheduler.errors import InvalidInputError, SettingsError
from scheduler.models import Estimates, PendingTask, WorkerView
from scheduler.settings import Weights, load_settings
from scheduler.simulator import Simulator, metrics
from scheduler.strategies import (
    EdfStrategy,
    LoadBalanceStrategy,
    SjfStrategy,
    Snapshot,
    WeightedStrategy,
    plan,
)
from scheduler.workload import WorkloadTask

T0 = 1_800_000_000.0


def pending(seq, name="x", priority=5, at=None, hint=None, deadline=None, key=None):
    return PendingTask(
        id=f"t{seq}", name=name, priority=priority, seq=seq,
        submitted_at=T0 + seq if at is None else at, expected_duration=hint,
        deadline=deadline, affinity_key=key,
    )  # fmt: skip


def decide(strategy, tasks, workers, estimates=None, now=T0, limit=100):
    estimates = estimates or Estimates()
    queue = strategy.make_queue(estimates)
    for t in tasks:
        queue.add(t)
    return plan(strategy, queue, Snapshot(now, workers, estimates), limit)


# -- load_balance ---------------------------------------------------------------
def test_load_balance_sends_a_key_where_its_affinity_is_highest():
    est = Estimates(affinity={("user-1", "w2"): 0.8, ("user-1", "w1"): 0.1})
    workers = [WorkerView("w1", 1), WorkerView("w2", 1), WorkerView("w3", 1)]
    [d] = decide(LoadBalanceStrategy(1.0), [pending(1, key="user-1")], workers, est)
    assert d.worker == "w2"


def test_load_balance_weighs_affinity_against_load():
    # The key's home is w3 (its best score), full; with no wait for it, the task runs
    # elsewhere by cost. w2 is warm for the key (0.3) but half busy; w1 idle, no affinity.
    est = Estimates(affinity={("k", "w2"): 0.3, ("k", "w3"): 0.9})
    workers = [
        WorkerView("w1", 2, inflight=0),
        WorkerView("w2", 2, inflight=1),
        WorkerView("w3", 1, inflight=1),
    ]
    task = [pending(1, key="k")]
    # weight 1: w2 scores 0.5 - 0.3 = 0.2 against w1's 0: the idle one wins
    assert decide(LoadBalanceStrategy(1.0, affinity_wait=0.0), task, workers, est)[0].worker == "w1"
    # weight 2: w2 scores 0.5 - 0.6 = -0.1: affinity wins
    assert decide(LoadBalanceStrategy(2.0, affinity_wait=0.0), task, workers, est)[0].worker == "w2"
    # with a wait, and the key's last task sent to its home (warm there), it is held for it
    held = LoadBalanceStrategy(2.0, affinity_wait=5.0)
    held.homes.sent("k", "w3")
    assert decide(held, task, workers, est) == []
    # a key not among the home's recent keys is not held: waiting would not warm it
    assert decide(LoadBalanceStrategy(2.0, affinity_wait=5.0), task, workers, est) != []
    # weight 0: plain least loaded
    assert decide(LoadBalanceStrategy(0.0), [pending(1, key="k")], workers, est)[0].worker == "w1"


def test_load_balance_keeps_submission_order():
    tasks = [pending(3, priority=9), pending(1, priority=0), pending(2)]
    out = decide(LoadBalanceStrategy(), tasks, [WorkerView("w", 10)])
    assert [d.task.id for d in out] == ["t1", "t2", "t3"]


def test_load_balance_rejects_a_bad_weight():
    with pytest.raises(InvalidInputError, match="affinity_weight"):
        LoadBalanceStrategy(-1.0)


def test_affinity_placement_gives_warm_hits_in_the_simulator():
    # 6 keys in random order over 3 workers that keep 2 keys warm each: placement by
    # affinity keeps each key on one worker, first come first served scatters them.
    rng = random.Random(7)
    rows = [
        WorkloadTask(
            id=f"t{i}",
            name="job",
            submit_at=i * 0.1,
            duration=0.15,
            affinity_key=f"k{rng.randrange(6)}",
        )
        for i in range(300)
    ]
    out = {}
    for name in ("fifo", "load_balance"):
        strategy = build_strategy(name, load_settings({}))
        sim = Simulator(strategy, workers=3, slots=1, warm_capacity=2)
        out[name] = metrics(sim.run(rows), 3)
    assert out["load_balance"]["affinity_hits"] > 2 * out["fifo"]["affinity_hits"]
    assert out["load_balance"]["mean_flow"] < out["fifo"]["mean_flow"]


# -- weighted -------------------------------------------------------------------
def test_weighted_orders_by_its_objective():
    w = Weights(priority=1.0, wait=0.0, duration=0.2, slack=0.3, affinity=0.1)
    est = Estimates(default_duration=1.0)
    tasks = [
        pending(1, priority=3, at=T0),
        pending(2, priority=7, at=T0),
        pending(3, priority=7, at=T0, hint=0.1),  # same priority, shorter: first
        pending(4, priority=3, at=T0, hint=1.0, deadline=T0 + 1.0),  # urgent, but low priority
    ]
    out = decide(WeightedStrategy(w), tasks, [WorkerView("w", 10)], est)
    assert [d.task.id for d in out] == ["t3", "t2", "t4", "t1"]


def test_weighted_places_a_task_where_its_affinity_is_best():
    est = Estimates(affinity={("k", "w2"): 0.9})
    workers = [WorkerView("w1", 1), WorkerView("w2", 1)]
    assert decide(WeightedStrategy(), [pending(1, key="k")], workers, est)[0].worker == "w2"


@pytest.mark.parametrize(
    ("weights", "needle"),
    [
        ({"priority": 0, "wait": 0, "duration": 0, "slack": 0, "affinity": 0}, "all zero"),
        ({"priority": 1, "wait": 0, "duration": 1}, "overtake a higher one forever"),
        ({"wait": -0.5}, "greater than or equal to 0"),
        ({"priority": 5000}, "less than or equal to 1000"),
        ({"urgency": 1}, "Extra inputs"),
    ],
)
def test_invalid_weights_get_a_clear_error_naming_the_setting(weights, needle):
    with pytest.raises(SettingsError) as info:
        load_settings({}, weights=weights)
    assert "weights" in str(info.value)
    assert needle in str(info.value)


weight = st.floats(min_value=0.0, max_value=50.0, allow_nan=False)


@st.composite
def raw_weights(draw, wait=weight):
    return {
        "priority": draw(weight),
        "wait": draw(wait),
        "duration": draw(weight),
        "slack": draw(weight),
        "affinity": draw(weight),
    }


@st.composite
def valid_weights(draw):
    raw = draw(raw_weights())
    try:
        return Weights(**raw)
    except ValidationError:
        assume(False)
        raise


@settings(max_examples=150, deadline=None)
@given(
    w=valid_weights(),
    p_low=st.integers(0, 8),
    gap=st.integers(1, 9),
    hint_low=st.floats(0.01, 100.0),
    hint_high=st.floats(0.01, 100.0),
    deadline_low=st.one_of(st.none(), st.floats(0.01, 100.0)),
    later=st.floats(0.0, 1e5),
)
def test_no_valid_weight_set_lets_low_priority_overtake_high_forever(
    w, p_low, gap, hint_low, hint_high, deadline_low, later
):
    """A higher-priority task is never overtaken by a lower one submitted more than
    the weights' overtake window after it; with wait = 0 it is never overtaken."""
    high = pending(1, priority=min(9, p_low + gap), at=T0, hint=hint_high)
    at = T0 + w.overtake_window() + later + 1e-3
    dl = None if deadline_low is None else at + deadline_low
    low = pending(2, priority=p_low, at=at, hint=hint_low, deadline=dl)
    s = WeightedStrategy(w)
    assert s.sort_key(high) < s.sort_key(low)


@given(raw=raw_weights(wait=st.just(0.0)))
def test_weights_without_waiting_are_accepted_only_when_priority_dominates(raw):
    dominates = raw["priority"] > raw["duration"] + raw["slack"] + raw["affinity"]
    if dominates:
        Weights(**raw)
    else:
        with pytest.raises(ValidationError, match=r"overtake|all zero"):
            Weights(**raw)


# -- edf expire -----------------------------------------------------------------
def test_edf_expires_a_task_that_cannot_meet_its_deadline_and_runs_the_rest():
    est = Estimates(durations={"slow": 5.0}, default_duration=1.0)
    tasks = [
        pending(1, "slow", deadline=T0 + 2.0),  # needs 5 s, 2 s left: hopeless
        pending(2, "fast", hint=0.5, deadline=T0 + 3.0),
        pending(3, "fast", hint=0.5),  # no deadline: never expired
    ]
    out = decide(EdfStrategy(late="expire"), tasks, [WorkerView("w", 1)], est, now=T0)
    assert out[0].task.id == "t1"
    assert out[0].expire
    assert "deadline cannot be met" in out[0].expire
    assert [(d.task.id, d.worker) for d in out[1:]] == [("t2", "w")]  # one slot: one placed
    # the run policy keeps the hopeless task and runs it first
    out = decide(EdfStrategy(late="run"), tasks, [WorkerView("w", 1)], est, now=T0)
    assert [(d.task.id, d.expire) for d in out] == [("t1", None)]


def test_expired_tasks_count_as_misses_and_free_slots_in_the_simulator():
    rows = [WorkloadTask(id="block", name="b", submit_at=0, duration=5.0)]
    rows += [
        WorkloadTask(id=f"d{i}", name="d", submit_at=0.1, duration=1.0, deadline=2.0 + i * 1.1)
        for i in range(6)
    ]
    out = {}
    for late in ("run", "expire"):
        sim = Simulator(EdfStrategy(late=late), workers=1, slots=1, default_duration=1.0)
        records = sim.run(rows)
        out[late] = (metrics(records, 1), {r.task.id: r.state for r in records})
    run_metrics, _ = out["run"]
    exp_metrics, states = out["expire"]
    assert "expired" in states.values()
    assert all(r in ("succeeded", "expired") for r in states.values())
    # expiring the hopeless ones lets later tasks make their deadlines
    assert exp_metrics["deadline_misses"] < run_metrics["deadline_misses"]


def test_edf_rejects_an_unknown_policy():
    with pytest.raises(InvalidInputError, match="edf_late"):
        EdfStrategy(late="maybe")


# -- sjf overrun fallback -------------------------------------------------------
def test_a_run_that_outlasts_its_estimate_raises_it():
    est = Estimates(durations={"a": 0.1})
    assert est.learned("a") == 0.1
    est.overrun = {"a": 3.0}  # one run of "a" has gone 3 s already: about half done
    assert est.learned("a") == pytest.approx(2 * 3.0 - 0.1)
    est.overrun = {"a": 0.11}  # just past the estimate: it grows from it continuously
    assert est.learned("a") == pytest.approx(0.12)
    est.overrun = {"a": 0.05}  # not past the estimate: ignored
    assert est.learned("a") == 0.1


class _NoOverrun(SjfStrategy):
    uses_estimates = False  # the driver then never fills Estimates.overrun


def _regime_shift() -> list[WorkloadTask]:
    # Warm-up: "a" is learned as fast (0.1 s), "b" at 0.5 s. Then "a" turns slow (8 s):
    # one starts alone at t=4, and at 4.5 a burst arrives: 5 more of it and 20 of "b".
    rows = []
    for i in range(6):
        rows.append(WorkloadTask(id=f"wa{i}", name="a", submit_at=i * 0.5, duration=0.1))
        rows.append(WorkloadTask(id=f"wb{i}", name="b", submit_at=i * 0.5 + 0.25, duration=0.5))
    rows.append(WorkloadTask(id="first", name="a", submit_at=4.0, duration=8.0))
    for i in range(5):
        rows.append(WorkloadTask(id=f"a{i}", name="a", submit_at=4.5, duration=8.0))
    for i in range(20):
        rows.append(WorkloadTask(id=f"b{i}", name="b", submit_at=4.5, duration=0.5))
    return rows


@dataclass(slots=True)
class DaskEstimates(Estimates):
    """Reference rule: once a finished run of a name outlasted its average, the
    estimate is twice the longest finished run (learning only from completions)."""

    longest: dict[str, float] = field(default_factory=dict)

    def learned(self, key: str) -> float:
        base = self.durations.get(key, self.default_duration)
        longest = self.longest.get(key, 0.0)
        return 2.0 * longest if longest > base else base


class DaskSimulator(Simulator):
    def _learn(self, estimates, task, runtime):
        super()._learn(estimates, task, runtime)
        estimates.longest[task.name] = max(runtime, estimates.longest.get(task.name, 0.0))


def _dask_rule_flow(rows: list[WorkloadTask]) -> float:
    sim = DaskSimulator(_NoOverrun(), workers=2, slots=1, estimates=DaskEstimates())
    return metrics(sim.run(rows), 2)["mean_flow"]


def test_sjf_overrun_fallback_beats_plain_ema_and_does_at_least_as_well_as_dask():
    rows = _regime_shift()
    ours = metrics(Simulator(SjfStrategy(), workers=2, slots=1).run(rows), 2)["mean_flow"]
    plain = metrics(Simulator(_NoOverrun(), workers=2, slots=1).run(rows), 2)["mean_flow"]
    dask = _dask_rule_flow(rows)
    assert ours < 0.8 * plain
    assert ours <= dask * 1.0001


# -- adaptive -------------------------------------------------------------------
def _adaptive(**overrides):
    return AdaptiveStrategy(load_settings({}, **overrides))


@pytest.mark.parametrize(
    ("tasks", "backlog", "want"),
    [
        ([pending(1, deadline=T0 + 9)], 3, "edf"),
        ([pending(i) for i in range(60)], 60, "sjf"),
        ([pending(1, priority=0), pending(2, priority=9)], 2, "priority"),
        ([pending(1, priority=4), pending(2, priority=6)], 2, "load_balance"),
    ],
)
def test_adaptive_rules_baseline(tasks, backlog, want):
    assert AdaptiveStrategy.by_rules(tasks, backlog)[0] == want


def test_adaptive_simulation_picks_edf_for_deadlines_and_sjf_for_a_mixed_backlog():
    workers = [WorkerView("w1", 1), WorkerView("w2", 1)]
    est = Estimates(durations={"short": 0.1, "long": 2.0})
    s = _adaptive()
    # Long tasks first in submission order, short ones with tight deadlines behind them.
    dated = [pending(i, "long", at=T0) for i in range(4)]
    dated += [pending(10 + i, "short", at=T0, deadline=T0 + 0.5 + 0.1 * i) for i in range(6)]
    assert s.by_simulation(dated, Snapshot(T0, workers, est))[0] == "edf"
    mixed = [pending(i, "long" if i % 2 else "short", at=T0) for i in range(40)]
    assert s.by_simulation(mixed, Snapshot(T0, workers, est))[0] == "sjf"


def test_adaptive_switches_reorder_the_queue_and_are_recorded():
    s = _adaptive(adaptive_mode="rules")
    est = Estimates(durations={"short": 0.1, "long": 2.0})
    queue = s.make_queue(est)
    assert isinstance(queue, AdaptiveQueue)
    for i in range(60):
        queue.add(pending(i, "long" if i < 30 else "short"))
    out = plan(s, queue, Snapshot(T0, [WorkerView("w", 1)], est), 1)
    assert s.current.name == "sjf"
    assert out[0].task.name == "short"  # the backlog was re-ordered at the switch
    [switch] = s.take_switches()
    assert (switch.old, switch.new) == ("load_balance", "sjf")
    assert s.take_switches() == []


def test_build_strategy_names_what_is_allowed():
    with pytest.raises(InvalidInputError) as info:
        build_strategy("fastest", load_settings({}))
    assert "fastest" in str(info.value)
    assert "adaptive" in str(info.value)
