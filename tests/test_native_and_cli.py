"""The Celery-native path (``task.schedule``), plain ``celery worker``, cancel, and the CLI."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time

import pytest

from scheduler.errors import TaskCancelledError, TaskFailedError
from scheduler.models import TaskState


def test_an_existing_app_task_is_scheduled_and_run_by_a_plain_celery_worker(cluster, monkeypatch):
    c = cluster()
    monkeypatch.setenv("YM_REDIS_URL", c.redis.url)
    monkeypatch.setenv("YM_NAMESPACE", c.namespace)
    sys.modules.pop("tests.native_app", None)
    native = importlib.import_module("tests.native_app")
    c.dispatcher()
    cmd = [sys.executable, "-m", "celery", "-A", "tests.native_app", "worker", "-c", "2"]
    cmd += ["-n", "native@test", "--without-gossip", "--without-mingle", "-l", "WARNING"]
    c.spawn("native", cmd)
    c.wait_worker("native@test")
    worker = next(w for w in c.store.workers.load() if w.name == "native@test")
    assert worker.slots == 2, "slots come from the worker's concurrency"

    handle = native.add.schedule([2, 3], priority=9)
    assert handle.result(timeout=30) == 5
    record = handle.record()
    assert record.worker == "native@test"
    assert record.priority == 9
    assert "tests.add" in c.store.workers.task_names()


def test_a_pending_task_cancels_at_once_and_never_runs(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("solo@test", slots=1)
    first = c.client.submit("sleep", [0.8])
    victim = c.client.submit("fail", ["must not run"])
    last = c.client.submit("noop")
    while first.status() != TaskState.RUNNING:
        time.sleep(0.01)
    assert victim.cancel() is True
    assert victim.status() == TaskState.CANCELLED
    assert victim.cancel() is False  # already terminal
    with pytest.raises(TaskCancelledError):
        victim.result(timeout=5)
    assert last.result(timeout=30) is None
    assert first.result(timeout=30)["slept"] == pytest.approx(0.8)
    counters = c.store.events.counters()
    assert counters["cancelled"] == 1
    assert "failed" not in counters
    assert counters["started"] == 2


def test_a_failing_task_reports_its_error_through_the_handle(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("solo@test", slots=1)
    handle = c.client.submit("fail", ["boom"])
    with pytest.raises(TaskFailedError) as exc:
        handle.result(timeout=30)
    assert "DemoError: boom" in exc.value.error
    assert c.store.workers.load()[0].failed == 1


def test_submit_and_status_on_the_command_line(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("a@test", slots=2)
    cli = [sys.executable, "-m", "scheduler.cli"]
    env = c.env()
    out = subprocess.run(
        [*cli, "submit", "sleep", "0.05", "--priority", "8", "--wait"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    task_id, result = out.stdout.strip().splitlines()
    assert json.loads(result) == {"slept": 0.05, "warm": False}
    assert c.client.handle(task_id).record().priority == 8

    c.client.submit_many([{"name": "noop", "priority": 3}] * 3)
    snap = json.loads(
        subprocess.run(
            [*cli, "status", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    )
    assert [w["name"] for w in snap["workers"]] == ["a@test"]
    assert snap["workers"][0]["slots"] == 2
    assert snap["dispatcher"]["leader"] is True
    assert snap["counters"]["submitted"] == 4
    assert snap["throughput"]["finished"] >= 1


def test_arguments_that_look_like_message_placeholders_arrive_intact(cluster):
    c = cluster(handoff_depth=4)
    c.dispatcher()
    c.worker("solo@test", slots=1)
    blocker = c.client.submit("sleep", [0.5])  # keeps the slot busy: the rest go by hand-off
    texts = ['"@@ym-worker@@"', "@@ym-queue@@", "50% \\ done"]
    handles = [c.client.submit("fail", [t]) for t in texts]
    assert blocker.result(timeout=30)["slept"] == pytest.approx(0.5)
    for text, handle in zip(texts, handles, strict=True):
        with pytest.raises(TaskFailedError) as exc:
            handle.result(timeout=30)
        assert exc.value.error == f"DemoError: {text}"


def test_finishing_tasks_teach_the_duration_ema_and_the_affinity_scores(cluster):
    c = cluster(ema_alpha=0.5)
    c.dispatcher()
    c.worker("solo@test", slots=1)
    ok = [c.client.submit("sleep", [0.1], affinity_key="user-7") for _ in range(3)]
    c.client.wait(ok, timeout=30)
    bad = c.client.submit("sleep", [0.05], {"fails": True}, affinity_key="user-7")
    c.client.wait([bad], timeout=30)

    assert [h.result()["warm"] for h in ok] == [False, True, True]  # the key is warm after one run
    runtimes = [h.record().runtime for h in ok]
    # EMA with alpha 0.5 over the three successful runs (failures teach no duration)
    expected = runtimes[0]
    for r in runtimes[1:]:
        expected = 0.5 * r + 0.5 * expected
    assert c.store.estimates.durations()["sleep"] == pytest.approx(expected, abs=1e-5)
    assert 0.05 <= expected < 0.1  # 0.1 s cold, then 0.05 s warm
    # +0.1 per success, -0.1 per failure, clamped to [0, 1]
    assert c.store.estimates.affinity_scores("user-7") == {"solo@test": pytest.approx(0.2)}
