"""The monitor's pure parts: metrics, anomaly rules, the tracker, health, Prometheus, history."""

from __future__ import annotations

import json
import statistics

import pytest
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from prometheus_client.parser import text_string_to_metric_families

from scheduler.monitor import metrics as m
from scheduler.monitor.anomalies import (
    Anomaly,
    Observation,
    Tracker,
    WorkerView,
    backlog_growth,
    detect,
    failure_spike,
    prediction_drift,
    stalled_workers,
    throughput_drop,
)
from scheduler.monitor.health import health
from scheduler.monitor.history import History
from scheduler.monitor.prometheus import render
from scheduler.monitor.snapshot import Snapshot
from scheduler.settings import load_settings
from scheduler.store import RunningTask

S = load_settings(
    monitor_short_window=10,
    monitor_long_window=40,
    monitor_min_samples=5,
    heartbeat_interval=1.0,
    monitor_stall_min=2.0,
)


def ev(i, *, name="t", state="succeeded", fin=100.0, run=0.1, wait=0.0, prio=5, deadline=None,
       expected=None, worker="w1"):  # fmt: skip
    start = fin - run
    return m.FinishEvent(
        id=f"id{i}", name=name, state=state, worker=worker, priority=prio,
        submitted_at=start - wait, started_at=start, finished_at=fin, runtime=run,
        deadline=deadline, expected=expected, wait=wait if state in ("succeeded", "failed") else None,
    )  # fmt: skip


def test_percentiles_are_the_inclusive_quantiles_of_known_values():
    values = [0.01 * k for k in range(1, 101)]
    expected = statistics.quantiles(values, n=100, method="inclusive")
    s = m.summarize(values)
    for q in (50, 95, 99):
        assert s[f"p{q}"] == pytest.approx(expected[q - 1])
    assert s["count"] == 100
    assert s["sum"] == pytest.approx(50.5)
    assert s["p50"] == pytest.approx(0.505)
    assert s["p99"] == pytest.approx(0.9901)
    assert m.summarize([])["p50"] is None


def test_latency_is_split_by_task_and_priority_and_throughput_by_window():
    events = [ev(i, name="a", run=0.1 * (i + 1), wait=1.0, prio=7, fin=100 - i) for i in range(10)]
    events += [ev(10 + i, name="b", run=2.0, wait=0.5, prio=3, fin=39.5) for i in range(3)]
    labels = m.label_names(events, 10)
    lat = m.latency(events, labels)
    assert lat["run"]["by_task"]["a"]["count"] == 10
    assert lat["run"]["by_task"]["a"]["p50"] == pytest.approx(0.55)
    assert lat["run"]["by_priority"]["3"]["p95"] == pytest.approx(2.0)
    assert lat["wait"]["by_priority"]["7"]["p50"] == pytest.approx(1.0)
    assert lat["wait"]["all"]["count"] == 13
    window = m.EventWindow(300.0)
    window.add(sorted(events, key=lambda e: e.finished_at))
    thr = m.throughput(window, 100.0, labels)
    assert thr["total"]["1s"] == 1.0  # only the event at 100.0 is within (99, 100]
    assert thr["total"]["1m"] == pytest.approx(10 / 60)  # b finished 60.5 s ago: not counted
    assert thr["total"]["5m"] == pytest.approx(13 / 300)
    assert thr["by_task"]["b"]["5m"] == pytest.approx(3 / 300)


def test_the_window_keeps_the_newest_events_but_counts_every_one_for_throughput():
    window = m.EventWindow(300.0, max_events=100)
    window.add(ev(i, fin=50 + i * 0.01) for i in range(1000))  # 100 tasks/s for 10 s
    window.prune(60.0)
    assert len(window) == 100
    assert m.throughput(window, 60.0, {"t": "t"})["total"]["1m"] == pytest.approx(1000 / 60)
    window.prune(400.0)
    assert len(window) == 0
    assert window.counts(0.0) == {}


def test_task_labels_are_capped_so_cardinality_stays_bounded():
    events = [ev(i, name=f"n{i % 7}") for i in range(70)] + [ev(99, name="n0")]
    labels = m.label_names(events, 3)
    assert sorted(set(labels.values())) == ["_other", "n0", "n1", "n2"]


