"""The store's shape: repositories on one client, its errors, batches, and no Redis outside it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from scheduler.client import Client
from scheduler.embedded import free_port
from scheduler.errors import (
    BackpressureError,
    NotLeaderError,
    RedisOutOfMemoryError,
    RedisRefusedError,
    RedisUnavailableError,
    RedisUnreachableError,
    StoreError,
)
from scheduler.settings import load_settings
from scheduler.store import FinishReport, ReportLine, Store, Verdict, WorkerSummary, connect

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = ("scheduler", "workers", "broker_config")
W = "w@store"


def _store(url: str) -> Store:
    return Store(connect(url), load_settings(redis_url=url, namespace="storetest"))


def test_a_redis_that_does_not_answer_is_reported_as_unreachable_naming_it_without_password():
    port = free_port()
    store = _store(f"redis://ym:s3cret@127.0.0.1:{port}/3")
    with pytest.raises(RedisUnreachableError) as caught:
        store.events.counters()
    assert caught.value.url == f"redis://127.0.0.1:{port}/3"
    assert f"redis://127.0.0.1:{port}/3" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert isinstance(caught.value, RedisUnavailableError)
    assert isinstance(caught.value, StoreError)
    assert isinstance(caught.value.__cause__, Exception), "the client's error is kept as cause"
    with pytest.raises(RedisUnavailableError):
        store.leases.lock("token").acquire()  # a Lock from the store translates too
    with pytest.raises(RedisUnavailableError):
        list(store.pending.load())  # and so does a generator, while it is read
    line = ReportLine(store, W)
    guard = store.guards.for_delivery("t", 1)
    with pytest.raises(RedisUnavailableError):
        line.start_early("t", 1, "n", guard)  # and the report line


def test_a_fenced_write_of_a_deposed_dispatcher_raises_not_leader(redis_server):
    store = _store(redis_server.url)
    assert store.leases.take("new", 10.0)
    assert store.leases.leader() == "new"
    with pytest.raises(NotLeaderError):
        store.handoff.fill("old", [("t", False, "{}")])
    store.leases.release("new")
    assert store.leases.leader() is None


def test_an_error_reply_and_an_out_of_memory_refusal_are_typed(redis_server):
    store = _store(redis_server.url)
    store.client.set(store.keys.stats, "not a hash")
    with pytest.raises(RedisRefusedError, match="WRONGTYPE") as caught:
        store.events.counters()
    assert not isinstance(caught.value, RedisOutOfMemoryError)
    store.client.delete(store.keys.stats)
    store.client.config_set("maxmemory", 1)
    try:
        with pytest.raises(RedisOutOfMemoryError, match="maxmemory"):
            store.limits.set_rate_limit("noop", 5.0)
        # a submission refused so is backpressure (test_backpressure.py), typed the same below
        with pytest.raises(BackpressureError) as refused:
            Client(store, known_tasks=["noop"]).submit_many([{"name": "noop"}])
        assert refused.value.reason == "memory"
    finally:
        store.client.config_set("maxmemory", 0)


def test_writers_given_a_batch_reach_redis_together_when_it_ends(redis_server):
    store = _store(redis_server.url)
    store.client.config_resetstat()
    with store.batch() as batch:
        store.limits.set_rate_limit("noop", 5.0, pipeline=batch)
        store.workers.set_orphan_policies({"noop": "fail"}, pipeline=batch)
        store.breakers.record({"noop": {"state": "open"}}, [], pipeline=batch)
        assert store.limits.rate_limits() == {}, "nothing is sent before the batch ends"
    assert store.limits.rate_limits() == {"noop": 5.0}
    assert store.client.hget(store.keys.orphan_policy, "noop") == "fail"
    assert store.breakers.states() == {"noop": {"state": "open"}}
    calls = store.client.info("commandstats")
    assert calls["cmdstat_exec"]["calls"] == 1, "one MULTI/EXEC for the three writers"


def test_a_finish_report_frees_the_slot_and_the_summary_counts_it(redis_server):
    store = _store(redis_server.url)
    store.workers.register(W, 1, "host", 7, ["noop"])
    [handle] = Client(store, known_tasks=["noop"]).submit_many([{"name": "noop"}])
    [claim] = store.pending.claim([(handle.id, W)])
    [summary] = store.workers.load()
    assert (summary.inflight, summary.busy, summary.free, summary.utilization) == (1, 1, 0, 1.0)
    assert store.deliveries.start(handle.id, W, claim.attempt, "n")[0] is True
    report = FinishReport(handle.id, claim.attempt, Verdict("succeeded", "3"), runtime=0.5)
    assert store.deliveries.finish(W, report) == "ok"
    [summary] = store.workers.load()
    assert (summary.inflight, summary.free, summary.succeeded, summary.pid) == (0, 1, 1, 7)
    assert summary.heartbeat_age(summary.heartbeat - 5) == 0.0, "never negative"


def test_a_summary_of_a_draining_worker_counts_its_tasks_within_its_slots():
    draining = WorkerSummary("w", 0, "q", "h", 1, 10.0, 0.0, 2, 0, 0)
    assert (draining.busy, draining.free, draining.utilization) == (0, 0, 0.0)
    over = WorkerSummary("w", 2, "q", "h", 1, 10.0, 0.0, 3, 0, 0)
    assert (over.busy, over.free, over.utilization) == (2, 0, 1.0)
    assert over.heartbeat_age(12.5) == 2.5


def _production_modules() -> list[Path]:
    return [
        path
        for package in PRODUCTION
        for path in sorted((ROOT / package).rglob("*.py"))
        if "store" not in path.relative_to(ROOT).parts[:2]
    ]


def test_no_production_module_outside_the_store_imports_redis_or_touches_its_client():
    assert len(_production_modules()) > 50
    found = []
    for path in _production_modules():
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Attribute) and node.attr in ("client", "_client", "redis"):
                owner = node.value
                owner_name = owner.attr if isinstance(owner, ast.Attribute) else ""
                owner_name = owner.id if isinstance(owner, ast.Name) else owner_name
                if owner_name.endswith("store") or node.attr == "_client":
                    found.append(f"{where}:{node.lineno} uses {owner_name}.{node.attr}")
                continue
            else:
                continue
            found += [
                f"{where}:{node.lineno} imports {name}"
                for name in names
                if name == "redis" or name.startswith("redis.")
            ]
    assert found == []
