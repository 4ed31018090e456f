"""Orphan recovery: a lost worker's tasks go back to pending, or fail per their type's policy, once."""

from __future__ import annotations

import collections
import sys

from scheduler.models import TaskState
from tests.reliability_support import kill_tree, ledger_entries, wait_for


def test_a_killed_workers_tasks_requeue_or_fail_per_their_on_orphan_policy_exactly_once(cluster):
    c = cluster(strategy="fifo", worker_timeout=2.0, heartbeat_interval=0.5)
    c.dispatcher()
    victim = c.worker("victim@orphan", slots=2)
    again = c.client.submit("ledger", ["or", 3.0])
    once = c.client.submit("ledger_once", ["or", 3.0])
    wait_for(lambda: {again.status(), once.status()} == {TaskState.RUNNING}, "both running")
    assert c.store.client.hget(c.store.keys.orphan_policy, "ledger_once") == "fail"

    kill_tree(victim.pid)
    victim.wait()
    del c.procs["victim@orphan"]
    wait_for(lambda: once.status() == TaskState.FAILED, "declared dead", timeout=30)
    assert "on_orphan=fail" in once.record().error
    assert again.status() == TaskState.PENDING

    c.worker("rescuer@orphan", slots=2)
    [rescued] = c.client.wait([again], timeout=60)
    assert rescued.state == TaskState.SUCCEEDED
    assert rescued.worker == "rescuer@orphan"
    assert rescued.attempt == 2
    assert once.record().attempt == 1, "a failed orphan is not dispatched again"
    assert [e[:2] for e in ledger_entries(c, "or")] == [(again.id, 2)]
    counters = c.store.events.counters()
    assert (counters["succeeded"], counters["failed"]) == (1, 1)
    events = collections.Counter(f["id"] for _, f in c.store.client.xrange(c.store.keys.events))
    assert events == {again.id: 1, once.id: 1}


def test_a_worker_refuses_to_start_with_an_unknown_orphan_policy_and_names_the_task(cluster):
    c = cluster()
    cmd = [sys.executable, "-m", "celery", "-A", "tests.bad_policy_app", "worker", "-c", "1"]
    cmd += ["-n", "bad@orphan", "--without-gossip", "--without-mingle", "-l", "WARNING"]
    proc = c.spawn("bad", cmd)
    proc.wait(timeout=60)
    log = (c.log_dir / "bad.log").read_text()
    assert "tests.sometimes.on_orphan='sometimes' is not accepted" in log
    assert "allowed: requeue or fail" in log
    assert c.store.workers.load() == []
