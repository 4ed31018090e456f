"""Soft and hard time limits, and cancelling tasks pending, dispatched and running."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from scheduler.errors import TaskCancelledError, TaskFailedError
from scheduler.models import TaskState


def notes(c, key: str) -> list[str]:
    return [item.split("@")[0] for item in c.store.client.lrange(c.store.keys.demo(key), 0, -1)]


def wait_state(handle, state: TaskState, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while handle.status() != state:
        assert time.monotonic() < end, f"{handle} never became {state}"
        time.sleep(0.01)


def test_a_soft_time_limit_raises_inside_the_task_and_frees_the_slot(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("solo@test", slots=1)
    slow = c.client.submit("marked_sleep", ["soft", 10], soft_time_limit=0.5, time_limit=8)
    after = c.client.submit("noop")
    with pytest.raises(TaskFailedError) as exc:
        slow.result(timeout=30)
    assert exc.value.error.startswith("SoftTimeLimitExceeded")
    record = slow.record()
    assert record.reason == "timeout"
    assert (record.runtime or 99) < 8  # interrupted long before its 10 s, and before the hard limit
    assert notes(c, "soft") == ["start", "soft_timeout"]  # raised inside the body, no "end"
    assert after.result(timeout=30) is None  # the next task ran on the freed slot
    assert c.store.workers.load()[0].inflight == 0


def test_a_hard_time_limit_kills_the_run_and_the_worker_records_it(cluster):
    c = cluster()
    c.dispatcher()
    worker = c.worker("solo@test", slots=1)
    children = {p.pid for p in psutil.Process(worker.pid).children(recursive=True)}
    slow = c.client.submit("marked_sleep", ["hard", 10], time_limit=0.8)
    after = c.client.submit("marked_sleep", ["next", 0.1])
    with pytest.raises(TaskFailedError) as exc:
        slow.result(timeout=30)
    assert "hard time limit (0.8s) exceeded" in exc.value.error
    record = slow.record()
    assert record.state == TaskState.FAILED
    assert record.reason == "timeout"
    assert after.result(timeout=30) == 0.1  # the next task ran on the freed slot
    assert notes(c, "hard") == ["start"]
    assert notes(c, "next") == ["start", "end"]
    now = {p.pid for p in psutil.Process(worker.pid).children(recursive=True)}
    assert now != children, "the pool process running the task was replaced"
    assert c.store.workers.load()[0].inflight == 0
    assert worker.poll() is None


def test_a_pending_task_waiting_out_a_retry_backoff_cancels_at_once(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("solo@test", slots=1)
    handle = c.client.submit("flaky", ["bk", 5], retry={"max_attempts": 5, "backoff": 30})
    end = time.monotonic() + 30
    while handle.record().attempt < 1 or handle.status() != TaskState.PENDING:
        assert time.monotonic() < end
        time.sleep(0.01)
    assert handle.cancel() is True
    record = handle.record()
    assert record.state == TaskState.CANCELLED
    assert record.reason == "cancelled"
    assert c.store.client.zscore(c.store.keys.delayed, handle.id) is None
    assert c.store.pending.counts() == {}


def test_a_dispatched_task_that_has_not_started_is_cancelled_and_never_runs(cluster):
    c = cluster()
    c.dispatcher()
    worker = c.worker("frozen@test", slots=1)
    frozen = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(recursive=True)]
    for proc in frozen:
        os.kill(proc.pid, signal.SIGSTOP)  # the worker cannot take its message
    # A BRPOP the worker sent before it froze would still pop the message into its
    # socket; kombu's BRPOP gives up after 1 s, so wait until Redis holds no blocked
    # BRPOP (a slow machine may take longer than that), and the message stays queued.
    end = time.monotonic() + 30
    while any(
        client["cmd"] == "brpop" and "b" in client["flags"]
        for client in c.store.client.client_list()
    ):
        assert time.monotonic() < end, "the frozen worker's BRPOP never timed out"
        time.sleep(0.1)
    try:
        handle = c.client.submit("marked_sleep", ["never", 0.1])
        wait_state(handle, TaskState.DISPATCHED)
        assert handle.cancel() is True
        assert handle.status() == TaskState.CANCELLED
    finally:
        for proc in frozen:
            os.kill(proc.pid, signal.SIGCONT)
    after = c.client.submit("marked_sleep", ["after", 0.1])
    assert after.result(timeout=30) == 0.1  # the worker took the cancelled delivery and moved on
    assert notes(c, "never") == [], "the cancelled delivery's body never ran"
    with pytest.raises(TaskCancelledError):
        handle.result(timeout=1)
    assert c.store.events.counters()["cancelled"] == 1


def test_a_running_task_is_terminated_on_request_and_its_body_never_completes(cluster):
    c = cluster()
    c.dispatcher()
    worker = c.worker("solo@test", slots=1)
    handle = c.client.submit("marked_sleep", ["term", 2.0])
    after = c.client.submit("marked_sleep", ["after", 0.1])
    wait_state(handle, TaskState.RUNNING)
    while notes(c, "term") != ["start"]:
        time.sleep(0.01)
    assert handle.cancel(terminate=True) is True
    record = handle.record()
    assert record.state == TaskState.CANCELLED
    assert record.reason == "terminated"
    assert record.cancel_requested
    assert after.result(timeout=30) == 0.1  # the slot was freed for the next task
    time.sleep(2.5)  # past the time the body would have finished
    assert notes(c, "term") == ["start"], "the terminated body never reached its end"
    assert handle.status() == TaskState.CANCELLED
    assert worker.poll() is None
    assert c.store.workers.load()[0].inflight == 0


def test_a_cooperative_task_stops_when_asked_to_cancel(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("solo@test", slots=1)
    handle = c.client.submit("cooperative_sleep", ["coop", 20])
    wait_state(handle, TaskState.RUNNING)
    assert handle.cancel() is False  # flagged; it is the task's own check that stops it
    with pytest.raises(TaskCancelledError) as exc:
        handle.result(timeout=30)
    assert exc.value.state == "cancelled"
    record = handle.record()
    assert record.reason == "cancelled"
    assert (record.runtime or 99) < 20
    assert notes(c, "coop") == ["start"]


def test_submit_with_a_retry_policy_and_cancel_on_the_command_line(cluster):
    c = cluster()
    cli = [sys.executable, "-m", "scheduler.cli"]
    run = functools.partial(subprocess.run, env=c.env(), capture_output=True, text=True, timeout=60)
    policy = '{"max_attempts": 2, "backoff": 0.5}'
    out = run([*cli, "submit", "sleep", "1", "--retry", policy, "--time-limit", "5"], check=True)
    task_id = out.stdout.strip()
    record = c.client.handle(task_id).record()
    assert record.state == TaskState.PENDING  # no worker: it waits
    assert record.max_attempts == 2
    out = run([*cli, "cancel", task_id], check=True)
    assert out.stdout.strip() == f"{task_id} cancelled (cancelled)"
    bad = run([*cli, "submit", "sleep", "1", "--retry", '{"max_attempts": -1}'])
    assert bad.returncode == 2
    assert "retry.max_attempts=-1 is not accepted" in bad.stderr


def test_cancel_on_the_command_line_flags_a_running_task_says_what_follows_and_exits_0(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("solo@test", slots=1)
    handle = c.client.submit("cooperative_sleep", ["flagged", 20])
    wait_state(handle, TaskState.RUNNING)
    cli = [sys.executable, "-m", "scheduler.cli", "cancel", handle.id, "--flag"]
    out = subprocess.run(cli, env=c.env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    first, then = out.stdout.splitlines()
    assert first == f"{handle.id} running: flagged for cancellation"
    assert "self.check_cancelled()" in then
    assert "--terminate" in then
    with pytest.raises(TaskCancelledError):  # the body's own check ends it, as announced
        handle.result(timeout=30)
