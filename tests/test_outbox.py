"""The transactional outbox: a body's Redis effects are committed with its success, once per task.

Most of it is shown at the store level, on the Lua call that commits them
(``guard_exit.lua``) and on the report line that sends it; two tests run real
workers: one commits and discards, one is SIGKILLed mid-body.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from scheduler.api import create_app as create_api
from scheduler.client import Client
from scheduler.errors import InvalidInputError, OutboxUnavailableError, RedisUnavailableError
from scheduler.models import TaskState
from scheduler.settings import load_settings
from scheduler.store import FinishReport, ReportLine, Store, Verdict, connect
from scheduler.store.guard import Finished, Guard
from scheduler.store.outbox import MAX_BYTES, MAX_ITEMS, Outbox
from tests.api_live import auth, tokens_json
from tests.reliability_support import kill_tree, wait_for
from tests.test_api_factory import serve
from workers.app import create_app

WORKER = "w@outbox"
RECORD = "tests.outbox_record"


def _store(redis_server: Any) -> Store:
    return Store(connect(redis_server.url), load_settings(redis_url=redis_server.url))


def _running(store: Store, n: int) -> tuple[ReportLine, dict[str, Guard]]:
    """``n`` noop tasks started on one report line, each holding its execution guard."""
    store.workers.register(WORKER, n, "host", 1, ["noop"])
    handles = Client(store, known_tasks=["noop"]).submit_many([{"name": "noop"}] * n)
    claims = store.pending.claim([(h.id, WORKER) for h in handles])
    assert [c.status for c in claims] == ["ok"] * n
    line = ReportLine(store, WORKER)
    guards = {}
    for h in handles:
        guards[h.id] = store.guards.for_delivery(h.id, 1)
        assert line.start_guarded(h.id, 1, "n-" + h.id, guards[h.id])[3] == "run"
    return line, guards


def _effects(entry: str) -> Outbox:
    effects = Outbox()
    effects.rpush("audit", entry)
    effects.incrby("total", 2)
    effects.hset("last", {"entry": entry})
    return effects


def test_effects_are_applied_with_the_success_and_the_same_call_sent_again_applies_nothing(
    redis_server,
):
    store = _store(redis_server)
    guard = store.guards.for_delivery("t1", 1)
    assert guard.enter() is None
    call = guard.exit_call("succeeded", '{"v": 1}', "", _effects("t1"))
    assert store.scripts("guard_exit", *call) == 1
    assert store.scripts("guard_exit", *call) == 0, "a re-send (lost connection) is a no-op"
    assert store.client.lrange("audit", 0, -1) == ["t1"]
    assert store.client.get("total") == "2"
    assert store.client.hgetall("last") == {"entry": "t1"}
    # A second body that raced past the guard (its holder's guard lapsed) and also
    # succeeded: the recorded success stays, its effects are not applied.
    late = store.guards.for_delivery("t1", 2)
    assert late.exit("succeeded", '{"v": 2}', "", _effects("t1 again")) is False
    assert store.client.lrange("audit", 0, -1) == ["t1"]
    assert store.client.get("total") == "2"
    assert store.guards.for_delivery("t1", 3).enter() == Finished("succeeded", '{"v": 1}', "", 1)


def test_a_failure_applies_no_effects_and_does_not_overwrite_a_recorded_success(redis_server):
    store = _store(redis_server)
    first = store.guards.for_delivery("t2", 1)
    assert first.enter() is None
    # The worker discards a failed body's effects; the script ignores any it is sent.
    failed = first.exit_call("failed", "null", "ValueError: no", _effects("attempt 1"))
    store.scripts("guard_exit", *failed)
    assert store.client.lrange("audit", 0, -1) == []
    second = store.guards.for_delivery("t2", 2)
    assert second.enter() is None, "a failure does not block the next attempt"
    assert second.exit("succeeded", "null", "", _effects("attempt 2")) is True
    store.scripts("guard_exit", *failed)  # the failure's call arriving again, late
    assert store.client.lrange("audit", 0, -1) == ["attempt 2"]
    assert store.guards.for_delivery("t2", 3).enter() == Finished("succeeded", "null", "", 2)


def test_effects_that_do_not_fit_the_keys_are_refused_as_a_whole_and_named_on_the_record(
    redis_server,
):
    store = _store(redis_server)
    line, guards = _running(store, 2)
    a, b = guards
    store.client.set("greeting", "hello")
    effects = Outbox()
    effects.rpush("audit", a)
    effects.rpush("greeting", "x")  # the key holds a string
    line.post("guard_exit", a, *guards[a].exit_call("succeeded", "null", "", effects))
    line.finish(FinishReport(a, 1, Verdict("succeeded"), runtime=0.001, duration_key="noop"))
    chained = Outbox()
    chained.set("counter", "not a number")
    chained.incrby("counter", 1)  # refused as the key will be when it runs
    line.post("guard_exit", b, *guards[b].exit_call("succeeded", "null", "", chained))
    line.finish(FinishReport(b, 1, Verdict("succeeded"), runtime=0.001, duration_key="noop"))
    line.settle()
    assert store.client.lrange("audit", 0, -1) == []
    assert store.client.get("counter") is None
    ra, rb = store.tasks.records([a, b])
    assert ra is not None
    assert rb is not None
    assert (ra.state, rb.state) == (TaskState.SUCCEEDED, TaskState.SUCCEEDED)
    assert ra.effects_error == (
        "no effect applied: effect 2 (RPUSH greeting): the key holds a string, not a list"
    )
    assert rb.effects_error == (
        "no effect applied: effect 2 (INCRBY counter): the value is not an integer"
    )
    line.close()
    # the HTTP API shows it too
    settings = load_settings(redis_url=redis_server.url, api_tokens=tokens_json())
    with serve(create_api(settings)) as url:
        shown = httpx.get(f"{url}/v1/tasks/{a}", headers=auth("read"))
        assert shown.status_code == 200
        assert shown.json()["effects_error"] == ra.effects_error


def test_effects_travel_with_a_completion_sent_again_over_a_new_connection(redis_server):
    store = _store(redis_server)
    line, guards = _running(store, 1)
    [task_id] = guards
    for client in store.client.client_list():
        if client["cmd"] == "evalsha":
            store.client.client_kill_filter(_id=client["id"])
    call = guards[task_id].exit_call("succeeded", "null", "", _effects(task_id))
    line.post("guard_exit", task_id, *call)  # into a dead connection, with the finish
    line.finish(FinishReport(task_id, 1, Verdict("succeeded"), runtime=0.001, duration_key="noop"))
    for _ in range(3):
        try:
            line.settle()  # reads the replies; a lost connection sends both again
            break
        except RedisUnavailableError:
            continue
    assert store.tasks.outcome(task_id)[0] == "succeeded"
    assert store.client.lrange("audit", 0, -1) == [task_id]
    line.post("guard_exit", task_id, *call)  # and once more, as after a lost reply
    line.settle()
    assert store.client.lrange("audit", 0, -1) == [task_id]
    assert store.client.get("total") == "2"
    line.close()


def test_a_task_without_effects_sends_the_same_completion_as_before(redis_server):
    store = _store(redis_server)
    keys, args = store.guards.for_delivery("t3", 1).exit_call("succeeded", "null", "", Outbox())
    assert (len(keys), len(args)) == (5, 7), "no effects: no extra key or argument"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (lambda o: o.add("DEL", "k"), "effects command='DEL' is not accepted; allowed: one of"),
        (lambda o: o.add("rpush", "", "x"), "effects RPUSH key='' is not accepted"),
        (lambda o: o.rpush("k"), "effects RPUSH 'k' arguments=[] is not accepted"),
        (lambda o: o.rpush("k", b"x"), "effects RPUSH 'k' value 0=b'x' is not accepted"),
        (lambda o: o.sadd("k", "a", None), "effects SADD 'k' value 1=None is not accepted"),
        (lambda o: o.lpush("k", True), "effects LPUSH 'k' value 0=True is not accepted"),
        (lambda o: o.incrby("k", 1.5), "effects INCRBY 'k' amount=1.5 is not accepted"),
        (lambda o: o.incrby("k", 2**63), "allowed: an int from -9223372036854775808 to"),
        (lambda o: o.hset("k", ["a"]), "effects HSET 'k' mapping=['a'] is not accepted"),
        (lambda o: o.hset("k", {}), "effects HSET 'k' arguments=[] is not accepted"),
        (lambda o: o.set("k", "v", ex=0), "effects SET 'k' ex=0 is not accepted"),
        (lambda o: o.zadd("k", {"m": float("inf")}), "effects ZADD 'k' score of 'm'=inf"),
        (lambda o: o.expire("k", -1), "effects EXPIRE 'k' seconds=-1 is not accepted"),
        (lambda o: o.rpush("k", *range(MAX_ITEMS + 1)), f"allowed: 1 to {MAX_ITEMS} values"),
        (lambda o: o.rpush("k", "x" * MAX_BYTES), f"allowed: at most {MAX_BYTES} bytes"),
    ],
)
def test_bad_effects_are_refused_naming_the_command_the_value_and_what_is_allowed(record, message):
    effects = Outbox()
    with pytest.raises(InvalidInputError) as err:
        record(effects)
    assert message in str(err.value)
    assert len(effects) == 0, "nothing of a refused command is kept"


def test_a_body_called_directly_refuses_to_record_effects(redis_server):
    settings = load_settings(redis_url=redis_server.url)
    app = create_app(settings, redis_server.url, main="tests.outbox_direct")
    store = _store(redis_server)
    with pytest.raises(OutboxUnavailableError, match="outside a yardmaster run"):
        app.tasks["ledger"]("direct")
    assert len(store.demo.ledger("direct")) == 1, "the body ran, up to its first effect"
    assert store.demo.ledger("direct", committed=True) == []


def test_a_worker_commits_a_successful_bodys_effects_and_discards_a_failed_ones(cluster):
    c = cluster()
    c.dispatcher()
    c.native_worker("ob@test", "tests.outbox_app", slots=1)
    ok = c.client.submit(RECORD, ["ob:ok", "e1"])
    bad = c.client.submit(RECORD, ["ob:bad", "e2", True])
    assert ok.result(timeout=30) == 1
    [record] = c.client.wait([bad], timeout=30)
    assert record.state == TaskState.FAILED
    redis = c.store.client
    assert (redis.lrange("ob:ok", 0, -1), redis.get("ob:ok:total")) == (["e1"], "1")
    assert redis.get("ob:bad:runs") == "1", "the failed body ran"
    assert (redis.lrange("ob:bad", 0, -1), redis.get("ob:bad:total")) == ([], None)


def test_a_body_sigkilled_after_recording_effects_commits_nothing_and_its_rerun_commits_once(
    cluster,
):
    c = cluster(guard_ttl=1.0)  # the dead holder's guard lapses within a second
    c.dispatcher()
    c.native_worker("ob@test", "tests.outbox_app", slots=1)
    handle = c.client.submit(RECORD, ["ob:kill", "e", False, 60.0])
    redis = c.store.client
    wait_for(lambda: redis.get("ob:kill:runs") == "1", "the first run recording its effects")
    first = c.procs.pop("ob@test")
    kill_tree(first.pid)
    first.wait()
    assert redis.lrange("ob:kill", 0, -1) == [], "a killed run commits nothing"
    c.native_worker("ob@test", "tests.outbox_app", slots=1)  # hands its old task back
    assert handle.result(timeout=60) == 2
    assert redis.get("ob:kill:runs") == "2", "the body ran twice"
    assert redis.lrange("ob:kill", 0, -1) == ["e"], "its effects were committed once"
    assert redis.get("ob:kill:total") == "1"
    assert handle.record().attempt == 2
