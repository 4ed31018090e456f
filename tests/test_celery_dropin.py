"""Celery code runs through the scheduler unchanged: ``delay``, ``apply_async`` and
``send_task`` become yardmaster submissions, ``AsyncResult`` reads yardmaster's records,
``revoke`` cancels, and ``yardmaster worker -A`` runs a user's task module.

Every test runs a real dispatcher and a real ``yardmaster worker -A tests.dropin_tasks``,
and checks that the task went through yardmaster: its record exists and names the worker.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from celery.exceptions import TaskRevokedError

from scheduler.errors import InvalidInputError, UnknownTaskError
from scheduler.models import TaskRecord
from workers.publishing import UnsupportedOptionError

MODULE = "tests.dropin_tasks"

# Each test imports the task module afresh (a cluster each); Celery then warns that
# the earlier import's tasks hold the same names.
pytestmark = [
    pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning"),
    # dropin.limited sets its priority in its decorator, as users still do
    pytest.mark.filterwarnings("ignore::celery.exceptions.CDeprecationWarning"),
]


def load_module(c: Any, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The user's task module, imported afresh in this process for ``c``'s cluster."""
    monkeypatch.setenv("YM_REDIS_URL", c.redis.url)
    monkeypatch.setenv("YM_NAMESPACE", c.namespace)
    sys.modules.pop(MODULE, None)
    return importlib.import_module(MODULE)


@pytest.fixture
def dropin(cluster: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ModuleType]:
    """A cluster with a dispatcher and one one-slot worker running ``-A tests.dropin_tasks``."""
    c = cluster()
    mod = load_module(c, monkeypatch)
    c.dispatcher()
    c.worker("w1@test", slots=1, app_module=MODULE)
    return c, mod


def record(c: Any, task_id: str) -> TaskRecord:
    found = c.store.tasks.records([task_id])[0]
    assert found is not None, f"no yardmaster record for {task_id}"
    return found


def test_delay_apply_async_send_task_and_signatures_run_through_yardmaster(dropin):
    c, mod = dropin
    results = [
        mod.add.delay(2, 3),
        mod.add.apply_async((4, 5)),
        mod.app.send_task("dropin.add", (6, 7)),
        mod.add.s(1, 1).delay(),
    ]
    assert [r.get(timeout=30) for r in results] == [5, 9, 13, 2]
    for r in results:
        assert r.state == "SUCCESS"
        assert r.ready()
        assert r.successful()
        rec = record(c, r.id)
        assert rec.state == "succeeded"
        assert rec.worker == "w1@test"


def test_a_task_sent_from_inside_a_task_is_a_yardmaster_submission(dropin):
    c, mod = dropin
    child_id = mod.spawn.delay(21).get(timeout=30)
    assert mod.app.AsyncResult(child_id).get(timeout=30) == 42
    assert record(c, child_id).worker == "w1@test"


def test_countdown_starts_no_earlier_than_asked_and_waits_in_redis(dropin):
    c, mod = dropin
    asked = time.time()
    r = mod.started.apply_async(countdown=2)
    rec = record(c, r.id)
    assert rec.state == "pending"
    assert rec.not_before is not None
    assert rec.not_before >= asked + 2
    assert c.store.pending.delayed_count() == 1
    began = r.get(timeout=30)
    assert began >= asked + 2
    assert record(c, r.id).started_at >= asked + 2


def test_eta_starts_no_earlier_than_asked(dropin):
    c, mod = dropin
    eta = datetime.now(UTC) + timedelta(seconds=2)
    r = mod.started.apply_async(eta=eta)
    assert r.get(timeout=30) >= eta.timestamp()
    assert record(c, r.id).state == "succeeded"
    # an ISO 8601 text is an eta too
    r2 = mod.started.apply_async(eta=(datetime.now(UTC) + timedelta(seconds=1)).isoformat())
    assert r2.get(timeout=30) > 0


def test_a_task_not_started_by_its_expires_time_ends_expired_unrun(dropin):
    c, mod = dropin
    busy = mod.sleep.delay(3)  # holds the only slot past the expiry
    late = mod.started.apply_async(expires=1)
    fine = mod.add.apply_async((1, 2), expires=600)
    assert busy.get(timeout=30) == 3
    with pytest.raises(TaskRevokedError):
        late.get(timeout=30)
    assert late.state == "REVOKED"
    rec = record(c, late.id)
    assert rec.state == "expired"
    assert rec.started_at is None
    assert "expires" in (rec.error or "")
    assert fine.get(timeout=30) == 3


