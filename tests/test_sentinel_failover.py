"""Chaos with failover: the Redis master SIGKILLed mid-run, Sentinel promotes the replica.

A real primary, one replica and three Sentinels (``redis-sentinel``) on loopback ports;
two dispatchers and three workers connect through the Sentinels. The master is
SIGKILLed once a third of the tasks finished; Sentinel promotes the replica, every
process finds it, and the old master comes back as a replica of the new one.

With ``YM_DURABLE_REPLICAS=1`` every accepted task must end in exactly one terminal
state, the list the bodies append to through their outbox must hold each id exactly
once, and no delivery may run its body twice. With it off the run must still finish;
what was lost is counted against docs/reliability.md ("Failover") and printed. The
figures go to ``failover-DURABLE.json`` in the test's directory, and to
``$YM_FAILOVER_RESULTS`` when set. ``YM_FAILOVER_TASKS`` sets the number of tasks
(3,000 by default, as the issue asks).
"""

from __future__ import annotations

import collections
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from scheduler.errors import StoreError
from scheduler.models import TERMINAL_STATES, TaskState
from scheduler.store import connect
from tests.reliability_support import ledger_entries, same_attempt_repeats, wait_for

TASKS = int(os.environ.get("YM_FAILOVER_TASKS", "3000"))
WORKERS = ["w1@fo", "w2@fo", "w3@fo"]
DISPATCHERS = ["d1", "d2"]
SETTINGS: dict[str, Any] = {
    "strategy": "fifo",
    "heartbeat_interval": 0.5,
    "worker_timeout": 5.0,
    "dispatcher_lease": 3.0,
    "dispatch_timeout": 4.0,
    "redis_retry": 120.0,
    "events_maxlen": 50_000,
}


def _records(c: Any, ids: list[str]) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(ids), 500):
        out += c.store.tasks.records(ids[start : start + 500])
    return out


def _settled(c: Any, ids: list[str]) -> bool:
    """Every task terminal, or gone (a record the failover lost: counted, not waited on)."""
    return all(r is None or r.state in TERMINAL_STATES for r in _records(c, ids))


@pytest.mark.parametrize("durable", [1, 0], ids=["durable", "not-durable"])
def test_a_master_killed_mid_run_is_replaced_and_no_accepted_task_is_lost_or_run_twice(
    ha_cluster, tmp_path, durable
):
    c = ha_cluster(durable_replicas=durable, durable_timeout=5.0, **SETTINGS)
    for name in DISPATCHERS:
        c.dispatcher(name)
    for name in WORKERS:
        c.worker(name, slots=2)
    handles = c.client.submit_many(
        [{"name": "ledger", "args": ["fo", 0.005]} for _ in range(TASKS)]
    )
    ids = [h.id for h in handles]
    topology = c.redis

    started = time.monotonic()
    killed_at_done = -1
    old_port = topology.master_port()
    assert old_port is not None
    wait_for(
        lambda: c.store.events.counters().get("succeeded", 0) >= TASKS // 3,
        "a third of the tasks",
        timeout=300,
    )
    killed_at_done = c.store.events.counters().get("succeeded", 0)
    t0 = time.monotonic()
    old = topology.kill_master()
    new_port = topology.wait_failover(old_port, timeout=60)
    failover = time.monotonic() - t0
    topology.rejoin(old)  # the old master, back as a replica of the new one

    def settled() -> bool:
        try:
            return _settled(c, ids)
        except StoreError:
            return False  # a connection still on its way to the new master

    wait_for(settled, "every task to end", timeout=600, step=0.5)
    wall = time.monotonic() - started

    records = _records(c, ids)
    states = collections.Counter(r.state if r else "missing" for r in records)
    entries = ledger_entries(c, "fo")
    committed = ledger_entries(c, "fo", committed=True)
    commits = collections.Counter(e[0] for e in committed)
    repeats = same_attempt_repeats(entries)
    events = c.store.client.xrange(c.store.keys.events, count=TASKS * 3)
    terminal_events = collections.Counter(fields["id"] for _, fields in events)
    counters = c.store.events.counters()
    figures: dict[str, Any] = {
        "tasks": TASKS,
        "durable_replicas": durable,
        "killed_after_succeeded": killed_at_done,
        "failover_seconds": round(failover, 2),
        "old_master": old_port,
        "new_master": new_port,
        "wall_seconds": round(wall, 1),
        "states": {str(k): v for k, v in states.items()},
        "lost_records": states.get("missing", 0),
        "not_succeeded": TASKS - states.get(TaskState.SUCCEEDED, 0),
        "same_attempt_repeats": len(repeats),
        "bodies_completed": len(entries),
        "effects_committed": len(committed),
        "tasks_without_effect": len(set(ids) - set(commits)),
        "duplicate_effects": sum(n - 1 for n in commits.values()),
        "duplicate_terminal_events": sum(n - 1 for n in terminal_events.values()),
        "attempts": dict(collections.Counter(r.attempt for r in records if r)),
        "recovered_unstarted": counters.get("recovered_unstarted", 0),
    }
    text = json.dumps(figures, indent=2, sort_keys=True)
    (tmp_path / f"failover-{durable}.json").write_text(text)
    if os.environ.get("YM_FAILOVER_RESULTS"):
        Path(os.environ["YM_FAILOVER_RESULTS"]).write_text(text + "\n")
    print(text)

    assert new_port != old_port
    assert all(p.poll() is None for p in c.procs.values()), "a process died in the failover"
    # the old master came back as a replica of the new one: nobody writes to it
    assert connect(old.url).info("replication")["role"] == "slave"
    assert topology.master_port() == new_port
    if not durable:
        # the run finishes; what it lost is printed above and bounded in the docs
        return
    assert states == {TaskState.SUCCEEDED: TASKS}, figures
    assert set(terminal_events) >= set(ids)
    assert all(terminal_events[i] == 1 for i in ids), figures
    assert repeats == [], figures
    assert figures["duplicate_effects"] == 0, figures
    assert set(commits) == set(ids), figures
    assert len(committed) == TASKS
    assert c.store.client.info("replication")["connected_slaves"] >= 1
