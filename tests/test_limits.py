"""Concurrency keys and global rate limits, enforced by the dispatcher (real Redis, 3 real workers)."""

from __future__ import annotations

import time

from scheduler.models import TaskState


def overlap_peak(records):
    """Most tasks running at once, from their start and finish times."""
    edges = sorted(
        [(r.started_at, 1) for r in records] + [(r.finished_at, -1) for r in records],
        key=lambda e: (e[0], e[1]),
    )
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def three_workers(c):
    for name in ("a@test", "b@test", "c@test"):
        c.worker(name, slots=2)


def test_a_concurrency_key_never_exceeds_its_cap_while_three_workers_drain_a_mixed_backlog(cluster):
    c = cluster()
    c.dispatcher()
    three_workers(c)
    caps = {"flood": 3, "cust-a": 2, "cust-b": 1}
    specs = [
        {"name": "sleep", "args": [0.05], "concurrency_key": "flood", "max_concurrent": 3}
    ] * 30
    specs += [
        {"name": "sleep", "args": [0.05], "concurrency_key": "cust-a", "max_concurrent": 2}
    ] * 8
    specs += [
        {"name": "sleep", "args": [0.05], "concurrency_key": "cust-b", "max_concurrent": 1}
    ] * 6
    specs += [{"name": "sleep", "args": [0.02]}] * 20
    handles = c.client.submit_many(specs)
    peak = dict.fromkeys(caps, 0)
    while c.store.events.counters().get("succeeded", 0) < len(specs):
        with c.store.client.pipeline(transaction=False) as pipe:
            for key in caps:
                pipe.scard(c.store.keys.concurrency(key))
            counts = pipe.execute()
        for key, n in zip(caps, counts, strict=True):
            assert n <= caps[key], f"{key} had {n} tasks dispatched or running, cap {caps[key]}"
            peak[key] = max(peak[key], n)
        time.sleep(0.002)
    records = c.client.wait(handles, timeout=60)
    assert {r.state for r in records} == {TaskState.SUCCEEDED}
    for key, cap in caps.items():
        mine = [r for r, s in zip(records, specs, strict=True) if s.get("concurrency_key") == key]
        assert overlap_peak(mine) <= cap, key
    assert peak == caps, "each key should have reached its cap while the backlog drained"
    assert overlap_peak(records) > 3, "unkeyed tasks and other keys used the remaining slots"
    for key in caps:
        assert c.store.client.scard(c.store.keys.concurrency(key)) == 0


def test_a_flood_of_one_key_does_not_delay_another_keys_tasks_beyond_its_fair_share(cluster):
    c = cluster()
    c.dispatcher()
    three_workers(c)
    flood = [
        {"name": "sleep", "args": [0.05], "concurrency_key": "flood", "max_concurrent": 6}
    ] * 60
    small = [{"name": "sleep", "args": [0.05], "concurrency_key": "small", "max_concurrent": 6}] * 8
    handles = c.client.submit_many(flood + small)  # the flood is ahead in submission order
    records = c.client.wait(handles, timeout=60)
    assert {r.state for r in records} == {TaskState.SUCCEEDED}
    small_last = max(r.dispatched_at for r in records[60:])
    flood_before = sum(r.dispatched_at < small_last for r in records[:60])
    # Two keys take turns: while the small key's 8 tasks are dispatched, the flood
    # gets about as many (plus the 6 slots filled before both were seen). First come,
    # first served would dispatch all 60 flood tasks first.
    assert flood_before <= 8 + 6 + 2, flood_before


def test_a_global_rate_limit_holds_within_ten_percent_over_thirty_seconds_with_three_workers(
    cluster,
):
    c = cluster()
    c.dispatcher()
    three_workers(c)
    rate, window = 10.0, 30.0
    c.client.set_rate_limit("noop", rate)
    assert c.client.rate_limits() == {"noop": rate}
    handles = c.client.submit_many([{"name": "noop"} for _ in range(int(rate * window * 1.3))])
    first = None
    while first is None:
        first = min(
            (
                r.dispatched_at
                for r in c.store.tasks.records([h.id for h in handles[:20]])
                if r and r.dispatched_at
            ),
            default=None,
        )
        time.sleep(0.05)
    time.sleep(window + 1.5 - (c.store.server_time() - first))
    for h in handles:
        h.cancel()
    records = c.client.wait(handles, timeout=60)
    times = sorted(r.dispatched_at for r in records if r.dispatched_at is not None)
    t0 = times[0]
    in_window = sum(t0 <= t < t0 + window for t in times)
    assert abs(in_window - rate * window) <= 0.1 * rate * window, in_window
    # and no burst inside it: any 5 s stretch stays near 5 s of tokens
    for start in range(int(window) - 5):
        n = sum(t0 + start <= t < t0 + start + 5 for t in times)
        assert n <= rate * 5 * 1.1 + 1, (start, n)
    # the limit, not the capacity, set the pace: 6 idle slots run hundreds of noops a second
    assert len(c.store.workers.load()) == 3
    assert sum(r.state == TaskState.CANCELLED for r in records) > 0.1 * rate * window
