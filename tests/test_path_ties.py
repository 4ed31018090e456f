"""Ties go to the longer remaining path: every strategy's queue against its sort key (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.models import Estimates, PendingTask
from scheduler.strategies import (
    CriticalPathStrategy,
    EdfStrategy,
    FifoStrategy,
    HeapQueue,
    LoadBalanceStrategy,
    PriorityStrategy,
    SjfStrategy,
    WeightedStrategy,
)

PATHS = [0.0, 0.0, 0.5, 2.0]  # half outside any workflow

ops_with_paths = st.lists(
    st.tuples(
        st.sampled_from(["add", "add", "pop", "discard"]),
        st.integers(0, 30),  # seq
        st.integers(0, 9),  # priority
        st.sampled_from([None, 1.0, 2.0]),  # deadline
        st.sampled_from(PATHS),
        st.sampled_from([None, 0.5, 1.0]),  # hint
    ),
    max_size=80,
)


def pending(seq, priority, deadline, path, hint=None, name="x"):
    # three tasks per instant: ties of submission time, as a workflow's tasks have
    return PendingTask(f"t{seq}", name, priority, seq, float(seq // 3), deadline, hint, path=path)


@settings(max_examples=150, deadline=None)
@given(ops_with_paths)
def test_each_queue_pops_in_the_order_of_a_heap_on_its_sort_key_with_paths(ops):
    estimates = Estimates()
    for strategy in (
        FifoStrategy(),
        LoadBalanceStrategy(),
        PriorityStrategy(),
        PriorityStrategy(aging=0.0),
        WeightedStrategy(),
        EdfStrategy(),
        CriticalPathStrategy(),
    ):
        fast = strategy.make_queue(estimates)
        ref = HeapQueue(strategy.sort_key)
        for op, seq, priority, deadline, path, hint in ops:
            task = pending(seq, priority, deadline, path, hint)
            if op == "add":
                fast.add(task)
                ref.add(task)
            elif op == "discard":
                assert fast.discard(task.id) == ref.discard(task.id)
            else:
                assert fast.pop() == ref.pop(), strategy.name
            assert len(fast) == len(ref)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "add", "pop", "discard", "learn"]),
            st.integers(0, 80),
            st.sampled_from(PATHS),
            st.sampled_from([None, None, 0.5, 1.0]),
            st.sampled_from("abc"),
            st.sampled_from([0.5, 1.0, 2.0]),
        ),
        max_size=80,
    )
)
def test_sjf_pops_the_least_current_estimate_then_the_longer_path_then_the_first_submitted(ops):
    # Tasks arrive in submission order (each key's FIFO relies on it); discards
    # and pops come between, and learned estimates change while tasks wait.
    estimates = Estimates(default_duration=1.0)
    queue = SjfStrategy().make_queue(estimates)
    live: dict[str, PendingTask] = {}
    for seq, (op, pick, path, hint, name, value) in enumerate(ops):
        if op == "add":
            task = pending(seq, 5, None, path, hint, name)
            queue.add(task)
            live[task.id] = task
        elif op == "discard":
            task_id = f"t{pick}"
            assert queue.discard(task_id) == live.pop(task_id, None)
        elif op == "learn":
            estimates.durations[name] = value
        else:
            want = min(
                live.values(), key=lambda t: (estimates.duration(t), -t.path, t.seq), default=None
            )
            assert queue.pop() == want
            if want is not None:
                del live[want.id]
        assert len(queue) == len(live)


@pytest.mark.parametrize(
    "strategy",
    [
        PriorityStrategy(),
        SjfStrategy(),
        EdfStrategy(),
        WeightedStrategy(),
    ],
    ids=lambda s: s.name,
)
def test_every_strategy_prefers_the_longer_remaining_path_on_ties_of_its_own_key(strategy):
    queue = strategy.make_queue(Estimates())
    # submitted together, same priority, name and deadline: only the path differs
    short = PendingTask("short", "x", 5, 1, 0.0, 9.0, path=1.0)
    alone = PendingTask("alone", "x", 5, 2, 0.0, 9.0)
    long = PendingTask("long", "x", 5, 3, 0.0, 9.0, path=4.0)
    for task in (short, alone, long):
        queue.add(task)
    assert [queue.pop().id for _ in range(3)] == ["long", "short", "alone"]


@pytest.mark.parametrize("strategy", [FifoStrategy(), LoadBalanceStrategy()], ids=lambda s: s.name)
def test_submission_order_never_ties_so_fifo_and_load_balance_ignore_paths(strategy):
    queue = strategy.make_queue(Estimates())
    for seq, path in enumerate([1.0, 0.0, 4.0]):
        queue.add(PendingTask(f"t{seq}", "x", 5, seq, 0.0, path=path))
    assert [queue.pop().id for _ in range(3)] == ["t0", "t1", "t2"]


def test_a_tie_break_never_overrides_a_strategys_own_key():
    queue = PriorityStrategy(aging=0.0).make_queue()
    queue.add(PendingTask("low", "x", 1, 1, 0.0, path=100.0))
    queue.add(PendingTask("high", "x", 9, 2, 0.0))
    assert queue.pop().id == "high"


def test_critical_path_ranks_a_task_outside_any_workflow_by_its_expected_duration():
    estimates = Estimates(durations={"slow": 3.0}, default_duration=1.0)
    queue = CriticalPathStrategy().make_queue(estimates)
    queue.add(PendingTask("unknown", "new", 5, 1, 0.0))  # default 1.0
    queue.add(PendingTask("slow", "slow", 5, 2, 0.0))  # learned 3.0
    queue.add(PendingTask("chain", "fast", 5, 3, 0.0, path=2.0))
    queue.add(PendingTask("hinted", "x", 5, 4, 0.0, expected_duration=2.5))
    assert [queue.pop().id for _ in range(4)] == ["slow", "hinted", "chain", "unknown"]
