"""Early start: a fresh first delivery runs its body while its start is being recorded.

What may start early (:func:`workers.hooks._fresh`), the report line's early
start against a real Redis (its reply read after the body, sent again after a
lost connection or a flushed script cache), and what a cancel does to a
dispatched task whose message is still queued or already taken.
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

from broker_config.publisher import CeleryPublisher
from scheduler.dispatcher import Dispatch
from scheduler.errors import RedisUnavailableError
from scheduler.settings import load_settings
from scheduler.store import FinishReport, ReportLine, Store, Verdict
from tests.test_report_line import WORKER, _dispatched, _state
from workers.app import create_app
from workers.hooks import _fresh


def _request(at: object = None, redelivered: bool = False) -> SimpleNamespace:
    info = {"exchange": "", "routing_key": "q", "redelivered": redelivered}
    return SimpleNamespace(ym_at=at, delivery_info=info)


def test_only_a_fresh_never_restored_delivery_with_a_dispatch_time_starts_early():
    now = time.time()
    assert _fresh(_request(now - 0.01), 2.0)
    assert _fresh(_request(now + 0.5), 2.0), "a little clock skew ahead is tolerated"
    assert not _fresh(_request(now - 5.0), 2.0), "an old message waits for its start"
    assert not _fresh(_request(now + 5.0), 2.0)
    assert not _fresh(_request(now, redelivered=True), 2.0), "kombu restored it"
    assert not _fresh(_request(None), 2.0), "no dispatch time (an older template)"
    assert not _fresh(_request("soon"), 2.0)
    assert not _fresh(_request(0), 2.0), "a message a cancel held back"
    assert not _fresh(_request(now), 0.0), "YM_EARLY_START_WINDOW=0 turns it off"


def test_the_window_never_reaches_a_quarter_of_the_worker_or_dispatch_timeout():
    settings = load_settings(early_start_window=2.0, worker_timeout=4.0)
    assert settings.early_start_limit() == 1.0
    settings = load_settings(early_start_window=2.0, dispatch_timeout=2.0)
    assert settings.early_start_limit() == 0.5
    assert load_settings().early_start_limit() == 2.0


def test_an_early_start_is_recorded_at_once_and_its_reply_read_later(redis_server):
    store, (a, b) = _dispatched(redis_server, 2)
    line = ReportLine(store, WORKER)
    store.client.script_flush()  # a new Redis: the line loads its scripts first
    early = line.start_early(a, 1, "n-a", store.guards.for_delivery(a, 1))
    deadline = time.monotonic() + 5
    while _state(store, a) != "running":  # recorded while "the body runs"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    assert store.client.get(store.keys.guard(a)) is not None, "the start took the guard"
    assert line.take_start(early) == (True, "noop", "", "run", "")
    line.finish(FinishReport(a, 1, Verdict("succeeded"), runtime=0.001, duration_key="noop"))
    assert (
        line.take_start(line.start_early(b, 1, "n-b", store.guards.for_delivery(b, 1)))[0] is True
    )
    assert (_state(store, a), _state(store, b)) == ("succeeded", "running")
    line.close()


def test_an_early_start_lost_with_its_connection_is_sent_again_and_answers_once(redis_server):
    store, (a, b) = _dispatched(redis_server, 2)
    line = ReportLine(store, WORKER)
    assert (
        line.take_start(line.start_early(a, 1, "n-a", store.guards.for_delivery(a, 1)))[0] is True
    )
    early = line.start_early(b, 1, "n-b", store.guards.for_delivery(b, 1))
    for client in store.client.client_list():
        if client["cmd"] == "evalsha":  # the line's connection
            store.client.client_kill_filter(_id=client["id"])
    answer = None
    for _ in range(3):
        try:
            answer = line.take_start(early)
            break
        except RedisUnavailableError:  # the next try sends the start again, same nonce
            continue
    assert answer is not None
    assert answer[0] is True, "the repeat of the same start runs"
    assert (_state(store, a), _state(store, b)) == ("running", "running")
    assert store.events.counters()["started"] == 2, "each start counted once"
    line.close()


def test_an_early_start_of_a_cancelled_task_comes_back_refused(redis_server):
    store, (a,) = _dispatched(redis_server, 1)
    store.client.hset(store.keys.task(a), "state", "cancelled")
    line = ReportLine(store, WORKER)
    run, state, *_ = line.take_start(line.start_early(a, 1, "n-a", store.guards.for_delivery(a, 1)))
    assert (run, state) == (False, "cancelled")
    assert store.client.get(store.keys.guard(a)) is None, "a refused start takes no guard"
    line.close()


def _queue_message(store: Store, task_id: str) -> tuple[str, str]:
    """Publish the dispatched task's message to its worker's queue, as the dispatcher does."""
    app = create_app(store.settings, redis_url=None)
    _, name, args, kwargs, _ = store.tasks.payloads([task_id])[0]
    queue = store.keys.worker_queue(WORKER)
    publisher = CeleryPublisher(app, store)
    publisher.publish([Dispatch(task_id, name, args, kwargs, WORKER, queue, 1, at=time.time())])
    return queue, str(store.client.lindex(queue, 0))


def test_cancelling_a_dispatched_task_still_queued_holds_its_message_back(redis_server):
    store, (a, b) = _dispatched(redis_server, 2)
    queue, _ = _queue_message(store, a)
    _queue_message(store, b)
    before = [json.loads(m)["headers"]["ym_at"] for m in store.client.lrange(queue, 0, -1)]
    assert all(abs(at - time.time()) < 60 for at in before)
    assert store.tasks.cancel(a) == "cancelled"
    assert _state(store, a) == "cancelled"
    held = {
        json.loads(m)["properties"]["delivery_tag"]: json.loads(m)["headers"]["ym_at"]
        for m in store.client.lrange(queue, 0, -1)
    }
    assert held == {f"{a}.1": 0, f"{b}.1": before[0]}, "only a's message is held back"


def test_cancelling_a_dispatched_task_its_worker_has_taken_treats_it_as_running(redis_server):
    store, (a,) = _dispatched(redis_server, 1)
    queue, _ = _queue_message(store, a)
    store.client.rpop(queue)  # the worker's BRPOP took it; its body may be starting now
    assert store.tasks.cancel(a) == "running"
    (record,) = store.tasks.records([a])
    assert record is not None
    assert (record.state, record.cancel_requested) == ("dispatched", True)


def test_a_worker_declared_dead_or_restarted_leaves_its_queued_messages_held_back(redis_server):
    store, (a,) = _dispatched(redis_server, 1)
    queue, _ = _queue_message(store, a)
    # What the leader does to a silent worker, and a worker of the same name on
    # registering: its tasks go back to pending, and what still waits in its queue
    # must not start early in the next life of that name.
    assert store.workers.deregister(WORKER) == 1
    assert _state(store, a) == "pending"
    (message,) = store.client.lrange(queue, 0, -1)
    assert json.loads(message)["headers"]["ym_at"] == 0
