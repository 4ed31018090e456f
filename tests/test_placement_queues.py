"""Placement by Celery queue, soft preferences and task defaults, on a real cluster.

A worker registers the Celery queues it consumes (``yardmaster worker -Q``, or a plain
``celery -A app worker -Q``); a task routed to a queue (``apply_async(queue=...)``,
``routing_key``, the app's ``task_routes``, ``@app.task(queue=...)``, ``Client.submit
(queue=...)``) runs only on a worker consuming it, and waits as unschedulable while none
does. ``prefer=`` chooses among free fitting workers; ``@app.task(labels=..., prefer=...)``
are the defaults of every submission of the task.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

import pytest

from scheduler.models import TaskState

MODULE = "tests.routed_app"

pytestmark = [
    pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning"),
    # routed.on_queue names its queue in its decorator, as users still do
    pytest.mark.filterwarnings("ignore::celery.exceptions.CDeprecationWarning"),
]


def load_module(c: Any, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The user's task module, imported afresh in this process for ``c``'s cluster."""
    monkeypatch.setenv("YM_REDIS_URL", c.redis.url)
    monkeypatch.setenv("YM_NAMESPACE", c.namespace)
    sys.modules.pop(MODULE, None)
    return importlib.import_module(MODULE)


def worker_of(c: Any, task_id: str) -> str:
    (rec,) = c.store.tasks.records([task_id])
    assert rec is not None
    assert rec.state == TaskState.SUCCEEDED, (rec.state, rec.reason)
    return str(rec.worker)


def test_a_task_routed_to_a_queue_runs_only_on_a_worker_consuming_it(cluster, monkeypatch):
    c = cluster(strategy="fifo")
    mod = load_module(c, monkeypatch)
    c.dispatcher()
    c.worker("reports@test", slots=2, app_module=MODULE, queues="reports,bulk")
    c.worker("default@test", slots=2, app_module=MODULE)
    offered = {w.name: w.queues for w in c.store.workers.load()}
    assert offered == {"reports@test": ("bulk", "reports"), "default@test": ()}
    from scheduler.status import cluster_status

    shown = {w["name"]: w["queues"] for w in cluster_status(c.store)["workers"]}
    assert shown == {"reports@test": ["bulk", "reports"], "default@test": []}
    routed = [mod.by_route.delay() for _ in range(10)]  # task_routes
    routed += [mod.on_queue.delay() for _ in range(10)]  # @app.task(queue=...)
    routed += [mod.plain.apply_async(queue="reports") for _ in range(10)]
    routed += [mod.plain.apply_async(routing_key="bulk") for _ in range(5)]
    routed += [c.client.submit("routed.plain", queue="bulk") for _ in range(5)]
    # with a start time: kept in the record while it waits, carried when it is due
    routed += [mod.by_route.apply_async(countdown=0.1) for _ in range(5)]
    routed += [mod.plain.apply_async(queue="bulk", countdown=0.1) for _ in range(5)]
    others = [mod.plain.delay() for _ in range(10)]  # no queue: any worker
    for r in routed + others:
        r.get(timeout=60) if hasattr(r, "get") else r.result(timeout=60)
    assert {worker_of(c, r.id) for r in routed} == {"reports@test"}
    assert all(worker_of(c, r.id) for r in others)


def test_a_queue_no_worker_consumes_waits_and_runs_when_one_registers(cluster, monkeypatch):
    c = cluster(strategy="fifo")
    mod = load_module(c, monkeypatch)
    c.dispatcher()
    c.worker("default@test", slots=1, app_module=MODULE)
    late = mod.plain.apply_async(queue="late")
    c.wait_for(lambda: late.id in c.store.tasks.unschedulable(), "the task parked")
    reason = c.store.tasks.unschedulable()[late.id]
    assert "consumes the queue 'late'" in reason
    assert "queues consumed: none" in reason
    # a plain `celery -A app worker -Q late` registers through the hooks
    c.native_worker("native@test", MODULE, queues="late")
    assert late.get(timeout=60) == "plain"
    assert worker_of(c, late.id) == "native@test"
    assert c.store.tasks.unschedulable() == {}


def test_a_preferring_task_goes_to_a_matching_free_worker_and_never_waits(cluster, monkeypatch):
    c = cluster(strategy="fifo")
    mod = load_module(c, monkeypatch)
    c.dispatcher()
    c.worker("eu@test", slots=1, app_module=MODULE, labels=("zone=eu",))
    c.worker("us@test", slots=1, app_module=MODULE, labels=("zone=us",))
    for zone in ["eu", "us"] * 4:  # one at a time: both workers are free at each choice
        h = c.client.submit("routed.plain", prefer={"zone": zone})
        h.result(timeout=60)
        assert worker_of(c, h.id) == f"{zone}@test"
    r = mod.plain.apply_async(prefer={"zone": "eu"})
    r.get(timeout=60)
    assert worker_of(c, r.id) == "eu@test"
    r = mod.likes_us.delay()  # @app.task(prefer=...)
    r.get(timeout=60)
    assert worker_of(c, r.id) == "us@test"
    # soft: a preference no worker meets runs anyway
    h = c.client.submit("routed.plain", prefer={"zone": "mars"})
    assert h.result(timeout=60) == "plain"