def test_a_pending_task_past_its_expires_time_ends_expired_without_a_free_slot(dropin):
    c, mod = dropin
    busy = mod.sleep.delay(60)  # holds the only slot throughout
    late = mod.started.apply_async(expires=0.5)
    waiting = mod.started.apply_async(countdown=60, expires=0.5)
    with pytest.raises(TaskRevokedError):
        late.get(timeout=30)
    with pytest.raises(TaskRevokedError):
        waiting.get(timeout=30)
    for r in (late, waiting):
        rec = record(c, r.id)
        assert rec.state == "expired"
        assert rec.started_at is None
        assert "expires" in (rec.error or "")
    assert c.store.pending.delayed_count() == 0
    assert record(c, busy.id).state == "running"
    busy.revoke(terminate=True)


def test_a_worker_ends_a_task_it_receives_past_its_expires_time_unrun(dropin):
    c, mod = dropin
    # a message already past its expires time (no dispatcher-side watch): the worker's check
    past = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    [handle] = c.client.submit_many(
        [{"name": "dropin.started", "message": {"expires": past, "priority": 5}}]
    )
    with pytest.raises(TaskRevokedError):
        mod.app.AsyncResult(handle.id).get(timeout=30)
    rec = record(c, handle.id)
    assert rec.state == "expired"
    assert rec.worker == "w1@test"
    assert rec.started_at is None
    # it never ran: not a failure for the circuit breakers
    assert c.store.breakers.outcome_counts().get("dropin.started", (0, 0)) == (0, 0)
    assert mod.add.delay(1, 1).get(timeout=30) == 2  # the slot was freed


def test_priority_time_limits_and_headers_are_seen_by_the_task(dropin):
    c, mod = dropin
    r = mod.request.apply_async(
        priority=8, time_limit=30, soft_time_limit=20, headers={"x_trace": "abc"}
    )
    seen = r.get(timeout=30)
    assert seen["priority"] == 8
    assert seen["time_limit"] == 30
    assert seen["soft_time_limit"] == 20
    assert seen["trace"] == "abc"
    assert seen["id"] == r.id
    assert record(c, r.id).priority == 8
    default = mod.request.delay().get(timeout=30)
    assert default["priority"] == 5


def test_higher_priority_runs_first(dropin):
    c, mod = dropin
    busy = mod.sleep.delay(1.5)
    low = mod.started.apply_async(priority=1)
    high = mod.started.apply_async(priority=9)
    busy.get(timeout=30)
    assert high.get(timeout=30) < low.get(timeout=30)
    assert record(c, high.id).started_at < record(c, low.id).started_at


def test_an_async_result_works_from_another_process(dropin):
    c, mod = dropin
    r = mod.add.delay(20, 22)
    code = (
        "import sys; from tests.dropin_tasks import app; "
        "r = app.AsyncResult(sys.argv[1]); print(r.get(timeout=30), r.state)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, r.id],
        env=c.env(),
        cwd=c.cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.split() == ["42", "SUCCESS"]
    assert record(c, r.id).worker == "w1@test"


def test_the_original_exception_type_is_re_raised(dropin):
    c, mod = dropin
    r = mod.fail.delay(7)
    with pytest.raises(mod.DropinError) as raised:
        r.get(timeout=30)
    assert raised.value.args == ("bad input", 7)
    assert r.state == "FAILURE"
    assert not r.successful()
    assert "Traceback" in r.traceback
    assert "DropinError" in r.traceback
    assert record(c, r.id).state == "failed"
    # propagate=False returns the exception instead
    assert isinstance(r.get(propagate=False), mod.DropinError)
    with pytest.raises(KeyError):
        mod.fail_builtin.delay().get(timeout=30)


def test_revoke_cancels_a_waiting_task_at_once(dropin):
    c, mod = dropin
    waiting = mod.add.apply_async((1, 1), countdown=60)
    pending_busy = mod.sleep.delay(2)
    queued = mod.add.delay(2, 2)  # pending behind the busy slot
    waiting.revoke()
    mod.app.control.revoke(queued.id)
    assert record(c, waiting.id).state == "cancelled"
    assert record(c, queued.id).state == "cancelled"
    assert c.store.pending.delayed_count() == 0
    assert waiting.state == "REVOKED"
    with pytest.raises(TaskRevokedError):
        queued.get(timeout=5)
    assert pending_busy.get(timeout=30) == 2
    assert record(c, waiting.id).started_at is None


def test_revoke_with_terminate_stops_a_running_task(dropin):
    c, mod = dropin
    r = mod.sleep.delay(60)
    deadline = time.monotonic() + 30
    while record(c, r.id).state != "running":
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)
    r.revoke(terminate=True)
    assert record(c, r.id).state == "cancelled"
    assert r.state == "REVOKED"


def test_shared_task_binds_to_the_app_create_app_made(dropin):
    c, mod = dropin
    from celery import current_app

    assert current_app._get_current_object() is mod.app
    assert mod.shared_mul._get_current_object().app is mod.app
    r = mod.shared_mul.delay(3, 4)
    assert r.get(timeout=30) == 12
    assert record(c, r.id).worker == "w1@test"


