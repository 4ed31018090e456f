"""Held start: a short body's start goes out in one write with its guard exit and finish.

Against a real Redis, through the report line a pool process uses: nothing
is written while the start is held; the outcome that follows it counts only
if that start was recorded; a longer body has its start written when the
hold runs out; a lost connection sends the three calls again, in order.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

from scheduler.client import Client
from scheduler.errors import RedisUnavailableError
from scheduler.settings import load_settings
from scheduler.store import FinishReport, ReportLine, Store, Verdict, connect
from scheduler.store.guard import Guard
from scheduler.store.outbox import Outbox
from tests.test_report_line import WORKER, _state
from workers.hooks import hold_for


def _dispatched_keyed(redis_server, n: int) -> tuple[Store, list[str]]:
    """``n`` noops dispatched to WORKER, each learning under 'resize' with affinity key 'user-3'."""
    store = Store(connect(redis_server.url), load_settings(redis_url=redis_server.url))
    store.workers.register(WORKER, n, "host", 1, ["noop"])
    spec = {"name": "noop", "duration_key": "resize", "affinity_key": "user-3"}
    ids = [h.id for h in Client(store, known_tasks=["noop"]).submit_many([spec] * n)]
    assert [c.status for c in store.pending.claim([(i, WORKER) for i in ids])] == ["ok"] * n
    return store, ids


def _complete(line: ReportLine, guard: Guard, task_id: str, nonce: str, effects: Outbox) -> None:
    """What the postrun hook sends after a held start: the guard exit, then the finish."""
    line.post("guard_exit", task_id, *guard.exit_call("succeeded", "7", "", effects, nonce=nonce))
    line.finish(
        FinishReport(task_id, 1, Verdict("succeeded", result="7"), runtime=0.002, nonce=nonce)
    )


def test_a_held_start_writes_nothing_until_the_outcome_and_then_counts_with_it(redis_server):
    store, (a,) = _dispatched_keyed(redis_server, 1)
    line = ReportLine(store, WORKER)
    guard = store.guards.for_delivery(a, 1)
    seconds, micros = store.client.time()
    began = seconds + micros / 1e6
    line.start_held(a, 1, "n-a", guard, hold=30.0)
    time.sleep(0.3)
    assert _state(store, a) == "dispatched", "a held start is not written before its hold"
    assert store.client.get(store.keys.guard(a)) is None
    effects = Outbox()
    effects.rpush("audit", a)
    _complete(line, guard, a, "n-a", effects)
    line.close()
    assert _state(store, a) == "succeeded"
    counters = store.events.counters()
    assert (counters["started"], counters["succeeded"]) == (1, 1)
    assert store.client.lrange("audit", 0, -1) == [a], "the outbox committed once"
    assert store.client.get(store.keys.guard(a)) is None, "the exit released the guard"
    assert set(store.estimates.durations()) == {"resize"}, "learned under the record's duration key"
    started = float(store.client.hget(store.keys.task(a), "started_at"))
    assert abs(started - began) < 0.1, "the start time is when the body began, not when sent"
    assert store.estimates.affinity_scores("user-3") == {WORKER: 0.1}, (
        "scored under its affinity key"
    )


def test_a_long_bodys_held_start_is_written_when_its_hold_runs_out(redis_server):
    store, (a,) = _dispatched_keyed(redis_server, 1)
    line = ReportLine(store, WORKER)
    guard = store.guards.for_delivery(a, 1)
    line.start_held(a, 1, "n-a", guard, hold=0.05)
    deadline = time.monotonic() + 5
    while _state(store, a) != "running":  # "the body" is still going
        assert time.monotonic() < deadline, "the held start was never written"
        time.sleep(0.01)
    assert store.client.get(store.keys.guard(a)) == guard.lock.token, "it took the guard"
    _complete(line, guard, a, "n-a", Outbox())
    line.close()
    assert _state(store, a) == "succeeded"
    assert store.events.counters()["started"] == 1


def test_an_outcome_sent_after_a_refused_held_start_changes_nothing(redis_server, caplog):
    store, (a,) = _dispatched_keyed(redis_server, 1)
    line = ReportLine(store, WORKER)
    guard = store.guards.for_delivery(a, 1)
    line.start_held(a, 1, "n-a", guard, hold=30.0)
    store.client.hset(store.keys.task(a), "state", "cancelled")  # decided while it was held
    effects = Outbox()
    effects.rpush("audit", a)
    _complete(line, guard, a, "n-a", effects)
    line.close()
    assert _state(store, a) == "cancelled"
    assert store.client.lrange("audit", 0, -1) == [], "no effect of a refused delivery"
    assert store.client.get(store.keys.guard_done(a)) is None, "no done marker either"
    assert "succeeded" not in store.events.counters()
    assert store.estimates.durations() == {}, "nothing learned from it"
    assert store.client.scard(store.keys.worker_tasks(WORKER)) == 0, "its slot is free"
    assert f"the held start of {a} was refused (the task is cancelled)" in caplog.text


def test_a_held_start_lost_with_its_connection_goes_out_again_before_its_outcome(redis_server):
    store, (a, b) = _dispatched_keyed(redis_server, 2)
    line = ReportLine(store, WORKER)
    guard = store.guards.for_delivery(a, 1)
    line.start_held(a, 1, "n-a", guard, hold=30.0)
    ours = [c["id"] for c in store.client.client_list() if c["cmd"] in ("script|load", "script")]
    assert len(ours) == 1, "the line's connection (its last command loaded the scripts)"
    store.client.client_kill_filter(_id=ours[0])
    _complete(line, guard, a, "n-a", Outbox())
    # The next delivery's start goes out with everything the dead connection dropped;
    # a try that finds the connection dead raises, and the next sends it all again.
    early = line.start_held(b, 1, "n-b", store.guards.for_delivery(b, 1), hold=30.0)
    for _ in range(3):
        try:
            assert line.take_start(early)[0] is True
            break
        except RedisUnavailableError:
            continue
    else:
        raise AssertionError("the start of b never got an answer")
    line.close()
    assert (_state(store, a), _state(store, b)) == ("succeeded", "running")
    assert store.events.counters()["started"] == 2, "each start counted once"


def test_only_tasks_that_may_run_again_hold_their_start():
    settings = load_settings()
    assert hold_for(SimpleNamespace(on_orphan="requeue"), settings) == 0.005
    assert hold_for(SimpleNamespace(), settings) == 0.005
    assert hold_for(SimpleNamespace(on_orphan="fail"), settings) == 0.0
    assert hold_for(SimpleNamespace(), load_settings(start_hold=0)) == 0.0
    assert hold_for(SimpleNamespace(), load_settings(early_start_window=0)) == 0.0, (
        "no early start, no hold"
    )
    capped = load_settings(start_hold=1.0, early_start_window=2.0)
    assert hold_for(SimpleNamespace(), capped) == 0.2, "a tenth of the early-start window"


def test_an_outcome_sent_after_a_held_start_another_delivery_beat_is_stale(redis_server):
    store, (a,) = _dispatched_keyed(redis_server, 1)
    line = ReportLine(store, WORKER)
    guard = store.guards.for_delivery(a, 1)
    line.start_held(a, 1, "n-a", guard, hold=30.0)
    # Another delivery of the same attempt started first (never for a fresh message,
    # which kombu has not restored; the fence holds anyway).
    assert store.deliveries.start(a, WORKER, 1, "n-other")[0] is True
    _complete(line, guard, a, "n-a", Outbox())
    line.close()
    assert _state(store, a) == "running", "the other delivery's run is left alone"
    assert store.client.hget(store.keys.task(a), "start_nonce") == "n-other"
    assert "succeeded" not in store.events.counters()
    assert store.client.get(store.keys.guard_done(a)) is None
