"""yardmaster run: replay workloads on a live cluster and compare them with the simulator.

Real redis-server, real dispatcher and Celery worker processes (the Cluster
fixture), no mocks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler import replay as rp
from scheduler.errors import ReplayTimeoutError
from scheduler.settings import STRATEGY_NAMES
from scheduler.simulator import metrics
from scheduler.workload import WorkloadTask, load_workload
from scheduler.workload_dag import DagShape, generate_dag

from .conftest import ROOT

EXAMPLES = sorted((ROOT / "examples" / "workloads").glob("*.jsonl"))
CLI = [sys.executable, "-m", "scheduler.cli"]


def two_workers(cluster, strategy):
    c = cluster(strategy=strategy)
    c.dispatcher()
    c.worker("w1@test", slots=1)
    c.worker("w2@test", slots=1)
    return c


def strategy_for(workload: Path) -> str:
    """The strategy each example kind is made to exercise; the cluster default otherwise."""
    kinds = {"bursty": "sjf", "deadlines": "edf", "phases": "sjf"}
    return kinds.get(workload.stem, "priority")


@pytest.mark.parametrize("workload", EXAMPLES, ids=lambda p: p.name)
def test_run_and_simulate_agree_on_each_example_workload(cluster, workload):
    strategy = strategy_for(workload)
    c = two_workers(cluster, strategy)
    tasks = load_workload(workload)
    run = rp.replay(c.client, tasks, strategy, timeout=120)
    predicted = rp.simulate(
        tasks, strategy, c.settings, workers=2, slots=1, dispatch_overhead=run.overhead
    )
    live, sim = run.metrics(), metrics(predicted, 2)
    assert live["tasks"] == sim["tasks"] == len(tasks)
    assert all(r.state in ("succeeded", "failed", "cancelled", "expired") for r in run.records)
    assert abs(live["mean_flow"] - sim["mean_flow"]) <= 0.10 * sim["mean_flow"], (live, sim)
    assert abs(live["deadline_misses"] - sim["deadline_misses"]) <= 2, (live, sim)


def test_children_wait_for_their_parents_and_a_failed_parent_cancels_them(cluster):
    c = two_workers(cluster, "fifo")
    rows = [
        WorkloadTask(id="a", name="x", submit_at=0.0, duration=0.3),
        WorkloadTask(id="b", name="x", submit_at=0.0, duration=0.6, fails=True),
        WorkloadTask(id="c", name="x", submit_at=0.05, duration=0.05, depends_on=("a",)),
        WorkloadTask(id="d", name="x", submit_at=0.05, duration=0.05, depends_on=("b",)),
        # due before its parent d: held until d is due, then submitted with it
        WorkloadTask(id="e", name="x", submit_at=0.0, duration=0.05, depends_on=("d", "a")),
        WorkloadTask(id="late", name="x", submit_at=0.2, duration=0.05, deadline=0.1),
        WorkloadTask(id="f", name="x", submit_at=0.2, duration=0.05, depends_on=("late",)),
        # run anyway: after b's failure on the server, and without the never-submitted late row
        WorkloadTask(
            id="g", name="x", submit_at=0.05, duration=0.05, depends_on=("b",),
            on_parent_failure="run",
        ),
        WorkloadTask(
            id="h", name="x", submit_at=0.2, duration=0.05, depends_on=("late",),
            on_parent_failure="run",
        ),
    ]  # fmt: skip
    run = rp.replay(c.client, rows, "fifo", timeout=30)
    got = {r.task.id: r for r in run.records}
    assert {k: r.state for k, r in got.items()} == {
        "a": "succeeded", "b": "failed", "c": "succeeded",
        "d": "cancelled", "e": "cancelled", "late": "expired", "f": "cancelled",
        "g": "succeeded", "h": "succeeded",
    }  # fmt: skip
    assert got["c"].start >= got["a"].finish
    # rows with a parent or a child wait on the server: b's failure cancelled d there,
    # and d's cancellation e, each naming its parent
    assert got["g"].start >= got["b"].finish
    assert set(run.task_ids) == {"a", "b", "c", "d", "e", "g", "h"}  # nor late rows and f
    assert c.client.handle(run.task_ids["h"]).record().depends_on == ()
    live = {row: c.client.handle(task_id).record() for row, task_id in run.task_ids.items()}
    assert live["d"].depends_on == (run.task_ids["b"],)
    assert live["d"].reason == f"parent {run.task_ids['b']} failed"
    assert live["e"].reason == f"parent {run.task_ids['d']} cancelled"
    assert live["c"].released_at is not None
    assert run.late == ["late"]
    predicted = {
        r.task.id: r.state
        for r in rp.simulate(rows[:5] + rows[7:8], "fifo", c.settings, workers=2, slots=1)
    }
    assert predicted == {k: got[k].state for k in predicted}


def test_a_run_anyway_row_held_for_a_parent_that_is_then_never_submitted_still_runs(cluster):
    c = two_workers(cluster, "fifo")
    rows = [
        WorkloadTask(id="p", name="x", submit_at=0.0, duration=0.05, fails=True),
        WorkloadTask(id="q", name="x", submit_at=1.0, duration=0.05, depends_on=("p",)),
        # due before q: held; once q is cancelled for p's failure, nothing is left to wait on
        WorkloadTask(
            id="r", name="x", submit_at=0.0, duration=0.05, depends_on=("q",),
            on_parent_failure="run",
        ),
    ]  # fmt: skip
    run = rp.replay(c.client, rows, "fifo", timeout=60)
    got = {r.task.id: r.state for r in run.records}
    assert got == {"p": "failed", "q": "cancelled", "r": "succeeded"}
    predicted = {
        r.task.id: r.state for r in rp.simulate(rows, "fifo", c.settings, workers=2, slots=1)
    }
    assert predicted == got


def test_a_dag_workload_runs_on_server_side_dependencies_children_after_parents(cluster):
    c = cluster(strategy="fifo")
    c.dispatcher()
    c.worker("w1@test", slots=2)
    c.worker("w2@test", slots=2)
    rows = generate_dag(60, seed=5, workers=2, slots=2, scale=0.2, shape=DagShape(dags=3))
    assert sum(1 for t in rows if t.depends_on) > 40
    run = rp.replay(c.client, rows, "fifo", timeout=120)
    got = {r.task.id: r for r in run.records}
    assert all(r.state == "succeeded" for r in run.records), [r.state for r in run.records]
    for row in rows:
        for parent in row.depends_on:
            assert got[row.id].start >= got[parent].finish, (parent, row.id)
    # the dependencies were the server's: each child's record names its parents' tasks,
    # was released, and every task of a generated workflow is in one live workflow
    records = {r.id: r for r in c.client.wait([c.client.handle(i) for i in run.task_ids.values()])}
    for row in rows:
        rec = records[run.task_ids[row.id]]
        assert rec.depends_on == tuple(run.task_ids[p] for p in row.depends_on)
        if row.depends_on:
            assert rec.released_at is not None
    workflows = {rec.workflow for rec in records.values()}
    assert len(workflows) == 3
    for wf in workflows:
        assert wf is not None
        assert wf.startswith(run.run_id)
        assert c.client.workflow(wf).counts == {"succeeded": 20}
    assert run.metrics()["tasks"] == 60


def test_run_and_simulate_agree_on_the_layered_dag_example(cluster):
    # one 60-task workflow on 2 x 1: the makespan is the DAG's, not the arrivals'
    c = two_workers(cluster, "fifo")
    tasks = load_workload(ROOT / "examples" / "workloads" / "dag" / "layered.jsonl")
    run = rp.replay(c.client, tasks, "fifo", timeout=120)
    predicted = rp.simulate(
        tasks, "fifo", c.settings, workers=2, slots=1, dispatch_overhead=run.overhead
    )
    live, sim = run.metrics(), metrics(predicted, 2)
    assert live["tasks"] == sim["tasks"] == 60
    assert live["workflows"] == sim["workflows"] == 1
    # The target is 10 % (met in docs/workflows.md's measurements, and here on a quiet
    # machine); 15 % leaves room for the other jobs of a shared 2-core machine, and still
    # fails when releases lag well beyond the per-task overhead the simulator is given.
    for name in ("makespan", "mean_flow"):
        assert abs(live[name] - sim[name]) <= 0.15 * sim[name], (name, live, sim)


def test_a_replay_past_its_timeout_says_how_many_are_unfinished_and_cancels_the_rest(cluster):
    c = two_workers(cluster, "fifo")
    rows = [WorkloadTask(id=f"t{i}", name="x", submit_at=0.0, duration=1.0) for i in range(5)]
    with pytest.raises(ReplayTimeoutError) as caught:
        rp.replay(c.client, rows, "fifo", timeout=0.5)
    assert caught.value.unfinished == {"pending": 3, "running": 2}
    assert caught.value.cancelled == 3
    assert "5 unfinished tasks after 0.5s (3 pending, 2 running)" in str(caught.value)


def test_the_strategy_is_steered_for_the_run_and_restored_after(cluster):
    c = two_workers(cluster, "fifo")
    with rp.strategy_in_force(c.client, "sjf"):
        active = c.client.active_strategy()
        assert active is not None
        assert active.strategy == "sjf"
    assert [v.strategy for v in c.client.strategy_history()] == ["sjf", "fifo"]
    assert {v.who for v in c.client.strategy_history()} == {"yardmaster run"}
    with rp.strategy_in_force(c.client, "fifo"):  # already live with the cluster's parameters
        pass
    assert len(c.client.strategy_history()) == 2


def test_the_run_command_prints_run_simulate_and_difference_as_json(cluster, tmp_path):
    c = two_workers(cluster, "fifo")  # run steers it to sjf
    workload = tmp_path / "small.jsonl"
    rows = [
        {"id": f"t{i}", "name": "resize" if i % 3 else "report", "submit_at": i * 0.04,
         "duration": 0.05 if i % 3 else 0.15, "deadline": i * 0.04 + 1.0}
        for i in range(12)
    ]  # fmt: skip
    workload.write_text("".join(json.dumps(r) + "\n" for r in rows))
    trace = tmp_path / "trace.jsonl"
    cmd = [*CLI, "run", str(workload), "--strategy", "sjf", "--json", "--compare-sim"]
    done = subprocess.run(
        [*cmd, "--trace", str(trace), "--timeout", "60"],
        env=c.env(), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"run", "simulate", "difference", "dispatch_overhead"}
    for part in ("run", "simulate", "difference"):
        assert list(report[part]) == list(rp.METRIC_NAMES)
    assert report["run"]["tasks"] == report["simulate"]["tasks"] == 12
    diff = report["run"]["mean_flow"] - report["simulate"]["mean_flow"]
    assert report["difference"]["mean_flow"] == pytest.approx(diff)
    assert "submitted 12/12" in done.stderr
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [row["id"] for row in lines] == [r["id"] for r in rows]
    assert all(set(row) == {"id", "worker", "start", "finish", "state"} for row in lines)
    assert all(row["state"] == "succeeded" and row["worker"].endswith("@test") for row in lines)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"id": "t1", "name": "x", "submit_at": "soon", "duration": 1}',
            "bad.jsonl:2: submit_at=",
        ),
        (
            '{"id": "t1", "name": "x", "submit_at": 0, "duration": 1, "colour": 3}',
            "bad.jsonl:2: colour=",
        ),
    ],
)
def test_a_malformed_workload_line_is_refused_with_its_line_and_field(tmp_path, line, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "t0", "name": "x", "submit_at": 0, "duration": 1}\n' + line + "\n")
    done = subprocess.run(
        [*CLI, "run", str(bad), "--strategy", "fifo"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr.replace("\n", "")


def test_an_unknown_strategy_is_refused_naming_the_option_the_value_and_the_choices(tmp_path):
    ok = tmp_path / "ok.jsonl"
    ok.write_text('{"id": "t0", "name": "x", "submit_at": 0, "duration": 1}\n')
    done = subprocess.run(
        [*CLI, "run", str(ok), "--strategy", "fastest"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    shown = done.stderr.replace("\n", "")
    assert (
        "--strategy='fastest' is not accepted; allowed: one of: " + ", ".join(STRATEGY_NAMES)
        in shown
    )
