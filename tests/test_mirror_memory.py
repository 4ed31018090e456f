"""The dispatcher's mirror of pending tasks keeps one copy of each repeated text.

A backlog of a million tasks holds a handful of task names and grouping keys;
each inbox entry and each Redis reply brings its own copy of them, which the
mirror would otherwise keep per task (issue #21, dispatcher memory).
"""

from __future__ import annotations

from scheduler.client import Client
from scheduler.embedded import EmbeddedRedis
from scheduler.models import PendingTask, interned
from scheduler.settings import load_settings
from scheduler.store import Store, connect

KEYS = {"affinity_key": "shard-17", "duration_key": "resize-large", "concurrency_key": "db-pool"}


def _submit_two(redis_server: EmbeddedRedis) -> Store:
    store = Store(connect(redis_server.url), load_settings(redis_url=redis_server.url))
    client = Client(store, known_tasks=["noop"])
    spec = {"name": "noop", **KEYS, "max_concurrent": 4}
    client.submit_many([dict(spec), dict(spec)])
    return store


def _assert_shared(a: PendingTask, b: PendingTask) -> None:
    assert a.id != b.id
    assert (a.name, a.affinity_key, a.duration_key, a.concurrency_key) == (
        "noop",
        KEYS["affinity_key"],
        KEYS["duration_key"],
        KEYS["concurrency_key"],
    )
    assert a.max_concurrent == b.max_concurrent == 4
    assert a.name is b.name
    assert a.affinity_key is b.affinity_key
    assert a.duration_key is b.duration_key
    assert a.concurrency_key is b.concurrency_key


def test_tasks_read_from_the_inbox_share_one_copy_of_each_name_and_key(
    redis_server: EmbeddedRedis,
) -> None:
    store = _submit_two(redis_server)
    entries = [e for e in store.inbox.take(0, 100) if "id" in e]
    assert len(entries) == 2
    assert entries[0]["n"] is not entries[1]["n"], "each decoded entry brings its own copy"
    a, b = (PendingTask.from_wire(e) for e in entries)
    _assert_shared(a, b)


def test_tasks_reloaded_by_a_new_leader_share_one_copy_of_each_name_and_key(
    redis_server: EmbeddedRedis,
) -> None:
    store = _submit_two(redis_server)
    a, b = list(store.pending.load())
    _assert_shared(a, b)


def test_an_absent_or_empty_key_stays_none() -> None:
    assert interned(None) is None
    assert interned("") is None
    text = "".join(["tenant-", "42"])  # built at run time: not a constant the compiler shares
    assert interned(text) is interned("tenant-" + str(42))
