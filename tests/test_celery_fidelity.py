"""Celery behaviours Celery's own integration suite checks (docs/celery.md, "Celery's own
integration tests"), through a real dispatcher and a real
``yardmaster worker -A tests.fidelity_tasks``.
"""

from __future__ import annotations

import importlib
import json
import sys
from types import ModuleType
from typing import Any

import pytest
from celery import chain
from celery.app.backends import by_url
from celery.exceptions import Reject

from broker_config.celery_app import BACKEND_SCHEMES, backend_url, store_url
from broker_config.results import YardmasterBackend
from scheduler.errors import InvalidInputError
from scheduler.keys import Keys
from workers.app import create_app

MODULE = "tests.fidelity_tasks"

pytestmark = pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning")


@pytest.fixture
def fidelity(cluster: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ModuleType]:
    """A cluster with a dispatcher and one one-slot worker running ``-A tests.fidelity_tasks``,
    and the task module imported here (its app finds the cluster through ``YM_*``)."""
    c = cluster()
    monkeypatch.setenv("YM_REDIS_URL", c.redis.url)
    monkeypatch.setenv("YM_NAMESPACE", c.namespace)
    sys.modules.pop(MODULE, None)
    mod = importlib.import_module(MODULE)
    c.dispatcher()
    c.worker("w1@test", slots=1, app_module=MODULE)
    return c, mod


def test_the_result_backend_setting_is_a_redis_url_naming_the_store(fidelity):
    c, mod = fidelity
    # the lazy app of the task module: found through YM_REDIS_URL on first use
    assert mod.app.conf.result_backend == backend_url(c.redis.url)
    assert mod.app.conf.result_backend.startswith("redis")  # Celery's suite's guard
    assert isinstance(mod.app.backend, YardmasterBackend)
    r = mod.add.delay(2, 3)
    assert r.get(timeout=30) == 5
    assert r.state == "SUCCESS"
    # an app given the URL: the same setting, read through Celery's own alias lookup
    app = create_app(c.settings, c.redis.url)
    cls, url = by_url(app.conf.result_backend, app.loader)
    assert cls is YardmasterBackend
    assert store_url(url) == c.redis.url
    assert app.AsyncResult(r.id).get(timeout=30) == 5


def test_backend_urls_keep_everything_but_the_scheme():
    for store, alias in BACKEND_SCHEMES.items():
        assert "+" not in alias  # Celery reads "a+b://" as backend a on URL b://
        url = f"{store}://:secret@h:6380/2?ssl_cert_reqs=none"
        assert backend_url(url) == f"{alias}://:secret@h:6380/2?ssl_cert_reqs=none"
        assert store_url(backend_url(url)) == url
    assert store_url("broker_config.results:YardmasterBackend") is None
    assert store_url("redis://h/0") is None  # Celery's own Redis backend is not ours
    with pytest.raises(ValueError, match="unix"):
        backend_url("unix:///tmp/redis.sock")


def test_message_properties_and_argument_reprs_reach_the_request(fidelity):
    c, mod = fidelity
    r = mod.seen.apply_async(
        (1, 2),
        {"k": "v"},
        app_id="1234",
        user_id="u1",
        argsrepr="CUSTOM ARGS",
        kwargsrepr="CUSTOM KWARGS",
    )
    got = r.get(timeout=30)
    assert got["properties"]["app_id"] == "1234"
    assert got["properties"]["user_id"] == "u1"
    assert got["argsrepr"] == "CUSTOM ARGS"
    assert got["kwargsrepr"] == "CUSTOM KWARGS"
    assert got["args"] == [1, 2]
    assert got["kwargs"] == {"k": "v"}
    # a signature's options travel the same way; without reprs the worker shows the args
    plain = mod.seen.s(7).set(app_id="sig").delay().get(timeout=30)
    assert plain["properties"]["app_id"] == "sig"
    assert plain["argsrepr"] == "[7]"
    # text that looks like the dispatcher's placeholders stays text
    odd = mod.seen.apply_async(app_id="@@ym-worker@@").get(timeout=30)
    assert odd["properties"]["app_id"] == "@@ym_worker@@"
    assert c.store.tasks.records([r.id])[0].worker == "w1@test"


