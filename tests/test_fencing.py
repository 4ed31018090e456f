"""The fences in the Lua scripts, one by one, against a real Redis (no worker needed)."""

from __future__ import annotations

import time

import pytest

from scheduler.client import Client
from scheduler.embedded import EmbeddedRedis
from scheduler.errors import NotLeaderError
from scheduler.settings import load_settings
from scheduler.store import FinishReport, Store, Verdict, connect

W = "w@fence"


def _store(redis_server: EmbeddedRedis, **settings: object) -> Store:
    s = load_settings(redis_url=redis_server.url, **settings)
    store = Store(connect(redis_server.url), s)
    store.workers.register(W, 2, "host", 1, ["noop", "ledger_once"])
    return store


def _claimed(store: Store, name: str = "noop") -> str:
    [handle] = Client(store, known_tasks=[name]).submit_many([{"name": name}])
    [claim] = store.pending.claim([(handle.id, W)])
    assert claim.status == "ok"
    return handle.id


def test_a_start_sent_again_runs_but_a_second_delivery_of_a_running_attempt_is_skipped(
    redis_server,
):
    store = _store(redis_server)
    task_id = _claimed(store)
    assert store.deliveries.start(task_id, W, 1, "first")[0] is True
    assert store.deliveries.start(task_id, W, 1, "first")[0] is True  # the same call, sent again
    run, state, _ = store.deliveries.start(task_id, W, 1, "second")
    assert run is False
    assert state.startswith("running")
    assert store.events.counters()["started"] == 1
    # The skipped delivery's report neither ends the task nor frees its slot.
    assert store.deliveries.finish(W, FinishReport(task_id, 1, Verdict("skipped"))) == "stale"
    assert store.client.sismember(store.keys.worker_tasks(W), task_id)
    assert store.deliveries.finish(W, FinishReport(task_id, 1, Verdict("succeeded"))) == "ok"


def test_an_earlier_attempts_report_cannot_free_the_current_attempts_slot(redis_server):
    store = _store(redis_server)
    task_id = _claimed(store)
    store.pending.requeue(W, [task_id])  # attempt 1 handed back
    [again] = store.pending.claim([(task_id, W)])
    assert again.attempt == 2
    assert store.deliveries.start(task_id, W, 1, "old")[0] is False
    for outcome in ("skipped", "succeeded", "failed"):
        assert store.deliveries.finish(W, FinishReport(task_id, 1, Verdict(outcome))) == "stale"
    assert store.client.sismember(store.keys.worker_tasks(W), task_id)
    assert store.tasks.outcome(task_id)[0] == "dispatched"


def test_a_delivery_whose_start_was_never_recorded_returns_its_task_to_pending(redis_server):
    store = _store(redis_server)
    task_id = _claimed(store)
    assert store.deliveries.finish(W, FinishReport(task_id, 1, Verdict("skipped"))) == "released"
    assert store.tasks.outcome(task_id)[0] == "pending"
    assert store.client.zscore(store.keys.pending, task_id) is not None
    assert not store.client.sismember(store.keys.worker_tasks(W), task_id)
    [again] = store.pending.claim([(task_id, W)])
    assert again.attempt == 2


def test_an_unstarted_claim_returns_to_pending_after_the_dispatch_timeout_only(redis_server):
    store = _store(redis_server)
    waiting, started = _claimed(store), _claimed(store)
    assert store.deliveries.start(started, W, 1, "n")[0] is True
    assert store.pending.recover_unstarted([W], timeout=1.0) == []  # too early
    time.sleep(1.2)
    assert store.pending.recover_unstarted([W], timeout=1.0) == [waiting]
    assert store.tasks.outcome(waiting)[0] == "pending"
    assert store.tasks.outcome(started)[0] == "running"
    assert store.pending.recover_unstarted([W], timeout=1.0) == []  # once
    assert (
        store.deliveries.start(waiting, W, 1, "late")[0] is False
    )  # its late message runs nothing
    assert store.events.counters()["recovered_unstarted"] == 1


def test_a_deposed_dispatcher_can_neither_claim_nor_take_the_hand_off_list_back(redis_server):
    store = _store(redis_server)
    assert store.leases.take("old", 1.0)
    time.sleep(1.1)
    assert store.leases.take("new", 10.0)
    [handle] = Client(store, known_tasks=["noop"]).submit_many([{"name": "noop"}])
    store.handoff.fill("new", [(handle.id, False, "{}")])
    with pytest.raises(NotLeaderError):
        store.pending.claim([(handle.id, W)], "old")
    with pytest.raises(NotLeaderError):
        store.handoff.reclaim("old")
    with pytest.raises(NotLeaderError):
        store.handoff.fill("old", [(handle.id, False, "{}")])
    assert store.handoff.length() == 1
    assert store.handoff.reclaim("new") == [handle.id]


def test_a_lost_running_task_of_a_fail_on_orphan_type_fails_once_and_others_requeue(
    redis_server,
):
    store = _store(redis_server)
    store.workers.set_orphan_policies({"ledger_once": "fail", "noop": "requeue"})
    once, again = _claimed(store, "ledger_once"), _claimed(store)
    store.deliveries.start(once, W, 1, "a")
    store.deliveries.start(again, W, 1, "b")
    store.client.hset(store.keys.worker(W), "slots", 3)
    unstarted = _claimed(store, "ledger_once")
    assert store.workers.deregister(W) == 3
    assert store.tasks.outcome(once)[0] == "failed"
    assert "on_orphan=fail" in (store.tasks.outcome(once)[2] or "")
    assert store.tasks.outcome(again)[0] == "pending"
    assert store.tasks.outcome(unstarted)[0] == "pending", "a body that never started is requeued"
    assert store.workers.deregister(W) == 0
    assert store.events.counters()["failed"] == 1
