"""In-flight coalescing and the execution guard, with real redeliveries (real Redis, real workers)."""

from __future__ import annotations

import json
import threading
import time

from broker_config.publisher import CeleryPublisher
from scheduler.client import Client
from scheduler.dispatcher import Dispatch
from scheduler.models import TaskState
from scheduler.settings import load_settings
from scheduler.store import ReportLine, Store, connect
from scheduler.store.guard import Finished
from workers.app import create_app

TALLY = "tests.tally"


def wait_running(handle, timeout=30.0):
    deadline = time.monotonic() + timeout
    while handle.status() != TaskState.RUNNING:
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.01)


def test_fifty_concurrent_identical_submissions_run_the_body_once_and_all_get_the_result(cluster):
    c = cluster()
    c.dispatcher()
    # the worker starts once every submission is in: on a loaded machine the first run
    # could otherwise end before the last thread submits, which is then a new run
    start = threading.Barrier(50)
    handles = [None] * 50

    def submit(i: int) -> None:
        client = Client(Store(connect(c.redis.url), c.settings), known_tasks=[TALLY])
        start.wait()
        handles[i] = client.submit(TALLY, ["fifty", 0.5], coalesce=True)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len({h.id for h in handles}) == 1, "every submission attaches to the first"
    assert sum(h.answered_by == "coalesced" for h in handles) == 49
    c.native_worker("co@test", "tests.guard_app", slots=4)
    results = [h.result(timeout=60) for h in handles]
    assert results == [{"counter": "fifty", "run": 1}] * 50
    assert c.store.client.get("fifty") == "1"
    assert c.store.events.counters()["started"] == 1
    assert c.store.cache.stats().coalesced == 49
    # once it ended, an identical submission is a new run (coalescing is not a cache)
    later = c.client.submit(TALLY, ["fifty", 0.0], coalesce=True)
    assert later.answered_by is None


