"""YM_DURABLE_REPLICAS: accepted submissions and recorded outcomes wait for replicas."""

from __future__ import annotations

import pytest

from scheduler.client import Client
from scheduler.errors import ReplicationError
from scheduler.models import TaskState
from scheduler.settings import load_settings
from scheduler.store import Store, connect
from tests.conftest import BUILTIN
from tests.reliability_support import wait_for


def test_off_by_default_no_wait_and_no_marker_write(redis_server):
    store = Store(connect(redis_server.url), load_settings(redis_url=redis_server.url))
    assert store.settings.durable_replicas == 0
    Client(store, known_tasks=BUILTIN).submit("noop")
    # with durability off nothing but the submission is written
    assert store.client.exists(store.keys.replicated) == 0


def test_a_submission_waits_for_the_replica_and_then_is_on_it(sentinel_redis):
    url = sentinel_redis.url
    settings = load_settings(redis_url=url, namespace="dur1", durable_replicas=1)
    client = Client(Store.from_url(url, settings), known_tasks=BUILTIN)
    handle = client.submit("noop")
    # WAIT returned only once the replica held the record: read it there, at once
    port = sentinel_redis.master_port()
    replica = next(s for s in sentinel_redis.servers if s.port != port)
    on_replica = connect(replica.url)
    assert on_replica.hget(f"dur1:task:{handle.id}", "state") == "pending"
    assert int(on_replica.get("dur1:replicated") or 0) >= 1


def test_too_few_replicas_is_a_typed_error_and_the_submission_stays(sentinel_redis):
    url = sentinel_redis.url
    settings = load_settings(
        redis_url=url, namespace="dur2", durable_replicas=2, durable_timeout=0.2
    )
    store = Store.from_url(url, settings)
    client = Client(store, known_tasks=BUILTIN)
    with pytest.raises(ReplicationError) as err:
        client.submit_many([{"name": "noop"}], ids=["kept-1"])
    text = str(err.value)
    assert "the submission of 1 task" in text
    assert "1 of the 2 replicas YM_DURABLE_REPLICAS asks for" in text
    assert (err.value.required, err.value.acknowledged) == (2, 1)
    # the record stays: it was accepted by the master
    (record,) = store.tasks.records(["kept-1"])
    assert record is not None
    assert record.state == TaskState.PENDING


def test_outcomes_wait_for_the_replica_and_a_shortfall_is_logged(ha_cluster):
    ok = ha_cluster(strategy="fifo", durable_replicas=1)
    ok.dispatcher("d-ok")
    ok.worker("a@dur", slots=2)
    records = ok.client.wait(ok.client.submit_many([{"name": "noop"} for _ in range(20)]), 120)
    assert {r.state for r in records} == {TaskState.SUCCEEDED}
    log = (ok.log_dir / "a@dur.log").read_text(errors="replace")
    assert "replicas YM_DURABLE_REPLICAS asks for" not in log

    # two replicas asked for, one exists: the outcome is recorded, and the worker says
    # it is not on enough replicas (its submission said so to the submitter too)
    short = ha_cluster(strategy="fifo", durable_replicas=2, durable_timeout=0.2)
    short.dispatcher("d-short")
    short.worker("b@dur", slots=1)
    with pytest.raises(ReplicationError):
        short.client.submit_many([{"name": "noop"}], ids=["short-1"])
    wait_for(
        lambda: short.store.tasks.records(["short-1"])[0].state == TaskState.SUCCEEDED,
        "the accepted task to run",
        timeout=120,
    )
    wanted = "outcomes reported by b@dur reached the Redis master"
    wait_for(
        lambda: wanted in (short.log_dir / "b@dur.log").read_text(errors="replace"),
        "the worker's log of too few replicas",
    )