def test_deadline_misses_prediction_error_failures_and_cache_rate():
    events = [
        ev(1, fin=10, deadline=11),
        ev(2, fin=12, deadline=11),
        ev(3, state="expired", fin=5, deadline=4),
        ev(4, run=0.3, expected=0.2, name="p"),
        ev(5, run=0.1, expected=0.2, name="p"),
        ev(6, state="failed"),
    ]
    assert m.deadlines(events) == {"finished": 3, "missed": 2, "miss_ratio": pytest.approx(2 / 3)}
    pred = m.prediction(events, m.label_names(events, 10), floor=0.05)
    assert pred["by_task"]["p"]["samples"] == 2
    assert pred["by_task"]["p"]["mean_abs_error_s"] == pytest.approx(0.1)
    assert pred["by_task"]["p"]["mean_rel_error"] == pytest.approx(0.5)
    assert m.failures(events)["failed"] == 1
    assert m.cache_rate({"submitted": 3}) is None
    assert m.cache_rate({"cache_hits": 3, "cache_misses": 1})["hit_ratio"] == 0.75


def test_an_event_is_parsed_from_the_stream_fields():
    e = m.FinishEvent.from_fields(
        {"id": "x", "name": "sleep", "state": "succeeded", "worker": "w", "priority": "7",
         "submitted_at": "1.5", "started_at": "2.0", "finished_at": "2.5", "runtime": "0.4",
         "deadline": "", "expected": "0.3"}
    )  # fmt: skip
    assert (e.priority, e.wait, e.deadline) == (7, 0.5, None)
    assert e.prediction_error == pytest.approx(0.1)
    expired = m.FinishEvent.from_fields({"id": "y", "state": "expired", "finished_at": "3"})
    assert expired.wait is None
    assert expired.runtime is None


def obs(**kw):
    base = dict(now=100.0, short=[], base=[], workers=[], running=[], durations={}, backlog=[])
    base.update(kw)
    return Observation(**base)


def test_a_silent_worker_and_a_task_far_past_its_ema_are_stalled_workers():
    workers = [WorkerView("quiet", 2, 1, 3.5), WorkerView("ok", 2, 1, 0.2)]
    assert [a.severity for a in stalled_workers(obs(workers=workers), S)] == ["critical"]
    running = [RunningTask("t1", "sleep", "ok", 90.0, "sleep", None)]
    slow = stalled_workers(obs(workers=workers[1:], running=running, durations={"sleep": 1.0}), S)
    assert len(slow) == 1
    assert slow[0].tasks == ("t1",)
    assert slow[0].workers == ("ok",)
    assert "10.0x its EMA" in slow[0].reason
    running = [RunningTask("t1", "sleep", "ok", 99.0, "sleep", None)]  # 1 s: under stall_min
    assert (
        stalled_workers(obs(workers=workers[1:], running=running, durations={"sleep": 0.1}), S)
        == []
    )


def test_throughput_drop_needs_a_baseline_and_waiting_work():
    base = [ev(i, fin=70 + i) for i in range(20)]  # 20 in the 30 s before the short window
    short = [ev(99, fin=95)]
    assert throughput_drop(obs(short=short, base=base, backlog=[(100.0, 5)]), S)
    assert throughput_drop(obs(short=short, base=base, backlog=[(100.0, 0)]), S) == []
    assert throughput_drop(obs(short=short, base=base[:3], backlog=[(100.0, 5)]), S) == []
    steady = [ev(i, fin=91 + i * 0.1) for i in range(8)]
    assert throughput_drop(obs(short=steady, base=base, backlog=[(100.0, 5)]), S) == []


