"""Delay scheduling in the live dispatcher (real Redis, real worker processes).

The same strategy code as in the simulator (tests/test_affinity.py): a keyed
task whose home worker is busy waits for it up to ``YM_AFFINITY_WAIT`` after
submission, then runs on another worker.
"""

from __future__ import annotations

import time

from scheduler.models import TaskState


def _home_of(c, key: str) -> str:
    """Run one short task of ``key``; the worker it ran on (its home, now warm)."""
    [record] = c.client.wait([c.client.submit("sleep", [0.01], affinity_key=key)], timeout=30)
    assert record.worker
    return record.worker


def _busy_home(c, key: str, seconds: float):
    """A task of ``key`` that keeps its home busy for ``seconds``, once it runs."""
    blocker = c.client.submit("sleep", [seconds], affinity_key=key)
    while blocker.status() != TaskState.RUNNING:
        time.sleep(0.01)
    return blocker


def test_a_task_waits_for_its_busy_home_within_the_bound(cluster):
    c = cluster(strategy="load_balance", affinity_wait=120.0)
    c.dispatcher()
    c.worker("a@aff", slots=1)
    c.worker("b@aff", slots=1)
    home = _home_of(c, "user-1")
    blocker = _busy_home(c, "user-1", 3.0)  # longer than the default wait (1 s)
    task = c.client.submit("sleep", [0.01], affinity_key="user-1")
    done_blocker, done = c.client.wait([blocker, task], timeout=60)
    # the other worker was idle all along, yet the task waited for its home
    assert done_blocker.worker == home
    assert done.worker == home
    assert done.started_at is not None
    assert done_blocker.finished_at is not None
    assert done.started_at >= done_blocker.finished_at


def test_a_task_runs_elsewhere_once_its_wait_is_over(cluster):
    c = cluster(strategy="load_balance", affinity_wait=0.3)
    c.dispatcher()
    c.worker("a@aff", slots=1)
    c.worker("b@aff", slots=1)
    home = _home_of(c, "user-1")
    blocker = _busy_home(c, "user-1", 30.0)
    [done] = c.client.wait([c.client.submit("sleep", [0.01], affinity_key="user-1")], timeout=25)
    # its home is busy for 30 s: after its 0.3 s wait it took the idle worker
    assert done.worker is not None
    assert done.worker != home
    blocker.cancel()
