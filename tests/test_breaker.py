"""Circuit breakers: closed -> open -> half-open -> closed, a failed probe reopens, fail-fast mode."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from scheduler.breaker import Breaker, BreakerPolicy, BreakerState
from scheduler.errors import TaskFailedError
from scheduler.models import TaskState


def runs(c, key: str) -> int:
    return int(c.store.client.get(c.store.keys.demo(key + ":runs")) or 0)


def wait_for(predicate, what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"{what} did not happen within {timeout}s"
        time.sleep(0.02)


def breaker_state(c, name: str) -> str | None:
    rec = c.client.breakers().get(name)
    return None if rec is None else rec["state"]


def moves(c, name: str) -> list[tuple[str, str]]:
    # (a half-open breaker re-grants probes to itself if they bring no outcome in a cool-down)
    changes = [t for t in reversed(c.client.breaker_transitions()) if t["from"] != t["to"]]
    return [(t["from"], t["to"]) for t in changes if t["name"] == name]


# -- the state machine alone ---------------------------------------------------
def test_a_breaker_opens_only_past_min_calls_and_the_rate_within_its_window():
    b = Breaker("t", BreakerPolicy(failure_rate=0.5, window=10, min_calls=4, cooldown=5, probes=2))
    assert b.observe(0.0, 0, 0) is None
    assert b.observe(1.0, 1, 2) is None  # 3 calls: below min_calls
    moved = b.observe(2.0, 1, 3)  # 4 calls, 3 failed
    assert moved is not None
    assert moved.new == BreakerState.OPEN
    assert not b.admit()
    assert b.tick(6.9) is None
    assert b.tick(7.0) is not None
    assert b.state == BreakerState.HALF_OPEN
    assert [b.admit(), b.admit(), b.admit()] == [True, True, False]  # two probes
    assert b.observe(8.0, 2, 3) is None  # one of two probes succeeded
    closed = b.observe(8.5, 3, 3)
    assert closed is not None
    assert closed.new == BreakerState.CLOSED
    # the old failures are out of the new window: a success streak keeps it closed
    assert b.observe(9.0, 10, 3) is None
    # old failures leave the window: 4 failures in 10 s then 5 successes far later
    b2 = Breaker("u", BreakerPolicy(failure_rate=0.5, window=10, min_calls=4))
    b2.observe(0.0, 0, 0)
    assert b2.observe(1.0, 5, 3) is None  # 3 of 8 failed: below the rate
    assert b2.observe(30.0, 5, 5) is None  # only 2 calls in the last 10 s


def test_a_half_open_breaker_without_probe_outcomes_lets_probes_through_again():
    b = Breaker("t", BreakerPolicy(failure_rate=0.5, window=10, min_calls=1, cooldown=1))
    b.observe(0.0, 0, 0)
    b.observe(0.1, 0, 1)
    b.tick(1.1)
    assert b.admit()
    assert not b.admit()
    b.observe(1.5, 0, 1)  # the probe was cancelled: no outcome
    assert b.tick(1.9) is None
    again = b.tick(2.2)
    assert again is not None
    assert again.new == BreakerState.HALF_OPEN
    assert b.admit()


def test_a_failed_probe_opens_the_breaker_again():
    b = Breaker("t", BreakerPolicy(failure_rate=0.5, window=10, min_calls=1, cooldown=1))
    b.observe(0.0, 0, 0)
    assert b.observe(0.1, 0, 1) is not None
    assert b.tick(1.2) is not None
    assert b.admit()
    reopened = b.observe(1.5, 0, 2)
    assert reopened is not None
    assert (reopened.old, reopened.new) == (
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
    )


# -- live ------------------------------------------------------------------------
def test_an_open_breaker_holds_tasks_then_probes_reopens_on_failure_and_closes_on_success(cluster):
    c = cluster(breaker_min_calls=3, breaker_failure_rate=0.5, breaker_cooldown=1.5)
    c.dispatcher()
    c.worker("solo@test", slots=1)
    # runs 1-4 of "svc" fail, run 5 succeeds
    first = [c.client.submit("flaky", ["svc", 4]) for _ in range(3)]
    c.client.wait(first, timeout=30)
    wait_for(lambda: breaker_state(c, "flaky") == "open", "the breaker opening")
    assert runs(c, "svc") == 3

    probe, waiting = c.client.submit("flaky", ["svc", 4]), c.client.submit("flaky", ["svc", 4])
    other = c.client.submit("noop")  # other names are not held
    assert other.result(timeout=30) is None
    time.sleep(0.5)  # well inside the cool-down: nothing of "flaky" may run
    assert probe.status() == TaskState.PENDING
    assert waiting.status() == TaskState.PENDING
    assert runs(c, "svc") == 3

    # half-open: one probe (the earlier submission) runs and fails -> open again
    with pytest.raises(TaskFailedError):
        probe.result(timeout=30)
    wait_for(lambda: ("half_open", "open") in moves(c, "flaky"), "the probe reopening it")
    assert waiting.status() == TaskState.PENDING
    assert runs(c, "svc") == 4
    # next cool-down: the other task is the probe, succeeds, and closes the breaker
    assert waiting.result(timeout=30) == 5
    wait_for(lambda: breaker_state(c, "flaky") == "closed", "the breaker closing")
    assert moves(c, "flaky") == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert c.client.submit("flaky", ["svc", 4]).result(timeout=30) == 6  # closed: runs freely

    cli = [sys.executable, "-m", "scheduler.cli", "breaker", "--json"]
    out = subprocess.run(cli, env=c.env(), capture_output=True, text=True, timeout=60, check=True)
    shown = json.loads(out.stdout)
    assert shown["breakers"]["flaky"]["state"] == "closed"
    assert shown["transitions"][0]["to"] == "closed"
    assert len(shown["transitions"]) >= 5


def test_in_fail_mode_an_open_breaker_fails_tasks_fast_without_running_them(cluster):
    c = cluster(breaker_min_calls=3, breaker_mode="fail", breaker_cooldown=60)
    c.dispatcher()
    c.worker("solo@test", slots=1)
    c.client.wait([c.client.submit("flaky", ["down", 99]) for _ in range(3)], timeout=30)
    wait_for(lambda: breaker_state(c, "flaky") == "open", "the breaker opening")
    rejected = [c.client.submit("flaky", ["down", 99]) for _ in range(4)]
    records = c.client.wait(rejected, timeout=30)
    assert [r.state for r in records] == [TaskState.FAILED] * 4
    assert {r.reason for r in records} == {"breaker_open"}
    assert all("circuit breaker" in (r.error or "") for r in records)
    assert {r.attempt for r in records} == {0}, "none was ever dispatched"
    assert runs(c, "down") == 3
    assert c.client.breakers()["flaky"]["mode"] == "fail"


def test_tasks_an_open_breaker_holds_are_known_to_the_dispatchers_census(cluster):
    # The dispatcher compares Redis's pending count with what it knows every
    # refresh; tasks an open breaker holds back are pending in Redis and known
    # here, so no "inbox entry was lost" alarm (and no resync) may follow.
    c = cluster(breaker_min_calls=3, breaker_cooldown=60, heartbeat_interval=0.2)
    c.dispatcher()
    c.worker("solo@test", slots=1)
    c.client.wait([c.client.submit("flaky", ["down", 99]) for _ in range(3)], timeout=30)
    wait_for(lambda: breaker_state(c, "flaky") == "open", "the breaker opening")
    held = [c.client.submit("flaky", ["down", 99]) for _ in range(3)]
    assert c.client.submit("noop").result(timeout=30) is None  # the held ones were seen by then
    # many refreshes (0.2 s each) while the tasks are held
    beats = c.store.workers.load()[0].heartbeat
    wait_for(lambda: c.store.workers.load()[0].heartbeat > beats + 1.5, "eight heartbeats")
    assert [h.status() for h in held] == [TaskState.PENDING] * 3
    log = (c.log_dir / "dispatcher.log").read_text()
    assert "breaker flaky: closed -> open" in log
    assert "inbox entry was lost" not in log, log[-2000:]
