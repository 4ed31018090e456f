"""Redis stopped and restarted mid-run (AOF on): no accepted task is lost, nobody is restarted."""

from __future__ import annotations

from scheduler.models import TaskState
from tests.reliability_support import ledger_entries, same_attempt_repeats, wait_for


def test_a_redis_restart_mid_run_loses_no_accepted_task_and_everyone_reconnects(aof_cluster):
    c = aof_cluster(strategy="fifo", heartbeat_interval=0.5, worker_timeout=3.0)
    dispatcher = c.dispatcher()
    workers = [c.worker("a@rr", slots=2), c.worker("b@rr", slots=2)]
    before = c.client.submit_many([{"name": "ledger", "args": ["rr", 0.02]} for _ in range(300)])
    wait_for(lambda: c.store.events.counters().get("succeeded", 0) >= 50, "progress")

    c.redis.restart(down=2.0)  # SIGTERM: Redis writes its AOF and exits; then back on the same port

    # The same client, dispatcher and workers carry on: nothing was restarted.
    after = c.client.submit_many([{"name": "ledger", "args": ["rr", 0.02]} for _ in range(100)])
    records = c.client.wait([*before, *after], timeout=180)
    assert {r.state for r in records} == {TaskState.SUCCEEDED}
    assert c.store.events.counters()["succeeded"] == 400
    assert dispatcher.poll() is None
    assert all(w.poll() is None for w in workers)
    entries = ledger_entries(c, "rr")
    assert same_attempt_repeats(entries) == []
    # No worker died, so every body ran once, across the outage.
    assert sorted(e[0] for e in entries) == sorted(r.id for r in records)
    assert {w.name for w in c.store.workers.load()} == {"a@rr", "b@rr"}
