"""Where the cache branch's features meet retries, recovery and cancellation: concurrency
keys across every path that sends a task back to the dispatcher, and the execution guard of
a run killed by a terminate request (real Redis; the last test with a real worker)."""

from __future__ import annotations

import time

from scheduler.client import Client
from scheduler.models import TaskState
from scheduler.settings import load_settings
from scheduler.store import FinishReport, Store, Verdict, connect

W = "w@interplay"


def _entry(store: Store, task_id: str) -> dict[str, object]:
    entries = [e for e in store.inbox.take(0, 1000) if e.get("id") == task_id]
    assert len(entries) == 1, "the task was announced to the dispatcher once"
    return entries[0]


def test_a_concurrency_key_is_freed_and_carried_on_by_retry_recovery_and_a_skipped_start(
    redis_server,
):
    store = Store(connect(redis_server.url), load_settings(redis_url=redis_server.url))
    store.workers.register(W, 4, "host", 1, ["noop"])
    client = Client(store, known_tasks=["noop"])
    [handle] = client.submit_many([{"name": "noop", "concurrency_key": "k", "max_concurrent": 1}])
    task_id, members = handle.id, store.keys.concurrency("k")
    store.inbox.take(0, 1000)

    # a retry: the key's place is freed at once, and promote.lua keeps the key and cap
    assert store.pending.claim([(task_id, W)])[0].attempt == 1
    assert store.client.smembers(members) == {task_id}
    assert store.deliveries.start(task_id, W, 1, "a")[0] is True
    assert (
        store.deliveries.finish(
            W, FinishReport(task_id, 1, Verdict("retry", error="boom", reason="retry", delay=0.0))
        )
        == "retry"
    )
    assert store.client.scard(members) == 0
    store.inbox.take(0, 1000)
    assert store.pending.promote()[0] == 1
    assert {"c": "k", "m": 1}.items() <= _entry(store, task_id).items()

    # a dispatch that never started, recovered: out of the key's set, key and cap carried
    assert store.pending.claim([(task_id, W)])[0].attempt == 2
    assert store.client.scard(members) == 1
    store.client.hset(store.keys.task(task_id), "dispatched_at", "1.0")
    assert store.pending.recover_unstarted([W], 1.0) == [task_id]
    assert store.client.scard(members) == 0
    assert {"c": "k", "m": 1}.items() <= _entry(store, task_id).items()

    # a delivery whose start was never recorded: back to pending the same way
    assert store.pending.claim([(task_id, W)])[0].attempt == 3
    assert store.deliveries.finish(W, FinishReport(task_id, 3, Verdict("skipped"))) == "released"
    assert store.client.scard(members) == 0
    assert {"c": "k", "m": 1}.items() <= _entry(store, task_id).items()
    assert handle.status() == TaskState.PENDING

    # and a stale report of an old attempt frees nothing (integ's fence comes first)
    assert store.pending.claim([(task_id, W)])[0].attempt == 4
    assert store.deliveries.finish(W, FinishReport(task_id, 3, Verdict("failed"))) == "stale"
    assert store.client.smembers(members) == {task_id}


def test_a_run_killed_on_request_gives_its_execution_guard_back_at_once(cluster):
    # SIGKILL: the pool process dies without a word; the worker's main process reports it
    c = cluster(cancel_signal="SIGKILL")
    c.dispatcher()
    c.worker("term@test", slots=1)
    handle = c.client.submit("sleep", [5.0])
    guard = c.store.keys.guard(handle.id)
    deadline = time.monotonic() + 30
    while handle.status() != TaskState.RUNNING or c.store.client.get(guard) is None:
        assert time.monotonic() < deadline, "the task never started under its guard"
        time.sleep(0.02)
    assert str(c.store.client.get(guard)).startswith("1:"), "the guard names attempt 1"
    assert handle.cancel(terminate=True) is True
    deadline = time.monotonic() + 10  # well inside YM_GUARD_TTL (30 s), which would free it too
    while c.store.client.get(guard) is not None:
        assert time.monotonic() < deadline, "the killed run's guard was left to expire"
        time.sleep(0.05)
    assert handle.record().reason == "terminated"
    after = c.client.submit("noop")
    assert after.result(timeout=30) is None
