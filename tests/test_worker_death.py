"""A worker killed with SIGKILL mid-task: its task returns to pending and finishes elsewhere."""

from __future__ import annotations

import time

import psutil

from scheduler.models import TaskState


def kill_tree(pid: int) -> None:
    parent = psutil.Process(pid)
    for proc in [*parent.children(recursive=True), parent]:
        proc.kill()


def test_a_killed_workers_task_is_recovered_once_and_finishes_on_another_worker(cluster):
    c = cluster(worker_timeout=2.0, heartbeat_interval=0.5)
    c.dispatcher()
    victim = c.worker("victim@test", slots=1)
    handles = c.client.submit_many([{"name": "sleep", "args": [1.0]} for _ in range(2)])
    deadline = time.monotonic() + 30
    while not any(h.status() == TaskState.RUNNING for h in handles):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    running = next(h for h in handles if h.status() == TaskState.RUNNING)
    kill_tree(victim.pid)
    victim.wait()
    del c.procs["victim@test"]  # dead on purpose
    c.worker("rescuer@test", slots=1)

    records = c.client.wait(handles, timeout=60)
    assert [r.state for r in records] == [TaskState.SUCCEEDED, TaskState.SUCCEEDED]
    assert {r.worker for r in records} == {"rescuer@test"}
    rescued = running.record()
    assert rescued.attempt == 2, "the interrupted run was attempt 1; the recovery is attempt 2"
    assert [w.name for w in c.store.workers.load()] == ["rescuer@test"]
    counters = c.store.events.counters()
    assert counters["succeeded"] == 2
    assert counters["started"] == 3  # 2 tasks, one of them started twice
    events = c.store.client.xrange(c.store.keys.events)
    assert sorted(f["id"] for _, f in events) == sorted(h.id for h in handles)


def test_a_worker_stopped_with_sigterm_finishes_its_task_and_deregisters(cluster):
    c = cluster()
    c.dispatcher()
    worker = c.worker("leaving@test", slots=1)
    handle = c.client.submit("sleep", [0.5])
    while handle.status() != TaskState.RUNNING:
        time.sleep(0.02)
    worker.terminate()  # SIGTERM: Celery's warm shutdown
    worker.wait(timeout=30)
    assert handle.status() == TaskState.SUCCEEDED
    assert c.store.workers.load() == []
    assert not c.store.client.sismember(c.store.keys.workers, "leaving@test")
