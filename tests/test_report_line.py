"""The pool process's report line: finishes sent without waiting are confirmed, or sent again."""

from __future__ import annotations

import time

from scheduler.client import Client
from scheduler.embedded import EmbeddedRedis
from scheduler.errors import RedisUnavailableError
from scheduler.settings import load_settings
from scheduler.store import FinishReport, ReportLine, Store, Verdict, connect
from scheduler.store.reports import SETTLE_AFTER

WORKER = "w@test"


def _dispatched(redis_server: EmbeddedRedis, n: int) -> tuple[Store, list[str]]:
    store = Store(connect(redis_server.url), load_settings(redis_url=redis_server.url))
    store.workers.register(WORKER, n, "host", 1, ["noop"])
    ids = [h.id for h in Client(store, known_tasks=["noop"]).submit_many([{"name": "noop"}] * n)]
    claims = store.pending.claim([(task_id, WORKER) for task_id in ids])
    assert [c.status for c in claims] == ["ok"] * n
    return store, ids


def _state(store: Store, task_id: str) -> str | None:
    return store.tasks.outcome(task_id)[0]


def test_a_finish_is_recorded_before_the_next_start_on_the_same_line(redis_server):
    store, (a, b) = _dispatched(redis_server, 2)
    line = ReportLine(store, WORKER)
    assert line.start(a, 1) == (True, "noop", "")
    line.finish(FinishReport(a, 1, Verdict("succeeded"), runtime=0.001, duration_key="noop"))
    assert line.start(b, 1)[0] is True
    assert _state(store, a) == "succeeded"
    assert _state(store, b) == "running"
    line.close()


def test_a_finish_sent_into_a_dead_connection_is_sent_again(redis_server):
    store, (a, b, c) = _dispatched(redis_server, 3)
    line = ReportLine(store, WORKER)
    line.start(a, 1)
    line.start(b, 1)
    ours = [x["id"] for x in store.client.client_list() if x["cmd"] == "evalsha"]
    for client_id in ours:
        store.client.client_kill_filter(_id=client_id)
    # The kernel may take these bytes although the server has hung up.
    line.finish(FinishReport(a, 1, Verdict("succeeded"), runtime=0.001, duration_key="noop"))
    line.finish(FinishReport(b, 1, Verdict("succeeded"), runtime=0.001, duration_key="noop"))
    for _ in range(3):
        try:
            assert line.start(c, 1)[0] is True
            break
        except RedisUnavailableError:  # a retry sends the lost finishes first
            continue
    assert [_state(store, t) for t in (a, b, c)] == ["succeeded", "succeeded", "running"]
    assert store.events.counters()["succeeded"] == 2
    line.close()


def test_finishes_survive_a_flushed_script_cache(redis_server):
    store, (a, b) = _dispatched(redis_server, 2)
    line = ReportLine(store, WORKER)
    line.start(a, 1)
    store.client.script_flush()
    line.finish(
        FinishReport(a, 1, Verdict("failed", error="boom"), runtime=0.001, duration_key="noop")
    )
    assert line.start(b, 1)[0] is True
    assert _state(store, a) == "failed"
    assert _state(store, b) == "running"
    line.close()


def test_the_watchdog_confirms_a_finish_no_start_follows(redis_server):
    store, (a,) = _dispatched(redis_server, 1)
    line = ReportLine(store, WORKER)
    line.start(a, 1)
    store.client.script_flush()  # the finish fails until someone reads its reply
    line.finish(FinishReport(a, 1, Verdict("succeeded"), runtime=0.001, duration_key="noop"))
    deadline = time.monotonic() + 3 * SETTLE_AFTER + 2
    while _state(store, a) != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _state(store, a) == "succeeded"
    line.close()
