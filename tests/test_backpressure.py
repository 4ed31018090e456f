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
from typing import Any

import httpx
import pytest
from redis import Redis

from scheduler.client import Client
from scheduler.embedded import EmbeddedRedis
from scheduler.errors import BackpressureError
from scheduler.local_cluster import CLI
from scheduler.models import TaskState
from scheduler.settings import load_settings
from scheduler.store import Store
from tests.conftest import BUILTIN, Cluster

NOEVICTION = ("--maxmemory-policy", "noeviction")


def _client(server: EmbeddedRedis, **settings: Any) -> Client:
    store = Store.from_url(server.url, load_settings(redis_url=server.url, **settings))
    return Client(store, known_tasks=BUILTIN)


def _batch(n: int, **fields: Any) -> list[dict[str, Any]]:
    return [{"name": "noop", **fields} for _ in range(n)]


def _submitted(client: Client) -> int:
    return client.store.events.counters().get("submitted", 0)


def _used(raw: Redis) -> int:
    return int(raw.info("memory")["used_memory"])


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
    client = _client(small_redis, memory_high_water=0.8, memory_low_water=0.6)
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
    c = Cluster(small_redis, tmp_path, max_pending=3, backpressure_retry_after=1.5)
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
