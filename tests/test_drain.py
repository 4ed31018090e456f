"""Graceful shutdown: a worker on SIGTERM takes no new work, drains, and hands back the rest."""

from __future__ import annotations

from scheduler.models import TaskState
from tests.reliability_support import ledger_entries, wait_for


def test_a_sigtermed_worker_finishes_short_work_and_hands_back_what_outlasts_the_drain(cluster):
    c = cluster(drain_timeout=2.0, strategy="fifo", handoff=True)
    c.dispatcher()
    leaving = c.worker("leaving@drain", slots=2)
    short = c.client.submit("ledger", ["dr", 0.8])
    long = c.client.submit("ledger", ["dr", 8.0])
    wait_for(lambda: {short.status(), long.status()} == {TaskState.RUNNING}, "both running")
    waiting = c.client.submit_many([{"name": "ledger", "args": ["dr"]} for _ in range(6)])

    leaving.terminate()  # SIGTERM
    wait_for(
        lambda: c.store.client.hget(c.store.keys.worker("leaving@drain"), "slots") == "0",
        "slots closed",
    )
    # Draining: the short task finishes; nothing new is given to this worker.
    assert c.client.wait([short], timeout=30)[0].state == TaskState.SUCCEEDED
    assert short.record().worker == "leaving@drain"
    assert all(h.status() == TaskState.PENDING for h in waiting)

    # The long one outlasts the drain: the worker stops it and hands it back.
    assert leaving.wait(timeout=60) is not None
    del c.procs["leaving@drain"]
    assert long.status() == TaskState.PENDING, "the 8 s task was cut at the 2 s drain"
    assert long.id not in {e[0] for e in ledger_entries(c, "dr")}
    assert c.store.workers.load() == []

    c.worker("taker@drain", slots=2)
    records = c.client.wait([long, *waiting], timeout=120)
    assert {r.state for r in records} == {TaskState.SUCCEEDED}
    assert {r.worker for r in records} == {"taker@drain"}
    assert long.record().attempt == 2
    entries = ledger_entries(c, "dr")
    assert sorted(e[0] for e in entries) == sorted(h.id for h in [short, long, *waiting])