def test_worker_and_up_load_a_module_the_way_celery_a_does(cluster, monkeypatch):
    c = cluster()
    mod = load_module(c, monkeypatch)
    c.dispatcher()
    c.worker("w2@test", slots=1, app_module=f"{MODULE}:app")  # module:attr
    assert "dropin.add" in c.store.workers.task_names()
    r = mod.add.delay(1, 2)
    assert r.get(timeout=30) == 3
    assert record(c, r.id).worker == "w2@test"
    # a plain Celery app is refused with the reason
    out = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "worker", "-A", f"{MODULE}:plain"],
        env=c.env(),
        cwd=c.cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "not a yardmaster app" in out.stderr + out.stdout


def test_up_runs_the_workers_of_a_user_module(cluster, monkeypatch):
    c = cluster()
    mod = load_module(c, monkeypatch)
    c.start(workers=1, slots=1, app_module=MODULE)
    r = mod.add.delay(5, 5)
    assert r.get(timeout=30) == 10
    assert record(c, r.id).worker.startswith("w1@")


def test_options_that_cannot_be_honoured_raise_naming_them(dropin):
    c, mod = dropin
    before = c.store.events.counters().get("submitted", 0)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"exchange": "other"}, "exchange"),
        ({"serializer": "pickle"}, "serializer"),
        # Celery would call add(x, y) as errback(request, exc, traceback): not over JSON
        ({"link_error": mod.add.s()}, "link_error"),
        ({"compression": "zlib"}, "compression"),
        ({"no_such_option": 1}, "no_such_option"),
    ]
    for options, name in cases:
        with pytest.raises(UnsupportedOptionError) as raised:
            mod.add.apply_async((1, 1), **options)
        assert raised.value.field == name
        assert name in str(raised.value)
    malformed: list[tuple[dict[str, Any], str]] = [
        ({"countdown": "soon"}, "countdown"),
        ({"countdown": float("nan")}, "countdown"),
        ({"eta": "next tuesday"}, "eta"),
        ({"eta": 12345}, "eta"),
        ({"expires": "never"}, "expires"),
        ({"priority": 12}, "priority"),
        ({"countdown": 1, "eta": datetime.now(UTC)}, "countdown"),
        ({"headers": ["x"]}, "headers"),
    ]
    for options, name in malformed:
        with pytest.raises(InvalidInputError) as raised:
            mod.add.apply_async((1, 1), **options)
        assert raised.value.field == name, options
    with pytest.raises(UnknownTaskError):
        mod.app.send_task("dropin.no_such_task", (1,))

    first = mod.add.apply_async((1, 1), task_id="same")
    with pytest.raises(InvalidInputError) as raised:
        mod.add.apply_async((1, 1), task_id="same")
    assert raised.value.field == "task_id"
    # only the first call with task_id "same" was accepted
    assert c.store.events.counters().get("submitted", 0) == before + 1
    assert record(c, "same").name == "dropin.add"
    assert first.get(timeout=30) == 2


def test_a_task_routes_setting_makes_the_queue_a_requirement(dropin):
    c, mod = dropin
    mod.app.conf.task_routes = {"dropin.add": {"queue": "other"}}
    routed = mod.add.delay(1, 1)  # no worker consumes 'other': it waits, saying why
    c.wait_for(lambda: routed.id in c.store.tasks.unschedulable(), "the routed task parked")
    assert "'other'" in c.store.tasks.unschedulable()[routed.id]
    r = mod.started.delay()  # a task no route names is scheduled as usual
    assert r.get(timeout=30) > 0
    assert record(c, r.id).worker == "w1@test"
    assert record(c, routed.id).state == "pending"


def test_a_tasks_own_options_are_the_defaults_of_delay_and_send_task(dropin):
    c, mod = dropin
    expected = {"priority": 7, "time_limit": 40, "soft_time_limit": 30}
    by_delay = mod.limited.delay()
    by_name = mod.app.send_task("dropin.limited")
    assert by_delay.get(timeout=30) == expected
    assert by_name.get(timeout=30) == expected
    assert mod.limited.apply_async(priority=2).get(timeout=30)["priority"] == 2
    assert record(c, by_name.id).priority == 7
    mod.app.conf.task_default_priority = 3
    assert mod.request.delay().get(timeout=30)["priority"] == 3


def test_a_task_submitted_by_the_client_sees_its_priority_in_the_delivery_info(dropin):
    c, mod = dropin
    direct = c.client.submit("dropin.request", priority=9)  # published by the dispatcher
    assert direct.result(timeout=30)["priority"] == 9
    busy = mod.sleep.delay(1.5)
    handed = c.client.submit("dropin.request", priority=2)  # waits behind the busy slot
    assert busy.get(timeout=30) == 1.5
    assert handed.result(timeout=30)["priority"] == 2
