"""Chaos in the middle of a workflow: a worker and the leading dispatcher SIGKILLed while
a 400-task random DAG runs. Nothing is lost, every task succeeds once, no child starts
before its parents finished, and no child is released twice (docs/workflows.md)."""

from __future__ import annotations

import collections
import sys
import time
from typing import Any

import pytest

from scheduler.models import TaskState
from scheduler.workload_dag import DagShape, generate_dag
from tests.reliability_support import (
    kill_tree,
    leader_token,
    leading_process,
    ledger_entries,
    same_attempt_repeats,
)

TASKS = 400
WORKERS = ["w1@wfchaos", "w2@wfchaos", "w3@wfchaos"]
DISPATCHERS = ["d1", "d2"]
SETTINGS: dict[str, Any] = {
    "strategy": "fifo",
    "heartbeat_interval": 0.5,
    "worker_timeout": 3.0,
    "dispatcher_lease": 3.0,
    "dispatch_timeout": 4.0,
}


def _ended(c: Any) -> int:
    counters = c.store.events.counters()
    return sum(counters.get(s, 0) for s in ("succeeded", "failed", "cancelled", "expired"))


@pytest.mark.slow
def test_sigkill_of_a_worker_and_the_leader_mid_workflow_loses_nothing_and_releases_once(
    cluster,
):
    c = cluster(**SETTINGS)
    for name in DISPATCHERS:
        c.dispatcher(name)
    for name in WORKERS:
        c.worker(name, slots=2)
    dag = generate_dag(TASKS, seed=11, workers=3, slots=2, shape=DagShape(fan_in=3, fan_out=3))
    items = [
        {"id": f"k.{t.id}", "name": "ledger", "args": ["wfchaos", 0.1]}
        | {"depends_on": [f"k.{p}" for p in t.depends_on]}
        for t in dag
    ]
    wf, handles = c.client.submit_workflow(items)
    ids = [h.id for h in handles]

    worker_killed = leader_killed = False
    killed_pids: set[int] = set()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ended = _ended(c)
        if ended >= TASKS:
            break
        if not worker_killed and ended >= TASKS // 5:
            proc = c.procs[WORKERS[0]]
            killed_pids.update(kill_tree(proc.pid))
            proc.wait()
            worker_killed = True
        if not leader_killed and ended >= TASKS // 2:
            name = leading_process(c, DISPATCHERS)
            old = leader_token(c)
            kill_tree(c.procs[name].pid)
            c.procs.pop(name).wait()
            leader_killed = True
            c.spawn(name + "-again", [sys.executable, "-m", "scheduler.cli", "dispatcher"])
            assert old
        time.sleep(0.05)
    assert worker_killed
    assert leader_killed
    assert _ended(c) >= TASKS, f"the workflow did not finish: {c.client.workflow(wf).counts}"

    records = {r.id: r for r in c.client.wait(handles, timeout=60)}
    assert collections.Counter(r.state for r in records.values()) == {TaskState.SUCCEEDED: TASKS}
    # one terminal event per task
    events = c.store.client.xrange(c.store.keys.events, count=TASKS * 2)
    assert collections.Counter(f["id"] for _, f in events) == dict.fromkeys(ids, 1)
    # every child released once, after its parents finished, and started after that
    fields = c.store.tasks.fields(ids, ["releases"])
    assert {f["releases"] for f in fields} == {"1"}
    for r in records.values():
        for parent in r.depends_on:
            assert r.released_at is not None
            assert r.started_at is not None
            assert r.released_at >= (records[parent].finished_at or 0)
            assert r.started_at >= r.released_at
    # no delivery ran a body twice; a body that ran again did so after a kill
    entries = ledger_entries(c, "wfchaos")
    assert same_attempt_repeats(entries) == []
    runs = collections.Counter(e[0] for e in entries)
    assert set(runs) == set(ids)
    for task_id, n in runs.items():
        if n > 1:
            earlier = sorted((e for e in entries if e[0] == task_id), key=lambda e: e[1])[:-1]
            assert all(e[3] in killed_pids for e in earlier), task_id
    assert c.store.client.zcard(c.store.keys.pending) == 0