def test_failure_spike_prediction_drift_and_backlog_growth_have_thresholds():
    mixed = [ev(i, state="failed" if i < 2 else "succeeded") for i in range(10)]
    assert failure_spike(obs(short=mixed), S)[0].severity == "warning"
    assert failure_spike(obs(short=mixed[1:]), S) == []  # 1 of 9: 11%
    drift = [ev(i, name="x", run=0.5, expected=0.1) for i in range(5)]
    found = prediction_drift(obs(short=drift), S)
    assert found[0].id == "prediction_drift:x"
    assert "longer" in found[0].reason
    assert prediction_drift(obs(short=drift[:4]), S) == []  # too few samples
    calm = [ev(i, name="x", run=0.11, expected=0.1) for i in range(5)]
    assert prediction_drift(obs(short=calm), S) == []
    rising = [(90.0 + i, 10 * i) for i in range(5)]
    grown = backlog_growth(
        obs(backlog=rising, drained=(0, 8), workers=[WorkerView("w", 2, 2, 0)]), S
    )
    assert grown
    assert grown[0].severity == "warning"
    assert backlog_growth(obs(backlog=rising[::-1], drained=(0, 8)), S) == []
    burst = [(90.0, 0), (91.0, 48), (92.0, 45), (93.0, 40), (94.0, 38)]  # draining already
    assert backlog_growth(obs(backlog=burst, drained=(0, 10)), S) == []
    assert detect(obs(), S) == []


def test_the_tracker_raises_once_keeps_since_and_clears_when_the_cause_goes():
    t = Tracker()
    a = Anomaly(id="x:1", type="failure_spike", severity="warning", reason="r", recommendation="d")
    raised, cleared = t.update([a], 10.0)
    assert [r.since for r in raised] == [10.0]
    assert cleared == []
    raised, cleared = t.update([a], 11.0)
    assert raised == []
    assert t.active["x:1"].since == 10.0
    assert t.active["x:1"].last_seen == 11.0
    raised, cleared = t.update([], 12.0)
    assert [c.cleared_at for c in cleared] == [12.0]
    assert t.active == {}


def test_health_combines_components_and_anomalies_cap_the_status():
    fine = dict(prediction_error=0.1, deadline_miss_ratio=0.0, backlog=0, slots=4, busy=0,
                failure_ratio=0.0, anomalies=[], workers=2, leader=True)  # fmt: skip
    h = health(**fine)
    assert h["status"] == "healthy"
    assert h["score"] == pytest.approx(0.2 * 90 + 0.3 * 100 + 0.2 * 100 + 0.3 * 100)
    crit = Anomaly(id="s:w", type="stalled_worker", severity="critical", reason="r",
                   recommendation="d")  # fmt: skip
    assert health(**{**fine, "anomalies": [crit]})["status"] == "unhealthy"
    warn = Anomaly(id="d:x", type="prediction_drift", severity="warning", reason="r",
                   recommendation="d")  # fmt: skip
    assert health(**{**fine, "anomalies": [warn]})["status"] == "degraded"
    assert health(**{**fine, "workers": 0})["status"] == "unhealthy"
    idle_busy = health(**{**fine, "backlog": 10, "busy": 1})
    assert idle_busy["components"]["efficiency"] == 25.0


def snapshot_for_render():
    events = [ev(i, name="sleep", run=0.1 * (i + 1), prio=7, fin=100.0) for i in range(10)]
    labels = m.label_names(events, 10)
    window = m.EventWindow(300.0)
    window.add(events)
    h = health(prediction_error=None, deadline_miss_ratio=0.0, backlog=3, slots=2, busy=2,
               failure_ratio=0.0, anomalies=[], workers=1, leader=True)  # fmt: skip
    return {
        "time": 100.0,
        "dispatcher": {"leader": True, "strategy": "fifo", "strategy_switches": 2,
                       "recent_switches": []},
        "workers": [{"name": 'w"1', "slots": 2, "busy": 2, "free": 0, "utilization": 1.0,
                     "heartbeat_age": 0.5, "succeeded": 10, "failed": 0}],
        "slots": {"total": 2, "busy": 2, "free": 0, "utilization": 1.0},
        "backlog": {"total": 3, "by_priority": {"7": 3}},
        "counters": {"submitted": 13, "succeeded": 10, "strategy_switches": 2, "cache_hits": 1,
                     "odd": 4},
        "throughput": m.throughput(window, 100.0, labels),
        "latency": m.latency(events, labels),
        "deadlines": m.deadlines(events),
        "prediction": m.prediction(events, labels, 0.05),
        "failures": {"short": m.failures(events), "long": m.failures(events)},
        "cache": m.cache_rate({"cache_hits": 1}),
        "windows": {"short_s": 60.0, "long_s": 300.0},
        "anomalies": [],
        "health": h,
    }  # fmt: skip


