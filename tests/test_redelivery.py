"""Celery's Redis visibility timeout cannot run a long task's body twice (celery/kombu#337)."""

from __future__ import annotations

import time

import pytest

from scheduler.models import TaskState
from tests.reliability_support import ledger_entries, wait_for


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_task_outliving_a_short_visibility_timeout_runs_its_body_once(cluster, pool):
    c = cluster(visibility_timeout=1, strategy="fifo")
    c.dispatcher()
    c.worker("long@vt", slots=2, pool=pool)  # a free second slot, ready to take a redelivery
    handle = c.client.submit("ledger", ["vt", 6.0])
    wait_for(lambda: handle.status() == TaskState.RUNNING, "running")
    unacked = c.store.client.hlen("unacked")
    assert unacked == 1, "the running task's message is held unacknowledged by kombu"

    # Two seconds on, the message is past its visibility timeout; any worker
    # that starts now restores it to its queue (kombu's restore_visible), and
    # the busy worker's free slot receives it while the first run goes on.
    time.sleep(2.0)
    c.worker("other@vt", slots=1)
    log_path = c.log_dir / "long@vt.log"
    wait_for(
        lambda: f"skipping delivery 1 of {handle.id}" in log_path.read_text(errors="replace"),
        "the redelivered message reached the worker and was skipped",
        timeout=30,
    )
    [record] = c.client.wait([handle], timeout=60)
    assert record.state == TaskState.SUCCEEDED
    assert record.attempt == 1
    assert [e[:2] for e in ledger_entries(c, "vt")] == [(handle.id, 1)]
    assert c.store.events.counters()["started"] == 1
    assert c.store.client.scard(c.store.keys.worker_tasks("long@vt")) == 0
