"""`yardmaster up`'s stack with Flower and the monitor: both see a real run.

Flower needs task events from the workers (the stack starts them with
``--task-events`` when Flower is on), an explicit unauthenticated-API flag
(Flower 2.2 refuses its API otherwise) and to start after the workers, since
its /api/workers serves what it learned when it started.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request

from scheduler.client import Client
from scheduler.local_cluster import LocalCluster
from scheduler.models import TaskState
from scheduler.settings import load_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as reply:
        return reply.read().decode()


def test_flower_lists_yardmasters_workers_and_tasks_and_the_monitor_serves_metrics(
    redis_server, tmp_path
):
    settings = load_settings(
        redis_url=redis_server.url, namespace="flowerup", flower_port=free_port()
    )
    mport = free_port()
    with LocalCluster(settings, log_dir=tmp_path) as stack:
        stack.start(workers=2, slots=2, flower=True, monitor_port=mport)
        client = Client(stack.store, known_tasks=["noop", "sleep", "fail"])
        handles = client.submit_many([{"name": "sleep", "args": [0.02]} for _ in range(10)])
        handles.append(client.submit("fail"))
        records = client.wait(handles, timeout=60)
        assert [r.state for r in records] == [TaskState.SUCCEEDED] * 10 + [TaskState.FAILED]
        names = {w.name for w in stack.store.workers.load()}
        assert len(names) == 2

        flower = f"http://127.0.0.1:{settings.flower_port}"
        workers = json.loads(get(f"{flower}/api/workers"))  # no refresh: what Flower holds
        assert set(workers) == names
        for info in workers.values():
            assert info["stats"]["pool"]["max-concurrency"] == 2
        tasks: dict[str, dict] = {}
        for _ in range(50):  # events arrive asynchronously
            tasks = json.loads(get(f"{flower}/api/tasks"))
            if len(tasks) >= len(handles):
                break
        by_id = {h.id: tasks.get(h.id) for h in handles}
        assert all(by_id.values()), f"Flower misses {[k for k, v in by_id.items() if not v]}"
        assert {t["state"] for t in by_id.values()} == {"SUCCESS", "FAILURE"}
        assert {t["worker"] for t in by_id.values()} <= names
        assert by_id[handles[-1].id]["state"] == "FAILURE"

        wanted = ['ym_tasks_total{event="succeeded"} 10', 'ym_tasks_total{event="failed"} 1']
        deadline = time.monotonic() + 30  # a snapshot is up to YM_MONITOR_INTERVAL old
        while True:
            metrics = get(f"http://127.0.0.1:{mport}/metrics")
            if all(line in metrics for line in wanted) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        counted = [line for line in metrics.splitlines() if line.startswith("ym_tasks_total")]
        assert all(line in metrics for line in wanted), counted
        for name in names:
            assert f'ym_worker_slots{{worker="{name}"}} 2' in metrics
        health = json.loads(get(f"http://127.0.0.1:{mport}/monitor/health"))
        assert health["status"] in ("healthy", "degraded")
        assert "<title>yardmaster dashboard</title>" in get(f"http://127.0.0.1:{mport}/dashboard")
