"""yardmaster trace export: the workload file of what ran on a live cluster.

Real redis-server, dispatcher and Celery worker processes (the Cluster fixture).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scheduler import replay as rp
from scheduler.cli.trace import parse_when
from scheduler.errors import InvalidInputError
from scheduler.simulator import metrics
from scheduler.workload import load_workload

from .conftest import ROOT

EXAMPLES = ROOT / "examples" / "workloads"
CLI = [sys.executable, "-m", "scheduler.cli"]


def export(c, out, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "trace", "export", "--out", str(out), *args],
        env=c.env(), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("workload", "strategy"), [("mixed", "priority"), ("bursty", "sjf"), ("deadlines", "edf")]
)
def test_a_trace_exported_from_a_live_run_replays_in_the_simulator_within_ten_percent(
    cluster, tmp_path, workload, strategy
):
    c = cluster(strategy=strategy)
    c.dispatcher()
    c.worker("w1@test", slots=1)
    c.worker("w2@test", slots=1)
    rows = load_workload(EXAMPLES / f"{workload}.jsonl")
    began = c.store.server_time()
    run = rp.replay(c.client, rows, strategy, timeout=120)
    live = run.metrics()
    out = tmp_path / "trace.jsonl"
    done = export(c, out, "--since", f"{began:.6f}")
    assert done.returncode == 0, done.stderr
    assert f"wrote {len(rows)} tasks" in done.stderr
    trace = load_workload(out)
    header = out.read_text().splitlines()[0]
    assert header.startswith("# yardmaster trace export: ")
    overhead = float(header.split("dispatch overhead (mean) ")[1].split()[0])
    # Row by row, what the live run was given and what it measured.
    row_of = {task_id: row for row, task_id in run.task_ids.items()}
    by_row = {rec.task.id: rec for rec in run.records}
    assert {t.id for t in trace} == set(row_of)
    first = min(rec.task.submit_at for rec in run.records)
    for t in trace:
        row = rp_row = next(r for r in rows if r.id == row_of[t.id])
        assert t.priority == row.priority
        assert t.fails == row.fails
        assert t.expected_duration == row.expected_duration
        assert t.name == f"{run.run_id}:{row.name}"  # the duration key the EMAs learn by
        assert t.submit_at == pytest.approx(by_row[rp_row.id].task.submit_at - first, abs=1e-5)
        warm = by_row[rp_row.id].warm  # the sleep task ran faster: the run time says so
        factor = c.settings.warm_factor if warm else 1.0
        assert t.duration == pytest.approx(row.duration * factor, abs=0.05)
        assert t.affinity_key == (
            None if row.affinity_key is None else f"{run.run_id}:{row.affinity_key}"
        )
        if row.deadline is None:
            assert t.deadline is None
        else:
            assert t.deadline == pytest.approx(row.deadline - first, abs=1e-5)
    # The run times already hold any warm speed-up: replayed as they ran, not discounted again.
    as_ran = c.settings.model_copy(update={"warm_factor": 1.0})
    predicted = metrics(
        rp.simulate(trace, strategy, as_ran, workers=2, slots=1, dispatch_overhead=overhead), 2
    )
    assert predicted["tasks"] == live["tasks"] == len(rows)
    assert abs(predicted["mean_flow"] - live["mean_flow"]) <= 0.10 * live["mean_flow"], (
        live,
        predicted,
    )


def test_export_leaves_out_cancelled_tasks_and_refuses_an_empty_range(cluster, tmp_path):
    c = cluster(strategy="fifo")
    began = c.store.server_time()
    handles = c.client.submit_many(
        [{"name": "sleep", "args": [0.01], "priority": p} for p in (1, 2, 3)]
    )
    assert handles[0].cancel()
    out = tmp_path / "none.jsonl"
    done = export(c, out, "--since", f"{began:.6f}")  # no worker: nothing ended but the cancel
    assert done.returncode == 2
    assert "--since" in done.stderr
    assert "no task submitted in that range has ended" in done.stderr
    c.dispatcher()
    c.worker("w1@test", slots=1)
    for h in handles[1:]:
        h.result(timeout=30)
    done = export(c, out, "--since", "10m")
    assert done.returncode == 0, done.stderr
    assert "left out: 1 cancelled" in done.stderr
    trace = [json.loads(line) for line in out.read_text().splitlines()[1:]]
    assert [row["priority"] for row in trace] == [2, 3]
    assert trace[0]["submit_at"] == 0.0
    assert all(row["name"] == "sleep" and row["duration"] > 0 for row in trace)


def test_times_are_read_as_spans_unix_seconds_or_iso_and_anything_else_is_refused():
    assert parse_when("--since", "90s", 1000.0) == 910.0
    assert parse_when("--since", "1h", 7200.0) == 3600.0
    assert parse_when("--since", "1700000000.5", 0.0) == 1700000000.5
    assert parse_when("--since", "2026-05-01T12:00:00+00:00", 0.0) == 1777636800.0
    with pytest.raises(InvalidInputError, match="--until") as info:
        parse_when("--until", "yesterday", 0.0)
    assert "30m" in str(info.value)


def test_the_monitor_keeps_a_rolling_trace_rotated_by_size_each_file_a_workload(cluster, tmp_path):
    from scheduler.monitor import Monitor
    from scheduler.tuning.companion import TuningCompanion

    path = tmp_path / "rolling" / "trace.jsonl"
    c = cluster(strategy="fifo", monitor_trace=str(path), monitor_trace_bytes=10_000)
    c.dispatcher()
    c.worker("w1@test", slots=2)
    mon = Monitor(c.store, companion=TuningCompanion(c.store))
    handles = c.client.submit_many(
        [{"name": "sleep", "args": [0.001], "priority": i % 10} for i in range(150)]
    )
    for h in handles:
        h.result(timeout=60)
    mon.poll()
    files = sorted(path.parent.iterdir())
    assert len(files) >= 2  # about 120 bytes a row: rotated past 10,000 bytes
    assert all(f.stat().st_size <= 10_000 for f in files)
    rows = [t for f in files for t in load_workload(f)]  # every file is a workload
    assert sorted(t.id for t in rows) == sorted(h.id for h in handles)
    record = {h.id: c.store.tasks.records([h.id])[0] for h in handles[:5]}
    for t in rows:
        if t.id in record:
            assert t.submit_at == pytest.approx(record[t.id].submitted_at, abs=1e-5)
            assert t.priority == record[t.id].priority
    assert path.read_text().startswith("# yardmaster rolling trace")
