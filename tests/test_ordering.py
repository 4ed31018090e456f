"""With one free slot, tasks start in exactly the strategy's order (real Redis, real workers)."""

from __future__ import annotations

import time

import pytest

from scheduler.models import TaskState


def started_order(cluster, handles):
    records = cluster.client.wait(handles, timeout=120)
    assert all(r.state == TaskState.SUCCEEDED for r in records)
    return [r.id for r in sorted(records, key=lambda r: r.started_at)]


def occupy_the_only_slot(c, seconds=1.5):
    blocker = c.client.submit("sleep", [seconds])
    deadline = time.monotonic() + 30
    while blocker.status() != TaskState.RUNNING:
        assert time.monotonic() < deadline, "the blocking task never started"
        time.sleep(0.01)
    return blocker


@pytest.mark.parametrize("handoff", [True, False], ids=["handoff", "dispatcher-only"])
def test_five_high_priority_tasks_run_before_any_waiting_low_priority_task(cluster, handoff):
    c = cluster(strategy="priority", handoff=handoff)
    c.dispatcher()
    c.worker("solo@test", slots=1)
    blocker = occupy_the_only_slot(c)
    low = c.client.submit_many([{"name": "noop", "priority": 0} for _ in range(50)])
    high = [c.client.submit("noop", priority=9) for _ in range(5)]
    assert blocker.status() == TaskState.RUNNING, "the slot must still be busy"

    order = started_order(c, [blocker, *low, *high])
    assert order[0] == blocker.id
    assert order[1:6] == [h.id for h in high]
    assert order[6:] == [h.id for h in low]


def test_fifo_starts_tasks_in_exact_submission_order(cluster):
    c = cluster(strategy="fifo")
    c.dispatcher()
    c.worker("solo@test", slots=1)
    blocker = occupy_the_only_slot(c, 1.0)
    mixed = [c.client.submit("noop", priority=p) for p in [0, 9, 3, 9, 1, 7, 0, 5] * 4]
    order = started_order(c, [blocker, *mixed])
    assert order == [blocker.id] + [h.id for h in mixed]


def test_a_worker_never_holds_more_than_its_slots_while_2000_tasks_drain(cluster):
    c = cluster(strategy="priority")
    c.dispatcher()
    slots = {"a@test": 1, "b@test": 2, "c@test": 3}
    for name, n in slots.items():
        c.worker(name, slots=n)
    queue_of = {c.store.keys.worker_queue(name): name for name in slots}
    handles = c.client.submit_many(
        [{"name": "sleep", "args": [0.002], "priority": i % 10} for i in range(2000)]
    )
    samples = 0
    peak = dict.fromkeys(slots, 0)
    peak_delivered = 0
    while True:
        with c.store.client.pipeline(transaction=False) as pipe:
            for name in slots:
                pipe.scard(c.store.keys.worker_tasks(name))
            pipe.hvals("unacked")  # what kombu delivered to each worker and it has not acked
            pipe.hget(c.store.keys.stats, "succeeded")
            *held, unacked, done = pipe.execute()
        for name, n in zip(slots, held, strict=True):
            assert n <= slots[name], f"{name} holds {n} dispatched tasks with {slots[name]} slots"
            peak[name] = max(peak[name], n)
        delivered = dict.fromkeys(slots, 0)
        for raw in unacked:
            routing_key = raw.split('"routing_key": "', 1)[1].split('"', 1)[0]
            delivered[queue_of[routing_key]] += 1
        for name, n in delivered.items():
            assert n <= slots[name], f"{name} was delivered {n} messages with {slots[name]} slots"
        peak_delivered = max(peak_delivered, sum(delivered.values()))
        samples += 1
        if int(done or 0) >= 2000:
            break
        time.sleep(0.002)
    records = c.client.wait(handles, timeout=60)
    assert {r.state for r in records} == {TaskState.SUCCEEDED}
    assert samples > 50
    assert peak_delivered > 1, "the broker-side check never saw a delivery"
    assert peak == slots, "every worker should have been filled to its slots at some point"
    by_worker = {name: sum(r.worker == name for r in records) for name in slots}
    assert all(n > 100 for n in by_worker.values()), by_worker
