"""sjf and edf: pure order tests, optimality against brute force, learned estimates, and a live run."""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.models import Estimates, PendingTask, TaskState, WorkerView
from scheduler.simulator import Simulator, metrics
from scheduler.strategies import EdfStrategy, SjfStrategy, Snapshot, plan
from scheduler.workload import WorkloadTask


def pending(seq, name="x", hint=None, deadline=None):
    return PendingTask(
        id=f"t{seq}", name=name, priority=5, seq=seq, submitted_at=0.0,
        expected_duration=hint, deadline=deadline,
    )  # fmt: skip


def order(strategy, tasks, estimates=None):
    queue = strategy.make_queue(estimates)
    for t in tasks:
        queue.add(t)
    snap = Snapshot(0.0, [WorkerView("w", slots=100)], estimates or Estimates())
    return [d.task.id for d in plan(strategy, queue, snap, 100)]


def test_sjf_orders_by_hint_then_learned_estimate_then_default():
    est = Estimates(durations={"fast": 0.1, "slow": 3.0}, default_duration=1.0)
    tasks = [
        pending(0, "slow"),
        pending(1, "new"),  # never seen: the default, 1.0
        pending(2, "fast"),
        pending(3, "slow", hint=0.05),  # the hint wins over its name's EMA
        pending(4, "fast"),
    ]
    assert order(SjfStrategy(), tasks, est) == ["t3", "t2", "t4", "t1", "t0"]


def test_sjf_reorders_waiting_tasks_when_an_estimate_changes():
    est = Estimates(durations={"a": 1.0, "b": 2.0})
    queue = SjfStrategy().make_queue(est)
    for t in [pending(0, "b"), pending(1, "a"), pending(2, "b"), pending(3, "a")]:
        queue.add(t)
    assert queue.pop().id == "t1"
    est.durations["a"] = 5.0  # learned while t3 waits
    assert [queue.pop().id for _ in range(3)] == ["t0", "t2", "t3"]
    assert queue.pop() is None


def test_edf_runs_the_nearest_deadline_first_and_undated_tasks_last():
    tasks = [pending(0), pending(1, deadline=9.0), pending(2, deadline=3.0), pending(3)]
    assert order(EdfStrategy(), tasks) == ["t2", "t1", "t0", "t3"]


durations = st.lists(st.floats(0.01, 10, allow_nan=False), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(durations, st.integers(1, 3))
def test_sjf_with_true_hints_gives_the_optimal_mean_flow(durs, machines):
    tasks = [
        WorkloadTask(id=f"t{i}", name="x", submit_at=0, duration=d, expected_duration=d)
        for i, d in enumerate(durs)
    ]
    got = metrics(Simulator(SjfStrategy(), workers=machines).run(tasks), machines)["mean_flow"]
    best = min(_mean_flow(perm, machines) for perm in itertools.permutations(durs))
    assert got == pytest.approx(best, rel=1e-9, abs=1e-12)


def _mean_flow(sequence, machines):
    free = [0.0] * machines
    total = 0.0
    for d in sequence:
        i = min(range(machines), key=free.__getitem__)
        free[i] += d
        total += free[i]
    return total / len(sequence)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.01, 5, allow_nan=False), st.floats(0, 20, allow_nan=False)),
        min_size=1,
        max_size=6,
    )
)
def test_edf_on_one_worker_gives_the_optimal_maximum_lateness(rows):
    tasks = [
        WorkloadTask(id=f"t{i}", name="x", submit_at=0, duration=d, deadline=dl)
        for i, (d, dl) in enumerate(rows)
    ]
    got = metrics(Simulator(EdfStrategy(), workers=1).run(tasks), 1)["max_lateness"]
    best = float("inf")
    for perm in itertools.permutations(rows):
        now, worst = 0.0, float("-inf")
        for d, dl in perm:
            now += d
            worst = max(worst, now - dl)
        best = min(best, worst)
    assert got == pytest.approx(best, abs=1e-9)


def test_sjf_learns_estimates_and_comes_within_ten_percent_of_the_hinted_optimum():
    kinds = {"thumb": 0.1, "resize": 0.6, "report": 2.0}
    warmup = [
        WorkloadTask(id=f"w{k}{i}", name=k, submit_at=0, duration=d)
        for k, d in kinds.items()
        for i in range(3)
    ]
    batch = [(f"b{i}", k, kinds[k]) for i, k in enumerate(list(kinds) * 20)]

    def run(hinted):
        rows = warmup + [
            WorkloadTask(
                id=i, name=k, submit_at=100, duration=d, expected_duration=d if hinted else None
            )
            for i, k, d in batch
        ]
        records = Simulator(SjfStrategy(), workers=2).run(rows)
        return metrics([r for r in records if r.task.id.startswith("b")], 2)["mean_flow"]

    learned, optimum = run(hinted=False), run(hinted=True)
    assert learned <= optimum * 1.10


@pytest.mark.parametrize("strategy", ["edf", "sjf"])
def test_sjf_and_edf_order_a_live_cluster(cluster, strategy):
    c = cluster(strategy=strategy)
    c.dispatcher()
    c.worker("solo@test", slots=1)
    blocker = c.client.submit("sleep", [0.8])
    while blocker.status() != TaskState.RUNNING:
        time.sleep(0.01)
    now = time.time()
    if strategy == "edf":
        handles = [c.client.submit("noop", deadline=now + dl) for dl in (30, 10, 20)]
    else:
        handles = [c.client.submit("sleep", [d], expected_duration=d) for d in (0.3, 0.1, 0.2)]
    handles.append(
        c.client.submit("noop", priority=9)
    )  # no deadline / the default estimate (1 s): last
    records = c.client.wait([blocker, *handles], timeout=60)
    started = [r.id for r in sorted(records, key=lambda r: r.started_at)]
    assert started == [blocker.id, handles[1].id, handles[2].id, handles[0].id, handles[3].id]
