"""The simulator against theory, and the workload format's errors (pure: no Redis)."""

from __future__ import annotations

import heapq
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.errors import WorkloadError
from scheduler.settings import STRATEGY_NAMES
from scheduler.simulator import Simulator, metrics
from scheduler.strategies import FifoStrategy, PriorityStrategy
from scheduler.workload import WorkloadTask, load_workload, parse_workload

rows_strategy = st.lists(
    st.tuples(
        st.floats(0, 20, allow_nan=False),  # submit_at
        st.floats(0.01, 5, allow_nan=False),  # duration
        st.integers(0, 9),  # priority
    ),
    min_size=1,
    max_size=40,
)


def workload(rows):
    return [
        WorkloadTask(id=f"t{i}", name="x", submit_at=s, duration=d, priority=p)
        for i, (s, d, p) in enumerate(rows)
    ]


def list_schedule_with_release_times(tasks, machines):
    """First-come list scheduling: in release order, each task on the earliest free machine."""
    free = [0.0] * machines
    out = {}
    for _, task in sorted(enumerate(tasks), key=lambda it: (it[1].submit_at, it[0])):
        at = heapq.heappop(free)
        start = max(at, task.submit_at)
        out[task.id] = (start, start + task.duration)
        heapq.heappush(free, start + task.duration)
    return out


@settings(max_examples=150, deadline=None)
@given(rows_strategy, st.integers(1, 4), st.integers(1, 3))
def test_fifo_matches_first_come_list_scheduling_with_release_times(rows, workers, slots):
    tasks = workload(rows)
    got = {
        r.task.id: (r.start, r.finish)
        for r in Simulator(FifoStrategy(), workers=workers, slots=slots).run(tasks)
    }
    expected = list_schedule_with_release_times(tasks, workers * slots)
    for tid, (start, finish) in expected.items():
        assert got[tid][0] == pytest.approx(start, abs=1e-9)
        assert got[tid][1] == pytest.approx(finish, abs=1e-9)


def strict_priority_on_one_slot(tasks):
    """Whenever the slot frees, start the released task of highest priority, then earliest submitted."""
    pending = sorted(enumerate(tasks), key=lambda it: (it[1].submit_at, it[0]))
    now, ready, out = 0.0, [], {}
    while pending or ready:
        while pending and pending[0][1].submit_at <= now:
            i, t = pending.pop(0)
            heapq.heappush(ready, (-t.priority, t.submit_at, i, t))
        if not ready:
            now = pending[0][1].submit_at
            continue
        *_, t = heapq.heappop(ready)
        out[t.id] = (now, now + t.duration)
        now += t.duration
    return out


@settings(max_examples=150, deadline=None)
@given(rows_strategy)
def test_strict_priority_on_one_slot_matches_the_textbook_rule(rows):
    tasks = workload(rows)
    got = {
        r.task.id: (r.start, r.finish)
        for r in Simulator(PriorityStrategy(aging=0), workers=1).run(tasks)
    }
    for tid, (start, finish) in strict_priority_on_one_slot(tasks).items():
        assert got[tid][0] == pytest.approx(start, abs=1e-9)
        assert got[tid][1] == pytest.approx(finish, abs=1e-9)


def test_a_warm_affinity_key_halves_the_run_time_and_counts_as_a_hit():
    tasks = [
        WorkloadTask(id="a", name="x", submit_at=0, duration=1.0, affinity_key="k"),
        WorkloadTask(id="b", name="x", submit_at=0, duration=1.0, affinity_key="k"),
        WorkloadTask(id="c", name="x", submit_at=0, duration=1.0, affinity_key="other"),
    ]
    records = Simulator(FifoStrategy(), workers=1, warm_factor=0.5).run(tasks)
    assert [(r.start, r.finish, r.warm) for r in records] == [
        (0.0, 1.0, False),
        (1.0, 1.5, True),
        (1.5, 2.5, False),
    ]
    assert metrics(records, 1)["affinity_hits"] == 1


