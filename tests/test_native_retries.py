"""Retry policies on ``@app.task``: yardmaster's ``ym_retry`` option and Celery's ``autoretry_for``."""

from __future__ import annotations

import importlib
import sys

import pytest

from scheduler.errors import TaskFailedError


def test_task_options_set_the_retry_policy_on_the_celery_native_path(cluster, monkeypatch):
    c = cluster()
    monkeypatch.setenv("YM_REDIS_URL", c.redis.url)
    monkeypatch.setenv("YM_NAMESPACE", c.namespace)
    sys.modules.pop("tests.native_app", None)
    native = importlib.import_module("tests.native_app")
    c.dispatcher()
    cmd = [sys.executable, "-m", "celery", "-A", "tests.native_app", "worker", "-c", "1"]
    cmd += ["-n", "native@test", "--without-gossip", "--without-mingle", "-l", "WARNING"]
    c.spawn("native", cmd)
    c.wait_worker("native@test")

    # ym_retry: up to 3 attempts on ValueError
    ok = native.flaky_policy.schedule(["p", 2])
    assert ok.result(timeout=60) == 3
    assert ok.record().attempt == 3
    exhausted = native.flaky_policy.schedule(["q", 5])
    with pytest.raises(TaskFailedError) as exc:
        exhausted.result(timeout=60)
    assert exc.value.error == "ValueError: run 3"
    assert exhausted.record().attempt == 3
    # a submission's own policy wins over the task's option
    once = native.flaky_policy.schedule(["r", 5], retry={"max_attempts": 1})
    with pytest.raises(TaskFailedError):
        once.result(timeout=60)
    assert once.record().attempt == 1

    # Celery's autoretry_for / max_retries=2 / retry_backoff: its self.retry() maps onto ours
    auto = native.flaky_autoretry.schedule(["a", 2])
    assert auto.result(timeout=60) == 3
    record = auto.record()
    assert record.attempt == 3
    assert record.last_error == "ValueError: run 2"
    beyond = native.flaky_autoretry.schedule(["b", 9])
    with pytest.raises(TaskFailedError) as exc:
        beyond.result(timeout=60)
    assert exc.value.error == "ValueError: run 3"  # max_retries=2: three attempts in all
    assert beyond.record().attempt == 3
