"""In-flight coalescing and the execution guard, with real redeliveries (real Redis, real workers)."""

from __future__ import annotations

import threading
import time

from broker_config.publisher import CeleryPublisher
from scheduler.client import Client
from scheduler.dispatcher import Dispatch
from scheduler.models import TaskState
from scheduler.store import StateStore, connect
from scheduler.store.cache import cache_stats
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
    c.native_worker("co@test", "tests.guard_app", slots=4)
    start = threading.Barrier(50)
    handles = [None] * 50

    def submit(i: int) -> None:
        client = Client(StateStore(connect(c.redis.url), c.settings), known_tasks=[TALLY])
        start.wait()
        handles[i] = client.submit(TALLY, ["fifty", 0.5], coalesce=True)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len({h.id for h in handles}) == 1, "every submission attaches to the first"
    assert sum(h.answered_by == "coalesced" for h in handles) == 49
    results = [h.result(timeout=60) for h in handles]
    assert results == [{"counter": "fifty", "run": 1}] * 50
    assert c.store.redis.get("fifty") == "1"
    assert c.store.counters()["started"] == 1
    assert cache_stats(c.store).coalesced == 49
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
    assert c.store.load_workers()[0].failed == 2


def redeliver(c, task_id, copies):
    """Push ``copies`` more copies of the task's current Celery message onto its worker's queue."""
    app = create_app(c.settings, c.redis.url)
    record = c.client.handle(task_id).record()
    _, name, args, kwargs = c.store.payloads([task_id])[0]
    queue = c.store.keys.worker_queue(record.worker)
    message = CeleryPublisher(app, c.store.redis).message(
        Dispatch(task_id, name, args, kwargs, record.worker, queue, record.attempt)
    )
    for _ in range(copies):
        c.store.redis.lpush(queue, message)


def test_duplicate_deliveries_of_a_running_task_wait_for_it_and_do_not_run_the_body_again(cluster):
    c = cluster()
    c.dispatcher()
    c.native_worker("dup@test", "tests.guard_app", slots=3)
    handle = c.client.submit(TALLY, ["dup", 1.0])
    wait_running(handle)
    redeliver(c, handle.id, copies=2)  # the same message, same attempt, twice more
    assert handle.result(timeout=30) == {"counter": "dup", "run": 1}
    time.sleep(1.0)  # the copies see the body's outcome and report it (a no-op)
    assert c.store.redis.get("dup") == "1"
    record = handle.record()
    assert (record.state, record.attempt) == (TaskState.SUCCEEDED, 1)
    assert c.store.counters()["succeeded"] == 1

    redeliver(c, handle.id, copies=1)  # and once more after it was recorded
    time.sleep(1.0)
    assert c.store.redis.get("dup") == "1"
    assert c.store.redis.scard(c.store.keys.worker_tasks("dup@test")) == 0, "no slot leaked"
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
    assert c.store.deregister_worker("slow@test") == 1
    result = handle.result(timeout=30)
    assert result == {"counter": "once", "run": 1}
    record = handle.record()
    assert record.attempt == 2
    assert record.state == TaskState.SUCCEEDED
    assert c.store.redis.get("once") == "1", "the body ran once across both attempts"