def test_dependencies_wait_for_success_and_a_failure_cancels_dependents():
    tasks = [
        WorkloadTask(id="a", name="x", submit_at=0, duration=2.0),
        WorkloadTask(id="b", name="x", submit_at=0, duration=1.0, depends_on=("a",)),
        WorkloadTask(id="c", name="x", submit_at=0, duration=1.0, fails=True),
        WorkloadTask(id="d", name="x", submit_at=0, duration=1.0, depends_on=("c",)),
    ]
    by_id = {r.task.id: r for r in Simulator(FifoStrategy(), workers=2).run(tasks)}
    assert by_id["b"].start == 2.0
    assert by_id["c"].state == "failed"
    assert by_id["d"].state == "cancelled"
    assert by_id["d"].start is None


def test_metrics_of_a_known_schedule():
    tasks = [
        WorkloadTask(id="a", name="x", submit_at=0, duration=1.0, deadline=0.5),
        WorkloadTask(id="b", name="x", submit_at=0, duration=2.0, deadline=5.0),
    ]
    m = metrics(Simulator(FifoStrategy(), workers=1).run(tasks), 1)
    assert m["makespan"] == 3.0
    assert m["mean_flow"] == 2.0  # (1 + 3) / 2
    assert m["mean_wait"] == 0.5  # (0 + 1) / 2
    assert m["deadline_misses"] == 1
    assert m["max_lateness"] == 0.5
    assert m["utilization"] == 1.0


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        (
            '{"id": "a", "name": "x", "submit_at": 0, "duration": 1}\n{"id": "b", "name": "x"',
            2,
            "line",
        ),
        ('{"id": "a", "name": "x", "submit_at": 0}', 1, "duration"),
        (
            '\n\n{"id": "a", "name": "x", "submit_at": 0, "duration": 1, "priority": 12}',
            3,
            "priority",
        ),
        ('{"id": "a", "name": "x", "submit_at": -1, "duration": 1}', 1, "submit_at"),
        ('{"id": "a", "name": "x", "submit_at": 0, "duration": 1, "colour": "red"}', 1, "colour"),
        ('{"id": "a", "name": "x", "submit_at": 0, "duration": 1}\n' * 2, 2, "id"),
        (
            '{"id": "a", "name": "x", "submit_at": 0, "duration": 1, "depends_on": ["zz"]}',
            1,
            "depends_on",
        ),
        (
            '{"id": "a", "name": "x", "submit_at": 0, "duration": 1, "depends_on": ["b"]}\n'
            '{"id": "b", "name": "x", "submit_at": 0, "duration": 1, "depends_on": ["a"]}',
            1,
            "depends_on",
        ),
    ],
)
def test_a_malformed_workload_line_is_reported_with_its_number_and_field(text, line, field):
    with pytest.raises(WorkloadError) as exc:
        parse_workload(text.splitlines(), "w.jsonl")
    assert exc.value.line == line
    assert exc.value.field == f"w.jsonl:{line}: {field}"


def test_simulate_command_prints_every_metric_per_strategy_and_is_deterministic(tmp_path):
    example = "examples/workloads/mixed.jsonl"
    n = len(load_workload(example))
    cmd = [sys.executable, "-m", "scheduler.cli", "simulate", example]
    cmd += ["--workers", "2", "--json", "--trace", str(tmp_path / "trace.jsonl")]
    first = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout
    second = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout
    assert first == second
    result = json.loads(first)
    assert set(result) == set(STRATEGY_NAMES)
    for values in result.values():
        assert set(values) == {
            "tasks", "makespan", "mean_flow", "p50_flow", "p95_flow", "p99_flow",
            "mean_wait", "deadline_misses", "max_lateness", "utilization", "affinity_hits",
        }  # fmt: skip
        assert values["tasks"] == n
    trace = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert len(trace) == n * len(STRATEGY_NAMES)
    assert set(trace[0]) == {"id", "worker", "start", "finish", "state", "strategy"}


def test_simulate_command_names_the_bad_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": "a", "name": "x", "submit_at": 0, "duration": 1}\n{"id": "b", "name": "x", "submit_at": "soon", "duration": 1}\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "simulate", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"{bad}:2: submit_at='soon'" in proc.stderr