def test_a_message_property_that_is_not_a_string_is_refused(fidelity):
    _, mod = fidelity
    for option in ("app_id", "argsrepr"):
        with pytest.raises(InvalidInputError) as raised:
            mod.add.apply_async((1, 1), **{option: 12})
        assert raised.value.field == option


def test_retry_with_new_arguments_runs_them_and_keeps_them_on_the_record(fidelity):
    c, mod = fidelity
    kw = mod.kwargs_to_args.apply_async(kwargs={"foo": 1, "bar": 2, "label": "kept"})
    assert kw.get(timeout=30) == {"foo": 2, "bar": 3, "label": "kept", "retries": 1}
    pos = mod.args_to_kwargs.apply_async(args=(1, 2))
    assert pos.get(timeout=30) == {"foo": 2, "bar": 2, "retries": 1}
    stored = c.store.client.hmget(Keys(c.namespace).task(pos.id), "args", "kwargs", "attempt")
    # the new foo takes the place of the positional one, as in Celery
    assert json.loads(stored[0]) == [2, 2]
    assert json.loads(stored[1]) == {}
    assert int(stored[2]) == 2
    # each retry runs the arguments the previous one gave
    assert mod.countdown_args.delay(3).get(timeout=30) == 3


def test_retry_arguments_json_cannot_carry_fail_the_run_naming_them(fidelity):
    c, mod = fidelity
    r = mod.bad_retry.delay()
    with pytest.raises(Exception, match=r"retry\(args\).*a list of JSON values"):
        r.get(timeout=30)
    rec = c.store.tasks.records([r.id])[0]
    assert rec.state == "failed"
    assert rec.attempt == 1


def test_a_task_sent_from_inside_a_task_knows_its_parent_and_root(fidelity, cluster):
    c, mod = fidelity
    c.worker("w2@test", slots=2, app_module=MODULE)  # the children run while parents wait
    r = mod.lineage.delay(2)
    (top, child, grandchild) = r.get(timeout=90)
    assert top == [r.id, r.id, None]  # sent by the caller: its own root, no parent
    assert child[1:] == [r.id, r.id]
    assert grandchild[1:] == [r.id, child[0]]
    # given by the caller, they are carried as they are
    given = mod.lineage.apply_async((0,), root_id="root-x", parent_id="parent-y")
    assert given.get(timeout=30) == [[given.id, "root-x", "parent-y"]]


def test_a_rejected_run_fails_for_good_and_re_raises_celerys_reject(cluster, monkeypatch):
    # a retry policy that retries every exception: a rejection is not retried all the same
    c = cluster(retry_max_attempts=3)
    monkeypatch.setenv("YM_REDIS_URL", c.redis.url)
    monkeypatch.setenv("YM_NAMESPACE", c.namespace)
    monkeypatch.setenv("YM_RETRY_MAX_ATTEMPTS", "3")
    sys.modules.pop(MODULE, None)
    mod = importlib.import_module(MODULE)
    c.dispatcher()
    c.worker("w1@test", slots=1, app_module=MODULE)
    r = mod.reject.delay()
    with pytest.raises(Reject) as raised:
        r.get(timeout=30)
    assert type(raised.value) is Reject
    assert r.status == "FAILURE"
    assert r.failed()
    rec = c.store.tasks.records([r.id])[0]
    assert rec.state == "failed"
    assert rec.attempt == 1


def test_a_chains_steps_know_the_step_before_and_the_first(fidelity):
    _, mod = fidelity
    last = chain(mod.lineage.si(0), mod.lineage.si(0), mod.lineage.si(0)).delay()
    middle = last.parent
    first = middle.parent
    assert first.get(timeout=30) == [[first.id, first.id, None]]
    assert middle.get(timeout=30) == [[middle.id, first.id, first.id]]
    assert last.get(timeout=30) == [[last.id, first.id, middle.id]]
