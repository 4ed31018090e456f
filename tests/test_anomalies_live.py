"""Each anomaly type, caused on a real cluster, is raised with its reason and clears after.

The healthy counterpart (no anomaly under the same thresholds) is in
test_monitor_live.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from scheduler.monitor import Monitor
from tests.test_flower_and_up_monitor import free_port
from tests.test_monitor_live import TIGHT


def until(mon, check, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = mon.poll().as_dict()
        found = check(snap)
        if found:
            return snap, found
        time.sleep(0.1)
    raise AssertionError(f"{what} not seen within {timeout}s; last anomalies: {snap['anomalies']}")


def until_http(url, check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                code, body = reply.status, reply.read().decode()
        except urllib.error.HTTPError as exc:
            code, body = exc.code, exc.read().decode()
        except OSError:
            code, body = 0, ""
        if code and check(code, body):
            return code, body
        assert time.monotonic() < deadline, f"{url}: last answer {code} {body[:300]}"
        time.sleep(0.2)


def of_type(kind):
    return lambda snap: [a for a in snap["anomalies"] if a["type"] == kind]


def test_a_worker_whose_heartbeat_stops_is_stalled_and_the_probe_fails(cluster):
    c = cluster(**TIGHT)
    c.dispatcher()
    victim = c.worker("frozen@test", slots=1)
    port = free_port()
    c.spawn("monitor", [sys.executable, "-m", "scheduler.cli", "monitor", "--port", str(port)])
    mon = Monitor(c.store)
    assert mon.poll().anomalies == []
    os.kill(victim.pid, signal.SIGSTOP)  # the main process, with its heartbeat thread
    try:
        snap, (a,) = until(mon, of_type("stalled_worker"), what="stalled worker")
        assert a["severity"] == "critical"
        assert a["workers"] == ["frozen@test"]
        assert "no heartbeat from frozen@test" in a["reason"]
        assert a["recommendation"]
        assert a["id"] == "stalled_worker:frozen@test"
        assert snap["health"]["status"] == "unhealthy"
        # the HTTP faces (a `yardmaster monitor` process) say the same
        base = f"http://127.0.0.1:{port}"
        _, health = until_http(base + "/monitor/health", lambda code, _: code == 503)
        assert json.loads(health)["status"] == "unhealthy"
        _, body = until_http(base + "/monitor/anomalies", lambda _, b: json.loads(b)["active"])
        assert [x["id"] for x in json.loads(body)["active"]] == [a["id"]]
        _, metrics = until_http(base + "/metrics", lambda _, b: True)
        assert 'ym_anomalies{type="stalled_worker",severity="critical"} 1' in metrics
        assert 'ym_health_status{status="unhealthy"} 1' in metrics
        probe = subprocess.run(
            [sys.executable, "-m", "scheduler.cli", "health", "--json", "--sample", "0.1"],
            env=c.env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert probe.returncode == 1, probe.stdout + probe.stderr
        assert json.loads(probe.stdout)["anomalies"][0]["type"] == "stalled_worker"
    finally:
        os.kill(victim.pid, signal.SIGCONT)
    snap, _ = until(mon, lambda s: not s["anomalies"], what="the stall clearing")
    assert snap["cleared_anomalies"][0]["id"] == "stalled_worker:frozen@test"


def test_a_task_running_far_past_its_ema_stalls_its_worker_until_it_ends(cluster):
    c = cluster(**TIGHT)
    c.dispatcher()
    c.worker("slow@test", slots=1)
    c.client.wait(c.client.submit_many([{"name": "sleep", "args": [0.1]}] * 3), timeout=60)
    mon = Monitor(c.store)
    slow = c.client.submit("sleep", [4.0])
    _, (a,) = until(mon, of_type("stalled_worker"), what="slow task")
    assert a["severity"] == "warning"
    assert a["tasks"] == [slow.id]
    assert a["workers"] == ["slow@test"]
    assert "x its EMA" in a["reason"]
    slow.result(timeout=60)
    until(mon, lambda s: not s["anomalies"], what="the slow task's anomaly clearing")


def test_injected_failures_raise_a_failure_spike(cluster, tmp_path):
    c = cluster(**TIGHT)
    c.dispatcher()
    c.worker("flaky@test", slots=2)
    history = tmp_path / "history" / "monitor.jsonl"
    mon = Monitor.from_settings(c.store, str(history))
    specs = [{"name": "fail"}] * 4 + [{"name": "noop"}] * 4
    c.client.wait(c.client.submit_many(specs), timeout=60)
    _, (a,) = until(mon, of_type("failure_spike"), what="failure spike")
    assert a["severity"] == "critical"  # 4 of 8 failed
    assert "4 of 8 runs failed" in a["reason"]
    assert a["tasks"] == ["fail"]
    assert a["workers"] == ["flaky@test"]
    # the spike leaves the short window: the anomaly clears
    until(mon, lambda s: not of_type("failure_spike")(s), what="failure spike clearing")
    lines = [json.loads(line) for line in history.read_text().splitlines()]
    kinds = [line["kind"] for line in lines]
    assert {"metrics", "health"} <= set(kinds)
    raised = [x for x in lines if x["kind"] == "anomaly_raised"]
    cleared = [x for x in lines if x["kind"] == "anomaly_cleared"]
    assert [x["id"] for x in raised] == [x["id"] for x in cleared] == ["failure_spike:cluster"]
    assert cleared[0]["cleared_at"] >= raised[0]["since"]


def test_slow_tasks_blocking_the_slots_while_work_waits_are_a_throughput_drop(cluster):
    c = cluster(strategy="fifo", **{**TIGHT, "monitor_stall_min": 60.0})
    c.dispatcher()
    c.worker("busy@test", slots=2)
    mon = Monitor(c.store)
    c.client.wait(c.client.submit_many([{"name": "sleep", "args": [0.05]}] * 30), timeout=60)
    mon.poll()
    blockers = c.client.submit_many([{"name": "sleep", "args": [5.0]}] * 2)
    behind = c.client.submit_many([{"name": "noop"}] * 5)
    _, (a,) = until(mon, of_type("throughput_drop"), what="throughput drop")
    assert a["severity"] in ("warning", "critical")  # the rate falls below half, then to 0

    def critical(snap):
        return [a for a in of_type("throughput_drop")(snap) if a["severity"] == "critical"]

    _, (a,) = until(mon, critical, what="nothing finishing in the short window")
    assert "5 tasks waiting" in a["reason"]
    assert a["workers"] == ["busy@test"]
    c.client.wait(blockers + behind, timeout=60)
    until(mon, lambda s: not of_type("throughput_drop")(s), what="throughput drop clearing")


def test_run_times_moving_away_from_the_ema_are_prediction_drift(cluster):
    c = cluster(**TIGHT)
    c.dispatcher()
    c.worker("drift@test", slots=1)
    mon = Monitor(c.store)
    c.client.wait(c.client.submit_many([{"name": "sleep", "args": [0.05]}] * 3), timeout=60)
    assert not of_type("prediction_drift")(mon.poll().as_dict())
    c.client.wait(c.client.submit_many([{"name": "sleep", "args": [0.4]}] * 5), timeout=60)
    _, (a,) = until(mon, of_type("prediction_drift"), what="prediction drift")
    assert a["tasks"] == ["sleep"]
    assert "longer" in a["reason"]
    until(mon, lambda s: not of_type("prediction_drift")(s), what="drift clearing")


def test_a_backlog_arriving_faster_than_it_drains_is_backlog_growth(cluster):
    c = cluster(strategy="fifo", **TIGHT)
    c.dispatcher()
    c.worker("small@test", slots=1)
    mon = Monitor(c.store)
    handles = []
    found = []
    deadline = time.monotonic() + 20
    while not found and time.monotonic() < deadline:
        handles += c.client.submit_many([{"name": "sleep", "args": [0.2]}] * 5)
        found = of_type("backlog_growth")(mon.poll().as_dict())
        time.sleep(0.1)
    assert found, "backlog growth not seen"
    (a,) = found
    assert a["workers"] == ["small@test"]
    assert "backlog grew from" in a["reason"]
    assert "add workers or slots" in a["recommendation"]
    for h in handles:
        h.cancel()
    until(mon, lambda s: not of_type("backlog_growth")(s), what="backlog growth clearing")
