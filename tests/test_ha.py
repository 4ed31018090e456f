"""Dispatcher high availability: one leads, a standby takes over, nothing is dispatched twice."""

from __future__ import annotations

import signal
import time

from broker_config import CeleryPublisher, make_celery
from scheduler.dispatcher import Dispatch
from scheduler.models import TaskState
from tests.reliability_support import (
    kill_tree,
    leader_token,
    leading_process,
    ledger_entries,
    same_attempt_repeats,
    wait_for,
)

NAMES = ["d1", "d2"]


def test_a_dispatcher_stopped_with_sigterm_releases_its_lease_and_a_standby_leads_at_once(cluster):
    c = cluster(dispatcher_lease=30.0)
    c.dispatcher("d1")
    c.dispatcher("d2")
    c.worker("w@ha", slots=2)
    first = leader_token(c)
    leader = leading_process(c, NAMES)

    stopped = time.monotonic()
    c.procs[leader].send_signal(signal.SIGTERM)
    assert c.procs[leader].wait(timeout=20) == 0
    took_over = wait_for(lambda: leader_token(c) not in ("", first), "takeover", timeout=25)
    waited = time.monotonic() - stopped
    # A lapsed lease would take 30 s: the lease was given up, not left to expire.
    assert waited < 15.0, f"the standby waited {waited:.1f}s: the lease was not released"
    assert leading_process(c, NAMES) != leader
    assert took_over

    handles = c.client.submit_many([{"name": "ledger", "args": ["t1"]} for _ in range(20)])
    records = c.client.wait(handles, timeout=60)
    assert {r.state for r in records} == {TaskState.SUCCEEDED}


def test_a_standby_takes_over_from_a_sigkilled_leader_and_no_task_body_runs_twice(cluster):
    c = cluster(dispatcher_lease=2.0, dispatch_timeout=3.0, strategy="fifo")
    c.dispatcher("d1")
    c.dispatcher("d2")
    c.worker("a@ha", slots=2)
    c.worker("b@ha", slots=2)
    handles = c.client.submit_many([{"name": "ledger", "args": ["t2", 0.01]} for _ in range(600)])
    wait_for(lambda: c.store.events.counters().get("succeeded", 0) >= 100, "progress")
    first = leader_token(c)
    leader = leading_process(c, NAMES)
    killed = time.monotonic()
    kill_tree(c.procs[leader].pid)
    c.procs.pop(leader).wait()
    wait_for(lambda: leader_token(c) not in ("", first), "takeover", timeout=30)
    takeover = time.monotonic() - killed

    records = c.client.wait(handles, timeout=180)
    assert {r.state for r in records} == {TaskState.SUCCEEDED}
    entries = ledger_entries(c, "t2")
    assert same_attempt_repeats(entries) == []
    # No worker died, so every body ran exactly once, whatever the leader did.
    assert sorted(e[0] for e in entries) == sorted(h.id for h in handles)
    # The lease lapses after its TTL; the standby polls it every TTL/3.
    assert takeover < 30.0


def test_a_frozen_leader_is_superseded_and_after_waking_can_no_longer_claim(cluster):
    c = cluster(dispatcher_lease=2.0, dispatch_timeout=3.0, strategy="fifo")
    c.dispatcher("d1")
    c.dispatcher("d2")
    c.worker("a@ha", slots=2)
    handles = c.client.submit_many([{"name": "ledger", "args": ["t3", 0.01]} for _ in range(400)])
    wait_for(lambda: c.store.events.counters().get("succeeded", 0) >= 50, "progress")
    first = leader_token(c)
    frozen = c.procs[leading_process(c, NAMES)]
    frozen.send_signal(signal.SIGSTOP)  # cut off: alive, holding its lease, silent
    try:
        wait_for(lambda: leader_token(c) not in ("", first), "takeover", timeout=30)
        done = c.store.events.counters().get("succeeded", 0)
        wait_for(
            lambda: c.store.events.counters().get("succeeded", 0) > done + 20, "progress after"
        )
    finally:
        frozen.send_signal(signal.SIGCONT)
    records = c.client.wait(handles, timeout=180)
    assert {r.state for r in records} == {TaskState.SUCCEEDED}
    entries = ledger_entries(c, "t3")
    assert same_attempt_repeats(entries) == []
    assert sorted(e[0] for e in entries) == sorted(h.id for h in handles)
    assert leader_token(c) != first, "the woken dispatcher must not take the lease back"
    log = (c.log_dir / f"{next(n for n, p in c.procs.items() if p is frozen)}.log").read_text()
    assert "lost the dispatcher lease; standing by" in log


