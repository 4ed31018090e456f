"""The dispatcher's limits around a pure strategy: lanes in turn, caps and tokens (no Redis needed)."""

from __future__ import annotations

from scheduler.gate import Gate, GatedQueue
from scheduler.models import PendingTask
from scheduler.settings import load_settings
from scheduler.strategies import create_strategy


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(strategy="fifo", rates=None, clock=None):
    s = create_strategy(strategy, load_settings({}, strategy=strategy))
    gate = Gate(0.1, clock or Clock())
    gate.set_rates(rates or {})
    return GatedQueue(s, s.make_queue, gate), gate


seq = iter(range(1, 1_000_000))


def task(name="noop", key=None, cap=None, priority=5):
    n = next(seq)
    return PendingTask(
        f"t{n}", name, priority, n, float(n), concurrency_key=key, max_concurrent=cap
    )


def drain(queue, gate=None):
    out = []
    while (t := queue.pop()) is not None:
        out.append(t)
    queue.settle()
    return out


def test_without_limits_the_order_is_exactly_the_strategys_and_planning_uses_its_own_queue():
    queue, _ = make("priority")
    tasks = [task(priority=p) for p in (1, 9, 5, 9, 0)]
    for t in tasks:
        queue.add(t)
    assert queue.plain() is not None
    expected = sorted(tasks, key=lambda t: (-t.priority, t.seq))
    assert [t.id for t in drain(queue)] == [t.id for t in expected]


def test_keys_take_turns_so_a_flood_gets_one_turn_per_round():
    queue, _ = make()
    flood = [task(key="flood", cap=100) for _ in range(20)]
    late = [task(key="late", cap=100) for _ in range(3)]
    plain = [task() for _ in range(2)]
    for t in [*flood, *late, *plain]:
        queue.add(t)
    assert queue.plain() is None
    order = [t.id for t in drain(queue)]
    # rotation: the plain lane, flood, late, then again
    assert order[:9] == [
        plain[0].id, flood[0].id, late[0].id,
        plain[1].id, flood[1].id, late[1].id,
        flood[2].id, late[2].id, flood[3].id,
    ]  # fmt: skip
    assert order[9:] == [t.id for t in flood[4:]]


def test_a_key_at_its_cap_is_skipped_and_keeps_its_place():
    queue, gate = make()
    a = [task(key="a", cap=2) for _ in range(4)]
    b = [task(key="b", cap=5) for _ in range(4)]
    for t in [*a, *b]:
        queue.add(t)
    gate.running = {"a": 1}
    got = drain(queue)
    assert [t.id for t in got if t.concurrency_key == "a"] == [a[0].id], "one more fits under 2"
    assert [t.id for t in got if t.concurrency_key == "b"] == [t.id for t in b[:4]]
    gate.running = {"a": 0}
    assert [t.id for t in drain(queue)] == [a[1].id, a[2].id]  # in order, two at a time


def test_a_task_put_back_refunds_its_charge():
    queue, gate = make()
    t = task(key="a", cap=1)
    queue.add(t)
    assert queue.pop() is t
    assert gate.running == {"a": 1}
    queue.add(t)  # the strategy held it back, or the claim found no slot
    assert gate.running == {"a": 0}
    assert queue.pop() is t


def test_a_rate_limited_name_waits_for_tokens_and_other_tasks_pass_it():
    clock = Clock()
    queue, gate = make(rates={"slow": 2.0}, clock=clock)
    slow = [task("slow") for _ in range(5)]
    fast = [task() for _ in range(3)]
    for t in [*slow, *fast]:
        queue.add(t)
    assert [t.id for t in drain(queue)] == [t.id for t in fast], "a new bucket starts empty"
    clock.now = 0.5  # one token at 2/s
    assert [t.id for t in drain(queue)] == [slow[0].id]
    assert gate.next_token_in(iter(["slow"])) == 0.5
    clock.now = 10.0  # a long idle time banks at most max(1, rate * burst) tokens
    assert [t.id for t in drain(queue)] == [slow[1].id]
    assert len(queue) == 3


def test_changing_the_rates_regroups_the_waiting_tasks():
    queue, gate = make()
    tasks = [task("slow") for _ in range(3)]
    for t in tasks:
        queue.add(t)
    gate.set_rates({"slow": 1.0})
    queue.regroup()
    assert queue.plain() is None
    assert queue.pop() is None
    gate.set_rates({})
    queue.regroup()
    assert [t.id for t in drain(queue)] == [t.id for t in tasks]
