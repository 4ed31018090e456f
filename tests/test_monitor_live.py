"""The monitor on a real cluster: metrics against a known run, a healthy run, the CLI faces."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import pytest

from scheduler.models import TaskState
from scheduler.monitor import Monitor
from scheduler.monitor.prometheus import render

# Small windows so that anomalies could show within a short test, and the
# healthy run is judged by the very thresholds the anomaly tests trip.
TIGHT = dict(
    monitor_short_window=2.0,
    monitor_long_window=8.0,
    monitor_min_samples=5,
    monitor_stall_min=1.0,
    monitor_stall_factor=4.0,
    monitor_backlog_growth=15,
    heartbeat_interval=0.3,
    monitor_heartbeat_misses=6.0,  # 1.8 s: a loaded machine may delay a beat, not stop it
    worker_timeout=60.0,
)


def inclusive(values, q):
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def test_metrics_of_a_known_run_give_the_right_counts_and_percentiles(cluster):
    c = cluster(strategy="fifo")
    c.dispatcher()
    c.worker("known@test", slots=2)
    durations = [0.05 + 0.01 * i for i in range(20)]
    specs = [
        {"name": "sleep", "args": [d], "priority": 7 if i % 2 else 3}
        for i, d in enumerate(durations)
    ]
    specs += [{"name": "fail", "priority": 5} for _ in range(2)]
    now = time.time()
    for i in (0, 1):  # fifo runs these first: two deadlines met, two that the run alone misses
        specs[i]["deadline"] = now + 120
        specs[i + 2]["deadline"] = now + 0.02
    records = c.client.wait(c.client.submit_many(specs), timeout=60)
    assert [r.state for r in records] == [TaskState.SUCCEEDED] * 20 + [TaskState.FAILED] * 2

    snapshot = Monitor(c.store).poll()
    snap = snapshot.as_dict()
    assert snap["counters"]["succeeded"] == 20
    assert snap["counters"]["failed"] == 2
    assert snap["throughput"]["total"]["5m"] == pytest.approx(22 / 300)
    run = snap["latency"]["run"]
    assert run["by_task"]["sleep"]["count"] == 20
    assert run["by_priority"]["7"]["count"] == 10
    assert run["by_priority"]["3"]["count"] == 10
    measured = [r.runtime for r in records[:20]]
    for q in (0.5, 0.95, 0.99):
        got = run["by_task"]["sleep"][f"p{round(q * 100)}"]
        # exactly the quantile of what the workers measured ...
        assert got == pytest.approx(inclusive(measured, q), abs=2e-6)
        # ... which is the known duration plus a little overhead
        assert inclusive(durations, q) <= got + 1e-3 <= inclusive(durations, q) + 0.1
    waits = [r.started_at - r.submitted_at for r in records]
    assert snap["latency"]["wait"]["all"]["p95"] == pytest.approx(inclusive(waits, 0.95), abs=2e-6)
    assert snap["failures"]["long"] == {"finished": 22, "failed": 2, "ratio": pytest.approx(2 / 22)}
    # every run after the first learned from an EMA: 19 prediction samples
    assert snap["prediction"]["by_task"]["sleep"]["samples"] == 19
    assert snap["slots"] == {"total": 2, "busy": 0, "free": 2, "utilization": 0.0}
    assert snap["deadlines"] == {"finished": 4, "missed": 2, "miss_ratio": 0.5}
    text = render(snapshot)
    assert 'ym_tasks_total{event="succeeded"} 20' in text
    assert 'ym_task_run_seconds_count{task="sleep"} 20' in text
    assert 'ym_worker_slots{worker="known@test"} 2' in text
    assert "ym_deadline_miss_ratio 0.5" in text


def test_a_healthy_run_raises_no_anomaly_and_the_probe_passes(cluster):
    c = cluster(strategy="fifo", **TIGHT)
    c.dispatcher()
    c.worker("steady@test", slots=2)
    mon = Monitor(c.store)
    seen: set[str] = set()
    handles = []
    for _ in range(8):  # a steady trickle: the backlog never grows, nothing fails
        handles += c.client.submit_many([{"name": "sleep", "args": [0.1]} for _ in range(4)])
        for _ in range(3):
            seen |= {a.id for a in mon.poll().anomalies}
            time.sleep(0.1)
    c.client.wait(handles, timeout=60)
    snap = mon.poll().as_dict()
    seen |= {a["id"] for a in snap["anomalies"]}
    assert seen == set(), f"a healthy run raised {seen}"
    assert snap["health"]["status"] == "healthy", snap["health"]
    assert snap["counters"]["succeeded"] == 32

    cli = [sys.executable, "-m", "scheduler.cli"]
    probe = subprocess.run(
        [*cli, "health", "--json", "--sample", "0.2"],
        env=c.env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert json.loads(probe.stdout)["status"] == "healthy"

    watch = subprocess.run(
        [*cli, "status", "--watch", "--count", "2", "--interval", "0.2"],
        env={**c.env(), "COLUMNS": "160"}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert watch.returncode == 0, watch.stderr
    for text in ("steady@test", "0/2", "backlog", "throughput", "anomalies (0)", "healthy"):
        assert text in watch.stdout, (text, watch.stdout)