def test_a_deposed_dispatchers_late_publish_is_skipped_and_frees_no_slot(cluster):
    """A claim whose publish never came is recovered; the late message then runs nothing."""
    c = cluster(dispatcher_lease=2.0, dispatch_timeout=2.0, strategy="fifo")
    c.worker("w@late", slots=2)
    # The deposed dispatcher: it took the lease and claimed the task for w@late,
    # then stalled before publishing (as if SIGSTOPped between claim and publish).
    handle = c.client.submit("ledger", ["t4", 3.0])
    token = "deposed-dispatcher"
    assert c.store.leases.take(token, 2.0)
    [claim] = c.store.pending.claim([(handle.id, "w@late")], token)
    assert (claim.status, claim.attempt) == ("ok", 1)

    # A real dispatcher takes over when the lease lapses, finds the claim that
    # never started, returns it to pending and dispatches it again (attempt 2).
    c.dispatcher("successor")
    wait_for(lambda: handle.status() == TaskState.RUNNING, "attempt 2 running", timeout=30)
    assert handle.record().attempt == 2

    # Now the deposed dispatcher wakes up and publishes what it had claimed.
    publisher = CeleryPublisher(make_celery(c.settings, c.redis.url), c.store)
    queue = c.store.keys.worker_queue("w@late")
    # Its message carries its claim's time, long past: the worker waits for the start.
    stale = Dispatch(
        handle.id, "ledger", claim.args, claim.kwargs, "w@late", queue, 1, claim.options, claim.at
    )
    publisher.publish([stale])
    wait_for(lambda: c.store.client.llen(queue) == 0, "the worker took the late message")
    time.sleep(0.5)  # its start (skip) and finish reports
    assert handle.status() == TaskState.RUNNING
    members = c.store.client.smembers(c.store.keys.worker_tasks("w@late"))
    assert members == {handle.id}, "the stale delivery must not free attempt 2's slot"

    [record] = c.client.wait([handle], timeout=60)
    assert record.state == TaskState.SUCCEEDED
    assert record.attempt == 2
    assert [e[:2] for e in ledger_entries(c, "t4")] == [(handle.id, 2)]
    log = (c.log_dir / "w@late.log").read_text()
    assert f"skipping delivery 1 of {handle.id}" in log
    assert c.store.events.counters()["started"] == 1


def test_a_submission_whose_inbox_entry_a_deposed_dispatcher_took_still_runs(cluster):
    """A woken deposed leader can pop inbox entries once before it learns it lost the lease."""
    c = cluster(dispatcher_lease=30.0, heartbeat_interval=0.5, strategy="fifo")
    leader = c.dispatcher("d1")
    c.worker("w@inbox", slots=1)
    leader.send_signal(signal.SIGSTOP)
    try:
        time.sleep(1.0)  # its last BLPOP (0.5 s) times out; it asks for nothing more
        handle = c.client.submit("ledger", ["inbox"])
        stolen = c.store.client.lpop(c.store.keys.inbox)  # what the deposed one would pop
        assert handle.id in stolen
    finally:
        leader.send_signal(signal.SIGCONT)
    [record] = c.client.wait([handle], timeout=60)
    assert record.state == TaskState.SUCCEEDED
    assert "an inbox entry was lost; resyncing" in (c.log_dir / "d1.log").read_text()
