"""The pool process's report line: finishes sent without waiting are confirmed, or sent again."""

from __future__ import annotations

import time

from redis.exceptions import ConnectionError as RedisConnectionError

from scheduler.client import Client
from scheduler.embedded import EmbeddedRedis
from scheduler.settings import load_settings
from scheduler.store import ReportLine, StateStore, connect
from scheduler.store.reports import SETTLE_AFTER

WORKER = "w@test"


def _dispatched(redis_server: EmbeddedRedis, n: int) -> tuple[StateStore, list[str]]:
    store = StateStore(connect(redis_server.url), load_settings(redis_url=redis_server.url))
    store.register_worker(WORKER, n, "host", 1, ["noop"])
    ids = [h.id for h in Client(store, known_tasks=["noop"]).submit_many([{"name": "noop"}] * n)]
    claims = store.claim([(task_id, WORKER) for task_id in ids])
    assert [c.status for c in claims] == ["ok"] * n
    return store, ids


def _state(store: StateStore, task_id: str) -> str | None:
    return store.outcome(task_id)[0]


def test_a_finish_is_recorded_before_the_next_start_on_the_same_line(redis_server):
    store, (a, b) = _dispatched(redis_server, 2)
    line = ReportLine(store, WORKER)
    assert line.start(a, 1) == (True, "noop", "")
    line.finish(a, 1, "succeeded", runtime=0.001, duration_key="noop")
    assert line.start(b, 1)[0] is True
    assert _state(store, a) == "succeeded"
    assert _state(store, b) == "running"
    line.close()


def test_a_finish_sent_into_a_dead_connection_is_sent_again(redis_server):
    store, (a, b, c) = _dispatched(redis_server, 3)
    line = ReportLine(store, WORKER)
    line.start(a, 1)
    line.start(b, 1)
    ours = [x["id"] for x in store.redis.client_list() if x["cmd"] == "evalsha"]
    for client_id in ours:
        store.redis.client_kill_filter(_id=client_id)
    # The kernel may take these bytes although the server has hung up.
    line.finish(a, 1, "succeeded", runtime=0.001, duration_key="noop")
    line.finish(b, 1, "succeeded", runtime=0.001, duration_key="noop")
    for _ in range(3):
        try:
            assert line.start(c, 1)[0] is True
            break
        except RedisConnectionError:  # a retry sends the lost finishes first
            continue
    assert [_state(store, t) for t in (a, b, c)] == ["succeeded", "succeeded", "running"]
    assert store.counters()["succeeded"] == 2
    line.close()


def test_finishes_survive_a_flushed_script_cache(redis_server):
    store, (a, b) = _dispatched(redis_server, 2)
    line = ReportLine(store, WORKER)
    line.start(a, 1)
    store.redis.script_flush()
    line.finish(a, 1, "failed", error="boom", runtime=0.001, duration_key="noop")
    assert line.start(b, 1)[0] is True
    assert _state(store, a) == "failed"
    assert _state(store, b) == "running"
    line.close()


def test_the_watchdog_confirms_a_finish_no_start_follows(redis_server):
    store, (a,) = _dispatched(redis_server, 1)
    line = ReportLine(store, WORKER)
    line.start(a, 1)
    store.redis.script_flush()  # the finish fails until someone reads its reply
    line.finish(a, 1, "succeeded", runtime=0.001, duration_key="noop")
    deadline = time.monotonic() + 3 * SETTLE_AFTER + 2
    while _state(store, a) != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _state(store, a) == "succeeded"
    line.close()
