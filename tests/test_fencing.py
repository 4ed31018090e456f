"""The fences in the Lua scripts, one by one, against a real Redis (no worker needed)."""

from __future__ import annotations

import time

import pytest
from redis.exceptions import ResponseError

from scheduler.client import Client
from scheduler.embedded import EmbeddedRedis
from scheduler.settings import load_settings
from scheduler.store import StateStore, connect

W = "w@fence"


def _store(redis_server: EmbeddedRedis, **settings: object) -> StateStore:
    s = load_settings(redis_url=redis_server.url, **settings)
    store = StateStore(connect(redis_server.url), s)
    store.register_worker(W, 2, "host", 1, ["noop", "ledger_once"])
    return store


def _claimed(store: StateStore, name: str = "noop") -> str:
    [handle] = Client(store, known_tasks=[name]).submit_many([{"name": name}])
    [claim] = store.claim([(handle.id, W)])
    assert claim.status == "ok"
    return handle.id


def test_a_start_sent_again_runs_but_a_second_delivery_of_a_running_attempt_is_skipped(
    redis_server,
):
    store = _store(redis_server)
    task_id = _claimed(store)
    assert store.start(task_id, W, 1, "first")[0] is True
    assert store.start(task_id, W, 1, "first")[0] is True  # the same call, sent again
    run, state, _ = store.start(task_id, W, 1, "second")
    assert run is False
    assert state.startswith("running")
    assert store.counters()["started"] == 1
    # The skipped delivery's report neither ends the task nor frees its slot.
    assert store.finish(task_id, W, 1, "skipped") == "stale"
    assert store.redis.sismember(store.keys.worker_tasks(W), task_id)
    assert store.finish(task_id, W, 1, "succeeded") == "ok"


def test_an_earlier_attempts_report_cannot_free_the_current_attempts_slot(redis_server):
    store = _store(redis_server)
    task_id = _claimed(store)
    store.requeue(W, [task_id])  # attempt 1 handed back
    [again] = store.claim([(task_id, W)])
    assert again.attempt == 2
    assert store.start(task_id, W, 1, "old")[0] is False
    for outcome in ("skipped", "succeeded", "failed"):
        assert store.finish(task_id, W, 1, outcome) == "stale"
    assert store.redis.sismember(store.keys.worker_tasks(W), task_id)
    assert store.outcome(task_id)[0] == "dispatched"


def test_a_delivery_whose_start_was_never_recorded_returns_its_task_to_pending(redis_server):
    store = _store(redis_server)
    task_id = _claimed(store)
    assert store.finish(task_id, W, 1, "skipped") == "released"
    assert store.outcome(task_id)[0] == "pending"
    assert store.redis.zscore(store.keys.pending, task_id) is not None
    assert not store.redis.sismember(store.keys.worker_tasks(W), task_id)
    [again] = store.claim([(task_id, W)])
    assert again.attempt == 2


def test_an_unstarted_claim_returns_to_pending_after_the_dispatch_timeout_only(redis_server):
    store = _store(redis_server)
    waiting, started = _claimed(store), _claimed(store)
    assert store.start(started, W, 1, "n")[0] is True
    assert store.recover_unstarted([W], timeout=1.0) == []  # too early
    time.sleep(1.2)
    assert store.recover_unstarted([W], timeout=1.0) == [waiting]
    assert store.outcome(waiting)[0] == "pending"
    assert store.outcome(started)[0] == "running"
    assert store.recover_unstarted([W], timeout=1.0) == []  # once
    assert store.start(waiting, W, 1, "late")[0] is False  # its late message runs nothing
    assert store.counters()["recovered_unstarted"] == 1


def test_a_deposed_dispatcher_can_neither_claim_nor_take_the_hand_off_list_back(redis_server):
    store = _store(redis_server)
    assert store.take_lease("old", 1.0)
    time.sleep(1.1)
    assert store.take_lease("new", 10.0)
    [handle] = Client(store, known_tasks=["noop"]).submit_many([{"name": "noop"}])
    store.handoff_fill("new", [(handle.id, False, "{}")])
    with pytest.raises(ResponseError, match="NOTLEADER"):
        store.claim([(handle.id, W)], "old")
    with pytest.raises(ResponseError, match="NOTLEADER"):
        store.handoff_reclaim("old")
    with pytest.raises(ResponseError, match="NOTLEADER"):
        store.handoff_fill("old", [(handle.id, False, "{}")])
    assert store.handoff_length() == 1
    assert store.handoff_reclaim("new") == [handle.id]


def test_a_lost_running_task_of_a_fail_on_orphan_type_fails_once_and_others_requeue(
    redis_server,
):
    store = _store(redis_server)
    store.set_orphan_policies({"ledger_once": "fail", "noop": "requeue"})
    once, again = _claimed(store, "ledger_once"), _claimed(store)
    store.start(once, W, 1, "a")
    store.start(again, W, 1, "b")
    store.redis.hset(store.keys.worker(W), "slots", 3)
    unstarted = _claimed(store, "ledger_once")
    assert store.deregister_worker(W) == 3
    assert store.outcome(once)[0] == "failed"
    assert "on_orphan=fail" in (store.outcome(once)[2] or "")
    assert store.outcome(again)[0] == "pending"
    assert store.outcome(unstarted)[0] == "pending", "a body that never started is requeued"
    assert store.deregister_worker(W) == 0
    assert store.counters()["failed"] == 1
