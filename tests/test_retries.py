"""Retries: exponential backoff, which exceptions retry, exhausted attempts, Celery's retry()."""

from __future__ import annotations

import itertools
import time

import pytest

from scheduler.errors import InvalidInputError, TaskFailedError
from scheduler.models import TaskState, validate_spec
from scheduler.retry import RetryPolicy


def timeline(c, key: str) -> list[tuple[str, float]]:
    raw = c.store.client.lrange(c.store.keys.demo(key), 0, -1)
    return [(what, float(at)) for what, at in (item.split("@") for item in raw)]


def runs(c, key: str) -> int:
    return int(c.store.client.get(c.store.keys.demo(key + ":runs")) or 0)


def test_a_flaky_task_succeeds_on_its_third_attempt_after_doubling_backoffs(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("solo@test", slots=1)
    base = 0.3
    policy = {"max_attempts": 4, "backoff": base, "backoff_max": 30, "jitter": 0.5}
    handle = c.client.submit("flaky", ["f3", 2], retry=policy)
    assert handle.result(timeout=60) == 3
    record = handle.record()
    assert record.state == TaskState.SUCCEEDED
    assert record.attempt == 3
    assert record.max_attempts == 4
    assert record.last_error == "DemoError: f3: run 2 of 2 planned failures"
    starts = [at for what, at in timeline(c, "f3") if what == "start"]
    assert len(starts) == 3
    for k in (1, 2):  # the wait after attempt k is at least base * 2**(k-1)
        assert starts[k] - starts[k - 1] >= base * 2 ** (k - 1)
    counters = c.store.events.counters()
    assert counters["retried"] == 2
    assert counters["succeeded"] == 1
    assert "failed" not in counters


def test_an_exception_not_listed_in_retry_on_fails_at_once(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("solo@test", slots=1)
    policy = {"max_attempts": 5, "backoff": 0.05, "retry_on": ["OSError"]}
    wrong = c.client.submit("flaky", ["v", 1, "ValueError"], retry=policy)
    listed = c.client.submit("flaky", ["o", 1, "OSError"], retry=policy)
    with pytest.raises(TaskFailedError) as exc:
        wrong.result(timeout=30)
    assert exc.value.error.startswith("ValueError: v: run 1")
    assert wrong.record().attempt == 1
    assert wrong.record().reason == "error"
    assert runs(c, "v") == 1
    assert listed.result(timeout=30) == 2  # OSError is listed: it ran again
    assert listed.record().attempt == 2


def test_a_task_that_keeps_failing_ends_failed_after_max_attempts(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("solo@test", slots=1)
    handle = c.client.submit("flaky", ["x", 99], retry={"max_attempts": 3, "backoff": 0.05})
    with pytest.raises(TaskFailedError) as exc:
        handle.result(timeout=30)
    assert "run 3 of 99" in exc.value.error
    record = handle.record()
    assert record.state == TaskState.FAILED
    assert record.attempt == 3
    assert runs(c, "x") == 3
    time.sleep(0.5)
    assert runs(c, "x") == 3, "no attempt after the last one"
    assert c.store.events.counters()["retried"] == 2


def test_a_retry_waits_out_its_backoff_then_goes_through_the_strategy_again(cluster):
    c = cluster(strategy="priority", priority_aging=0)
    c.dispatcher()
    c.worker("solo@test", slots=1)
    urgent = c.client.submit(
        "flaky", ["u", 1], priority=9, retry={"max_attempts": 2, "backoff": 1.0}
    )
    deadline = time.monotonic() + 30
    while urgent.record().attempt < 1 or urgent.status() != TaskState.PENDING:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    rest = [c.client.submit("marked_sleep", [f"l{i}", 0.4], priority=1) for i in range(5)]
    # while it waits out its backoff it is pending, but not in the dispatcher's index
    record = urgent.record()
    assert record.not_before is not None
    assert c.store.client.zscore(c.store.keys.pending, urgent.id) is None
    assert c.store.client.zscore(c.store.keys.delayed, urgent.id) == pytest.approx(
        record.not_before, abs=1e-3
    )
    assert urgent.result(timeout=30) == 2
    c.client.wait(rest, timeout=60)
    retry_start = [at for what, at in timeline(c, "u") if what == "start"][1]
    assert retry_start - next(at for what, at in timeline(c, "u")) >= 1.0
    later = [timeline(c, f"l{i}")[0][1] for i in range(5)]
    # priority 9 goes before every low-priority task still waiting when it became due
    assert sum(1 for at in later if at > retry_start) >= 2


def test_celery_self_retry_becomes_a_yardmaster_retry(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("solo@test", slots=1)
    handle = c.client.submit("flaky_celery_retry", ["c", 2, 0.3])
    assert handle.result(timeout=30) == 3
    record = handle.record()
    assert record.attempt == 3
    assert record.last_error == "DemoError: c: run 2"
    starts = [at for what, at in timeline(c, "c") if what == "start"]
    assert all(b - a >= 0.3 for a, b in itertools.pairwise(starts))
    assert "failed" not in c.store.events.counters()


def test_a_bad_retry_policy_is_refused_naming_the_field():
    with pytest.raises(InvalidInputError) as exc:
        validate_spec({"name": "flaky", "retry": {"max_attempts": 0}})
    assert exc.value.field == "retry.max_attempts"
    assert "1 to 1000" in exc.value.allowed
    with pytest.raises(InvalidInputError) as exc:
        validate_spec({"name": "flaky", "retry": {"retry_on": "OSError"}})
    assert exc.value.field == "retry.retry_on"
    with pytest.raises(InvalidInputError) as exc:
        validate_spec({"name": "flaky", "retry": {"tries": 3}})
    assert exc.value.field == "retry.tries"
    with pytest.raises(InvalidInputError) as exc:
        validate_spec({"name": "sleep", "soft_time_limit": 5, "time_limit": 2})
    assert exc.value.field == "time_limit"


def test_backoff_doubles_up_to_its_cap_and_jitter_only_stretches_it():
    policy = RetryPolicy(max_attempts=10, backoff=0.5, backoff_max=3.0, jitter=0.0)
    assert [policy.delay(k) for k in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    jittery = RetryPolicy(max_attempts=10, backoff=0.5, backoff_max=100.0, jitter=0.5)
    for k in range(1, 6):
        for _ in range(50):
            assert 0.5 * 2 ** (k - 1) <= jittery.delay(k) <= 0.75 * 2 ** (k - 1)
    assert RetryPolicy(retry_on=("OSError",)).retries(ConnectionError("x"))  # a subclass
    assert not RetryPolicy(retry_on=("OSError",)).retries(ValueError("x"))
    assert RetryPolicy(retry_on=("builtins.ValueError",)).retries(ValueError("x"))
