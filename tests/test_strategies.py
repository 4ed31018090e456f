"""Pure strategy tests on hand-made snapshots: no Redis, no Celery."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scheduler.models import PendingTask, WorkerView
from scheduler.strategies import FifoStrategy, PriorityStrategy, Snapshot, plan


def task(seq: int, priority: int = 5, submitted_at: float | None = None) -> PendingTask:
    at = 1_800_000_000.0 + seq if submitted_at is None else submitted_at
    return PendingTask(id=f"t{seq}", name="noop", priority=priority, seq=seq, submitted_at=at)


def drain(strategy, tasks, workers=None, limit=1000):
    queue = strategy.make_queue()
    for t in tasks:
        queue.add(t)
    snap = Snapshot(now=0.0, workers=workers or [WorkerView("w", slots=limit)])
    return [d.task.id for d in plan(strategy, queue, snap, limit)]


def test_fifo_runs_tasks_in_submission_order_whatever_their_priority():
    tasks = [task(3, 9), task(1, 0), task(2, 5)]
    assert drain(FifoStrategy(), tasks) == ["t1", "t2", "t3"]


def test_strict_priority_runs_higher_first_then_submission_order():
    tasks = [task(1, 0), task(2, 9), task(3, 5), task(4, 9)]
    assert drain(PriorityStrategy(aging=0), tasks) == ["t2", "t4", "t3", "t1"]


def test_aging_lets_an_old_low_priority_task_pass_newer_high_ones():
    old = task(1, priority=0, submitted_at=1000.0)
    # aging 1 level/s: p9 tasks submitted more than 9 s later go after it.
    soon = task(2, priority=9, submitted_at=1008.0)
    late = task(3, priority=9, submitted_at=1009.5)
    assert drain(PriorityStrategy(aging=1.0), [late, soon, old]) == ["t2", "t1", "t3"]
    assert PriorityStrategy(aging=1.0).overtake_window(0, 9) == 9.0


@given(
    st.lists(
        st.tuples(st.integers(0, 9), st.floats(0, 1000, allow_nan=False)), min_size=1, max_size=60
    ),
    st.floats(0.01, 10),
)
def test_priority_order_keeps_the_aging_promise(rows, aging):
    tasks = [task(i, p, 1_800_000_000.0 + t) for i, (p, t) in enumerate(rows)]
    order = drain(PriorityStrategy(aging=aging), tasks)
    position = {tid: i for i, tid in enumerate(order)}
    for a in tasks:
        for b in tasks:
            # b (higher priority) submitted more than (pb - pa)/aging after a never goes first
            window = (b.priority - a.priority) / aging
            if b.submitted_at - a.submitted_at > window + 1e-6:
                assert position[a.id] < position[b.id]


def test_plan_never_hands_a_worker_more_tasks_than_its_free_slots():
    workers = [
        WorkerView("a", slots=2, inflight=1),
        WorkerView("b", slots=3),
        WorkerView("c", 1, 1),
    ]
    queue = FifoStrategy().make_queue()
    for i in range(20):
        queue.add(task(i))
    decisions = plan(FifoStrategy(), queue, Snapshot(0.0, workers), limit=100)
    per_worker = {name: sum(d.worker == name for d in decisions) for name in "abc"}
    assert per_worker == {"a": 1, "b": 3, "c": 0}
    assert len(queue) == 16


def test_priority_prefers_the_least_loaded_then_most_reliable_worker():
    workers = [
        WorkerView("busy", slots=2, inflight=1),
        WorkerView("flaky", slots=2, succeeded=5, failed=5),
        WorkerView("solid", slots=2, succeeded=10, failed=0),
    ]
    queue = PriorityStrategy().make_queue()
    queue.add(task(1))
    decisions = plan(PriorityStrategy(), queue, Snapshot(0.0, workers), limit=1)
    assert [d.worker for d in decisions] == ["solid"]


def test_heap_queue_discards_and_ignores_duplicates():
    queue = FifoStrategy().make_queue()
    for i in range(200):
        queue.add(task(i))
    queue.add(task(5))
    assert len(queue) == 200
    for i in range(0, 200, 2):
        assert queue.discard(f"t{i}") is not None
    assert queue.discard("t0") is None
    popped = [queue.pop() for _ in range(100)]
    assert [t.id for t in popped if t] == [f"t{i}" for i in range(1, 200, 2)]
    assert queue.pop() is None
