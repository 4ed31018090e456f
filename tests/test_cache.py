"""Solution cache, idempotency keys and the validation of their options (real Redis, real workers)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time

import pytest

from scheduler.errors import InvalidInputError, TaskFailedError
from scheduler.models import TaskState
from scheduler.settings import load_settings
from scheduler.store import Store, connect

TALLY = "tests.tally"


def stop(c, name):
    proc = c.procs.pop(name)
    proc.terminate()
    proc.wait(timeout=30)


def test_a_cache_hit_answers_at_once_with_no_worker_and_another_version_misses(cluster):
    c = cluster()
    c.dispatcher()
    c.native_worker("cache@test", "tests.guard_app", slots=1)
    opts = {"cache_ttl": 60, "cache_version": "v1"}
    first = c.client.submit(TALLY, ["runs"], {"seconds": 0}, **opts)
    assert first.answered_by is None
    assert first.result(timeout=30) == {"counter": "runs", "run": 1}

    stop(c, "cache@test")  # nothing can run a task from here on
    assert c.store.workers.load() == []
    hit2 = c.client.submit(TALLY, ["runs"], {"seconds": 0}, **opts)
    assert hit2.answered_by == "cached"
    assert hit2.status() == TaskState.SUCCEEDED
    assert hit2.result(timeout=0) == {"counter": "runs", "run": 1}
    record = hit2.record()
    assert record.worker is None
    assert record.attempt == 0
    assert record.started_at is None

    miss = c.client.submit(TALLY, ["runs"], {"seconds": 0}, cache_ttl=60, cache_version="v2")
    assert miss.answered_by is None
    time.sleep(0.3)
    assert miss.status() == TaskState.PENDING, "a new version must not be answered from the cache"
    assert c.store.client.get("runs") == "1"
    assert c.store.events.counters()["started"] == 1
    stats = c.store.cache.stats(TALLY)
    assert (stats.hits, stats.misses, stats.entries) == (1, 2, 1)


def test_canonical_arguments_make_the_same_key_whatever_the_keyword_order(cluster):
    c = cluster()
    c.dispatcher()
    c.native_worker("cache@test", "tests.guard_app", slots=1)
    a = c.client.submit(TALLY, kwargs={"counter": "k", "seconds": 0.0}, cache_ttl=30)
    a.result(timeout=30)
    b = c.client.submit(TALLY, kwargs={"seconds": 0.0, "counter": "k"}, cache_ttl=30)
    assert b.answered_by == "cached"
    other = c.client.submit(TALLY, kwargs={"seconds": 0.0, "counter": "k2"}, cache_ttl=30)
    assert other.answered_by is None
    assert other.result(timeout=30)["run"] == 1


def test_failures_are_never_cached(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("solo@test", slots=1)
    for _ in range(2):
        handle = c.client.submit("fail", ["nope"], cache_ttl=60)
        assert handle.answered_by is None
        with pytest.raises(TaskFailedError):
            handle.result(timeout=30)
    assert c.store.workers.load()[0].failed == 2
    assert c.store.cache.stats().entries == 0


def test_the_size_bound_evicts_the_least_recently_used_results(cluster):
    c = cluster(cache_max_entries=3)
    c.dispatcher()
    c.worker("solo@test", slots=1)
    for n in range(5):
        c.client.submit("spin", [0.001 * (n + 1)], cache_ttl=60).result(timeout=30)
    stats = c.store.cache.stats()
    assert (stats.entries, stats.evicted) == (3, 2)
    assert c.client.submit("spin", [0.005], cache_ttl=60).answered_by == "cached"
    assert c.client.submit("spin", [0.001], cache_ttl=60).answered_by is None  # evicted


def test_cache_stats_and_clear_on_the_command_line(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("solo@test", slots=1)
    c.client.submit("spin", [0.001], cache_ttl=60).result(timeout=30)
    c.client.submit("noop", cache_ttl=60).result(timeout=30)
    assert c.client.submit("spin", [0.001], cache_ttl=60).answered_by == "cached"
    cli = [sys.executable, "-m", "scheduler.cli", "cache"]

    def run(*args):
        return subprocess.run(
            [*cli, *args], env=c.env(), capture_output=True, text=True, timeout=60, check=True
        ).stdout

    stats = json.loads(run("stats", "--task", "spin", "--json"))
    assert stats | {"hit_rate": 0} == {
        "task": "spin", "hits": 1, "misses": 1, "hit_rate": 0, "entries": 1,
        "coalesced": 0, "idempotent": 0, "evicted": 0,
    }  # fmt: skip
    assert stats["hit_rate"] == 0.5
    assert "removed 1 cached result" in run("clear", "--task", "spin")
    assert c.store.cache.stats().entries == 1  # noop's entry stays
    assert c.client.submit("spin", [0.001], cache_ttl=60).answered_by is None
    assert c.store.cache.clear() >= 1
    submit = [sys.executable, "-m", "scheduler.cli", "submit", "noop", "--cache-ttl", "60"]
    out = subprocess.run(
        [*submit, "--wait"], env=c.env(), capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    again = subprocess.run(
        [*submit, "--wait"], env=c.env(), capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out[1] == again[1] == "null"
    assert c.client.handle(again[0]).record().attempt == 0, "the second came from the cache"
    bad = subprocess.run(
        [*submit, "--max-concurrent", "2"], env=c.env(), capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2
    assert "max_concurrent" in bad.stderr


def test_an_idempotency_key_returns_the_same_task_within_the_window(cluster):
    c = cluster(idempotency_window=1)
    c.dispatcher()
    c.native_worker("idem@test", "tests.guard_app", slots=1)
    first = c.client.submit(TALLY, ["idem"], idempotency_key="order-17")
    again = c.client.submit(TALLY, ["idem"], idempotency_key="order-17")
    assert again.id == first.id
    assert again.answered_by == "idempotent"
    assert first.result(timeout=30) == {"counter": "idem", "run": 1}
    assert c.client.submit(TALLY, ["idem"], idempotency_key="order-17").id == first.id
    time.sleep(1.3)  # the window is over
    later = c.client.submit(TALLY, ["idem"], idempotency_key="order-17")
    assert later.id != first.id
    assert later.result(timeout=30) == {"counter": "idem", "run": 2}
    assert c.store.cache.stats().idempotent == 2


def test_the_task_options_apply_on_the_celery_native_schedule_path(cluster, monkeypatch):
    c = cluster()
    monkeypatch.setenv("YM_REDIS_URL", c.redis.url)
    monkeypatch.setenv("YM_NAMESPACE", c.namespace)
    sys.modules.pop("tests.guard_app", None)
    guard_app = importlib.import_module("tests.guard_app")
    c.dispatcher()
    c.native_worker("native@test", "tests.guard_app", slots=1)
    first = guard_app.cached_tally.schedule(["native"])  # cache_ttl=60 is a task option
    assert first.result(timeout=30) == 1
    assert guard_app.cached_tally.schedule(["native"]).answered_by == "cached"
    fresh = guard_app.cached_tally.schedule(["native"], cache_version="v2")
    assert fresh.answered_by is None
    assert fresh.result(timeout=30) == 2
    same = guard_app.tally.schedule(["n2", 0.5], idempotency_key="x")
    assert guard_app.tally.schedule(["n2", 0.5], idempotency_key="x").id == same.id
    with pytest.raises(InvalidInputError, match="max_concurrent"):
        guard_app.tally.schedule(["n3"], concurrency_key="c")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"cache_ttl": 0}, "cache_ttl"),
        ({"cache_ttl": float("nan")}, "cache_ttl"),
        ({"cache_version": "v1"}, "cache_version"),
        ({"coalesce": "yes"}, "coalesce"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"concurrency_key": "c"}, "max_concurrent"),
        ({"max_concurrent": 2}, "concurrency_key"),
        ({"concurrency_key": "c", "max_concurrent": 0}, "max_concurrent"),
        ({"concurrency_key": "c", "max_concurrent": 1.5}, "max_concurrent"),
    ],
)
def test_bad_options_are_refused_naming_the_field_and_nothing_is_submitted(
    redis_server, options, field
):
    from scheduler.client import Client

    store = Store(connect(redis_server.url), load_settings(namespace="badopts"))
    client = Client(store, known_tasks=["noop"])
    with pytest.raises(InvalidInputError) as exc:
        client.submit_many([{"name": "noop"}, {"name": "noop", **options}])
    assert exc.value.field == f"tasks[1].{field}"
    assert "allowed:" in str(exc.value)
    assert store.events.counters() == {}