def test_prometheus_text_parses_and_carries_the_numbers():
    data = snapshot_for_render()
    data["redis"] = {"used_bytes": 5000, "max_bytes": 10000, "ratio": 0.5}
    text = render(Snapshot.from_dict(data))
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    assert samples[("ym_tasks_total", (("event", "succeeded"),))] == 10
    assert samples[
        ("ym_task_run_seconds", (("quantile", "0.5"), ("task", "sleep")))
    ] == pytest.approx(0.55)
    assert samples[("ym_task_run_seconds_count", (("task", "sleep"),))] == 10
    assert samples[("ym_backlog_tasks", (("priority", "7"),))] == 3
    assert samples[("ym_backlog_tasks", (("priority", "0"),))] == 0
    assert samples[("ym_worker_busy_slots", (("worker", 'w"1'),))] == 2
    assert samples[("ym_strategy_switches_total", ())] == 2
    assert samples[("ym_cache_hit_ratio", ())] == 1.0
    assert samples[("ym_counter_total", (("name", "odd"),))] == 4
    assert samples[("ym_redis_memory_used_bytes", ())] == 5000
    assert samples[("ym_redis_memory_max_bytes", ())] == 10000
    assert "ym_redis_memory_used_bytes" not in render(Snapshot.from_dict(snapshot_for_render()))
    assert families["ym_tasks"].type == "counter"
    assert families["ym_wait_seconds"].type == "summary"


def test_the_snapshot_json_is_byte_for_byte_the_object_the_dashboard_has_always_read():
    data = snapshot_for_render()
    gone = Anomaly(id="s:w", type="stalled_worker", severity="critical", reason="r",
                   recommendation="d", workers=("w",), since=90.0, last_seen=95.0,
                   cleared_at=96.0)  # fmt: skip
    data["anomalies"] = []
    data["cleared_anomalies"] = [gone.to_json()]
    data["health"] = data.pop("health")  # the monitor's order: health, Redis memory, poll cost
    data["redis"] = {"used_bytes": 2_000_000, "max_bytes": 0, "ratio": None}
    data["monitor"] = {"poll_seconds": 0.0123, "polls": 7, "events_in_window": 10}
    # what the monitor served before its snapshot was typed: the dict through FastAPI
    served = JSONResponse(jsonable_encoder(data)).body
    snapshot = Snapshot.from_dict(data)
    assert snapshot.to_json() == served
    assert snapshot.cleared_anomalies[0].workers == ["w"]
    assert snapshot.latency.run.by_task["sleep"].count == 10
    assert snapshot.redis is not None
    assert snapshot.redis.used_bytes == 2_000_000
    # a Redis that refuses INFO: the memory figures are null, the rest is served
    data["redis"] = None
    assert Snapshot.from_dict(data).to_json() == JSONResponse(jsonable_encoder(data)).body


def test_history_rotates_by_size_and_keeps_n_files(tmp_path):
    path = tmp_path / "h" / "monitor.jsonl"
    hist = History(path, max_bytes=10_000, keep=2)
    for i in range(100):
        hist.write("metrics", float(i), {"pad": "x" * 300})
    rotated = sorted(p.name for p in path.parent.iterdir())
    assert rotated == ["monitor.jsonl", "monitor.jsonl.1", "monitor.jsonl.2"]
    assert all(p.stat().st_size <= 10_000 for p in path.parent.iterdir())
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[-1]["time"] == 99.0
    assert lines[-1]["kind"] == "metrics"


def test_monitor_settings_are_validated_with_a_clear_error():
    from scheduler.errors import SettingsError

    with pytest.raises(
        SettingsError, match=r"YM_MONITOR_LONG_WINDOW='50'.*YM_MONITOR_SHORT_WINDOW"
    ):
        load_settings({"YM_MONITOR_SHORT_WINDOW": "100", "YM_MONITOR_LONG_WINDOW": "50"})
    with pytest.raises(SettingsError, match="YM_MONITOR_DROP_RATIO"):
        load_settings({"YM_MONITOR_DROP_RATIO": "1.5"})