def test_task_decorator_options_are_defaults_that_call_options_override(cluster, monkeypatch):
    c = cluster(strategy="fifo")
    mod = load_module(c, monkeypatch)
    c.dispatcher()
    c.worker("eu@test", slots=2, app_module=MODULE, labels=("zone=eu",), queues="bulk")
    c.worker("us@test", slots=2, app_module=MODULE, labels=("zone=us",), queues="reports")
    eu = [mod.in_eu.delay() for _ in range(10)]
    eu += [mod.app.send_task("routed.in_eu") for _ in range(5)]  # by name, same defaults
    us = [mod.in_eu.apply_async(labels={"zone": "us"}) for _ in range(10)]
    reports = [mod.on_queue.delay() for _ in range(5)]  # @app.task(queue="reports")
    bulk = [mod.on_queue.apply_async(queue="bulk") for _ in range(5)]
    for r in eu + us + reports + bulk:
        r.get(timeout=60)
    # .schedule() takes the same defaults, and its options override them too
    eu += [mod.in_eu.schedule() for _ in range(5)]
    us += [mod.in_eu.schedule(labels={"zone": "us"}) for _ in range(5)]
    reports += [mod.on_queue.schedule() for _ in range(5)]
    for h in eu[-5:] + us[-5:] + reports[-5:]:
        h.result(timeout=60)
    assert {worker_of(c, r.id) for r in eu} == {"eu@test"}
    assert {worker_of(c, r.id) for r in us} == {"us@test"}
    assert {worker_of(c, r.id) for r in reports} == {"us@test"}
    assert {worker_of(c, r.id) for r in bulk} == {"eu@test"}


def test_queue_options_map_to_one_queue_and_a_conflicting_routing_key_is_refused():
    from kombu import Queue

    from scheduler import placement
    from scheduler.errors import InvalidInputError
    from workers.publishing import submission

    def queue_of(options: dict[str, Any]) -> Any:
        return submission("routed.plain", (), {}, options).fields.get("queue")

    assert queue_of({}) is None
    assert queue_of({"queue": "reports"}) == "reports"
    assert queue_of({"routing_key": "bulk"}) == "bulk"  # the default exchange's meaning
    assert queue_of({"queue": Queue("reports", routing_key="rk"), "routing_key": "rk"}) == "reports"
    with pytest.raises(InvalidInputError) as err:
        queue_of({"queue": "reports", "routing_key": "bulk"})
    assert err.value.field == "routing_key"
    assert "'reports'" in str(err.value)
    assert placement.queues("-Q", " b, a,b ") == ["a", "b"]
    for bad in ("a,,b", "re ports", "x" * 201):
        with pytest.raises(InvalidInputError) as err:
            placement.queues("-Q", bad)
        assert err.value.field == "-Q"


def test_queue_and_prefer_survive_a_requeue_and_a_new_leaders_reload(redis_server):
    """The record keeps them: the inbox entry of a task a dead worker gave back, and the
    pending tasks a new dispatcher loads, carry the queue and the preference again."""
    import json

    from scheduler.client import Client
    from scheduler.models import PendingTask
    from scheduler.placement import Needs
    from scheduler.settings import load_settings
    from scheduler.store import Store, connect

    store = Store(connect(redis_server.url), load_settings(redis_url=redis_server.url))
    store.workers.register("w@q", 1, "host", 1, ["noop"], queues=["reports"])
    assert [w.queues for w in store.workers.load()] == [("reports",)]
    client = Client(store, known_tasks=["noop"])
    [handle] = client.submit_many([{"name": "noop", "queue": "reports", "prefer": "zone=eu"}])
    want = Needs(None, None, "reports", {"zone": "eu"})
    [loaded] = list(store.pending.load())
    assert loaded.needs == want
    [claim] = store.pending.claim([(handle.id, "w@q")])
    assert claim.status == "ok"
    store.client.delete(store.keys.inbox)
    assert store.workers.deregister("w@q") == 1  # reaped: back to pending
    entries = [json.loads(e) for e in store.client.lrange(store.keys.inbox, 0, -1)]
    back = [PendingTask.from_wire(e) for e in entries if e.get("id") == handle.id]
    assert [t.needs for t in back] == [want]
