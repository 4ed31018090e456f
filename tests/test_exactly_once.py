"""10,000 noop tasks through 2 workers: each reaches one terminal state, exactly once."""

from __future__ import annotations

import collections

import pytest

from scheduler.models import TaskState


@pytest.mark.slow
def test_ten_thousand_tasks_each_reach_one_terminal_state_and_the_counts_agree(cluster):
    c = cluster(strategy="fifo", events_maxlen=50_000)
    c.dispatcher()
    c.worker("a@test", slots=2)
    c.worker("b@test", slots=2)
    n = 10_000
    handles = c.client.submit_many([{"name": "noop", "priority": i % 10} for i in range(n)])
    assert len({h.id for h in handles}) == n

    records = c.client.wait(handles, timeout=600)
    assert [r.state for r in records] == [TaskState.SUCCEEDED] * n
    assert all(r.attempt == 1 for r in records)
    assert {r.worker for r in records} == {"a@test", "b@test"}

    counters = c.store.events.counters()
    assert counters["submitted"] == n
    assert counters["dispatched"] == n
    assert counters["started"] == n
    assert counters["succeeded"] == n
    assert "failed" not in counters
    assert "cancelled" not in counters

    # one terminal event per task: no task finished twice
    events = c.store.client.xrange(c.store.keys.events, count=n + 100)
    per_task = collections.Counter(fields["id"] for _, fields in events)
    assert len(per_task) == n
    assert set(per_task.values()) == {1}

    # nothing left behind: no pending index, no slot taken
    assert c.store.client.zcard(c.store.keys.pending) == 0
    assert sum(c.store.pending.counts().values()) == 0
    assert all(w.inflight == 0 for w in c.store.workers.load())