def test_a_failed_run_answers_the_attached_handles_but_the_next_identical_call_runs_again(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("solo@test", slots=1)
    blocker = c.client.submit("sleep", [0.5])
    first = c.client.submit("fail", ["x"], coalesce=True)
    second = c.client.submit("fail", ["x"], coalesce=True)
    assert second.id == first.id
    records = c.client.wait([blocker, first, second], timeout=30)
    assert [r.state for r in records] == [TaskState.SUCCEEDED, TaskState.FAILED, TaskState.FAILED]
    third = c.client.submit("fail", ["x"], coalesce=True)
    assert third.id != first.id
    c.client.wait([third], timeout=30)
    assert c.store.workers.load()[0].failed == 2


def redeliver(c, task_id, copies):
    """Push ``copies`` more copies of the task's current Celery message onto its worker's queue.

    Each copy is marked as kombu marks every message it restores (``redelivered``
    in the headers and the delivery info), so the worker waits for each copy's
    start instead of starting it early (docs/reliability.md, "Early start").
    """
    app = create_app(c.settings, c.redis.url)
    record = c.client.handle(task_id).record()
    _, name, args, kwargs, _ = c.store.tasks.payloads([task_id])[0]
    queue = c.store.keys.worker_queue(record.worker)
    envelope = json.loads(
        CeleryPublisher(app, c.store).message(
            Dispatch(task_id, name, args, kwargs, record.worker, queue, record.attempt)
        )
    )
    envelope["headers"]["redelivered"] = True
    envelope["properties"]["delivery_info"]["redelivered"] = True
    message = json.dumps(envelope)
    for _ in range(copies):
        c.store.client.lpush(queue, message)


def test_duplicate_deliveries_of_a_running_task_wait_for_it_and_do_not_run_the_body_again(cluster):
    c = cluster()
    c.dispatcher()
    c.native_worker("dup@test", "tests.guard_app", slots=3)
    handle = c.client.submit(TALLY, ["dup", 1.0])
    wait_running(handle)
    redeliver(c, handle.id, copies=2)  # the same message, same attempt, twice more
    assert handle.result(timeout=30) == {"counter": "dup", "run": 1}
    time.sleep(1.0)  # the copies see the body's outcome and report it (a no-op)
    assert c.store.client.get("dup") == "1"
    record = handle.record()
    assert (record.state, record.attempt) == (TaskState.SUCCEEDED, 1)
    assert c.store.events.counters()["succeeded"] == 1

    redeliver(c, handle.id, copies=1)  # and once more after it was recorded
    time.sleep(1.0)
    assert c.store.client.get("dup") == "1"
    assert c.store.client.scard(c.store.keys.worker_tasks("dup@test")) == 0, "no slot leaked"
    after = c.client.submit(TALLY, ["after", 0.0])
    assert after.result(timeout=30) == {"counter": "after", "run": 1}


def test_a_body_that_finished_on_a_worker_declared_dead_is_not_run_by_the_next_attempt(cluster):
    c = cluster(heartbeat_interval=5.0)
    c.dispatcher()
    c.native_worker("slow@test", "tests.guard_app", slots=1)
    handle = c.client.submit(TALLY, ["once", 1.5])
    wait_running(handle)
    c.native_worker("spare@test", "tests.guard_app", slots=1)
    # As the dispatcher does when a worker falls silent: its task returns to pending
    # and is dispatched again (attempt 2) while the first body is still running.
    assert c.store.workers.deregister("slow@test") == 1
    result = handle.result(timeout=30)
    assert result == {"counter": "once", "run": 1}
    record = handle.record()
    assert record.attempt == 2
    assert record.state == TaskState.SUCCEEDED
    assert c.store.client.get("once") == "1", "the body ran once across both attempts"


def test_the_start_takes_the_execution_guard_in_the_same_round_trip(redis_server):
    settings = load_settings(redis_url=redis_server.url)
    store = Store(connect(redis_server.url), settings)
    worker = "w@guard"
    store.workers.register(worker, 2, "host", 1, ["noop"])
    client = Client(store, known_tasks=["noop"])

    def claimed() -> str:
        [handle] = client.submit_many([{"name": "noop"}])
        [claim] = store.pending.claim([(handle.id, worker)])
        assert claim.status == "ok"
        return handle.id

    line = ReportLine(store, worker)
    warm = claimed()  # loads start.lua into Redis's script cache
    assert line.start_guarded(warm, 1, "warm", store.guards.for_delivery(warm, 1))[0] is True

    first = claimed()
    guard = store.guards.for_delivery(first, 1)
    store.client.config_resetstat()
    assert line.start_guarded(first, 1, "n1", guard) == (True, "noop", "", "run", "")
    stats = store.client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 1, "start and guard went out as one call"
    assert store.client.get(store.keys.guard(first)) == guard.lock.token
    assert store.client.hget(store.keys.task(first), "state") == "running"
    # the same call sent again (a lost reply) still runs and keeps the guard
    assert line.start_guarded(first, 1, "n1", guard)[3] == "run"
    assert guard.settle("run", "") is None

    # A new attempt while the first body still holds the guard: told who holds it.
    assert store.pending.requeue(worker, [first]) == 1
    assert store.pending.claim([(first, worker)])[0].attempt == 2
    second = store.guards.for_delivery(first, 2)
    assert line.start_guarded(first, 2, "n2", second) == (
        True,
        "noop",
        "",
        "held",
        guard.lock.token,
    )

    # Once the first body recorded its outcome, the next delivery gets it instead.
    assert guard.exit("succeeded", '{"v": 1}', "") is True
    done = line.start_guarded(first, 2, "n2", second)
    assert done[3] == "done"
    finished = second.settle(done[3], done[4])
    assert finished == Finished("succeeded", '{"v": 1}', "", 1)
    assert store.client.get(store.keys.guard(first)) is None, "the replay takes no guard"

    # Without a guard, start.lua is unchanged: a stale delivery is skipped.
    assert line.start(first, 1, "late") == (False, "running", "")
