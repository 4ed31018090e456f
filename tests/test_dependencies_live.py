"""Dependencies on the live cluster: waiting tasks released by their last parent's
success, failure policies, result passing, workflows as a unit, and bad input
refused with nothing stored (docs/workflows.md)."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from scheduler.errors import InvalidInputError, WorkflowError
from scheduler.models import TaskState
from scheduler.tuning.capture import export_trace
from scheduler.workload_dag import DagShape, generate_dag
from tests.api_live import auth, live_stack


def stored_task_count(c) -> int:
    return sum(1 for _ in c.store.client.scan_iter(c.store.keys.task("*")))


def assert_children_after_parents(records) -> None:
    by_id = {r.id: r for r in records}
    for r in records:
        assert r.state == TaskState.SUCCEEDED, (r.id, r.state, r.error)
        for parent in r.depends_on:
            p = by_id[parent]
            assert p.finished_at is not None
            assert r.started_at is not None
            assert r.started_at >= p.finished_at, (parent, r.id)
            assert r.released_at is not None
            assert r.released_at >= p.finished_at


def test_a_diamond_runs_each_child_after_all_its_parents_finished(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("w1@test", slots=2)
    c.worker("w2@test", slots=2)
    tasks = [
        {"id": "d.a", "name": "sleep", "args": [0.2]},
        {"id": "d.b", "name": "sleep", "args": [0.3], "depends_on": ["d.a"]},
        {"id": "d.c", "name": "sleep", "args": [0.1], "depends_on": ["d.a"]},
        {"id": "d.d", "name": "sleep", "args": [0.05], "depends_on": ["d.b", "d.c"]},
    ]
    # listed children first: the client orders the batch itself
    handles = c.client.submit_many(list(reversed(tasks)))
    assert c.store.tasks.states(["d.d"]) == ["waiting"]
    records = c.client.wait(handles, timeout=60)
    assert_children_after_parents(records)
    d = next(r for r in records if r.id == "d.d")
    assert d.depends_on == ("d.b", "d.c")
    # a trace of what ran keeps the dependencies (scheduler/tuning/capture.py)
    rows = {t.id: t for t in export_trace(c.store, since=records[0].submitted_at - 1).tasks}
    assert rows["d.d"].depends_on == ("d.b", "d.c")
    assert rows["d.a"].depends_on == ()


def test_a_random_dag_of_200_tasks_runs_in_dependency_order(cluster):
    c = cluster()
    c.dispatcher()
    for i in range(3):
        c.worker(f"w{i}@test", slots=3)
    dag = generate_dag(200, seed=7, shape=DagShape(fan_in=3, fan_out=3), scale=0.01)
    assert sum(1 for t in dag if t.depends_on) > 150
    items = [
        {"id": t.id, "name": "sleep", "args": [t.duration], "depends_on": list(t.depends_on)}
        for t in dag
    ]
    random.Random(3).shuffle(items)
    wf, handles = c.client.submit_workflow(items)
    records = c.client.wait(handles, timeout=180)
    assert_children_after_parents(records)
    assert {r.workflow for r in records} == {wf}
    status = c.client.workflow(wf)
    assert status.counts == {"succeeded": 200}
    assert status.finished


def test_a_failed_parent_cancels_its_dependents_down_the_graph_naming_the_parent(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("w1@test", slots=2)
    handles = c.client.submit_many(
        [
            {"id": "f.a", "name": "fail"},
            {"id": "f.b", "name": "noop", "depends_on": ["f.a"]},
            {"id": "f.c", "name": "noop", "depends_on": ["f.b"]},
            {"id": "f.ok", "name": "noop"},
        ]
    )
    a, b, cc, ok = c.client.wait(handles, timeout=60)
    assert a.state == TaskState.FAILED
    assert ok.state == TaskState.SUCCEEDED
    assert b.state == TaskState.CANCELLED
    assert b.started_at is None
    assert b.reason == "parent f.a failed"
    assert "f.a" in (b.error or "")
    assert cc.state == TaskState.CANCELLED
    assert cc.reason == "parent f.b cancelled"


def test_on_parent_failure_run_runs_the_dependent_anyway(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("w1@test", slots=2)
    parent = c.client.submit("fail")
    child = c.client.submit(
        "echo", ["mine"], depends_on=[parent.id], on_parent_failure="run", pass_results=True
    )
    rec = c.client.wait([parent, child], timeout=60)
    assert rec[0].state == TaskState.FAILED
    assert rec[1].state == TaskState.SUCCEEDED
    assert rec[1].started_at >= rec[0].finished_at
    assert child.result(timeout=5) == [[None], "mine"]


def test_on_parent_failure_run_only_runs_an_errback_only_after_a_failure(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("w1@test", slots=2)
    bad, good = c.client.submit("fail"), c.client.submit("echo", [1])
    on_bad = c.client.submit(
        "echo", ["mine"], depends_on=[bad.id], on_parent_failure="run_only", pass_results="id"
    )
    on_good = c.client.submit("echo", [], depends_on=[good.id], on_parent_failure="run_only")
    after_skip = c.client.submit("echo", [], depends_on=[on_good.id])  # cancelled down the graph
    rec = c.client.wait([bad, good, on_bad, on_good, after_skip], timeout=60)
    assert [r.state for r in rec] == [
        TaskState.FAILED,
        TaskState.SUCCEEDED,
        TaskState.SUCCEEDED,
        TaskState.CANCELLED,
        TaskState.CANCELLED,
    ]
    assert on_bad.result(timeout=5) == [bad.id, "mine"]  # the failed parent's id first
    assert rec[3].reason == f"parent {good.id} succeeded"
    assert rec[3].started_at is None
    # submitted after its parent ended: released at once after a failure, refused after a
    # success (it would never run), with nothing stored
    late = c.client.submit("echo", [], depends_on=[bad.id], on_parent_failure="run_only")
    assert late.result(timeout=60) == []
    before = stored_task_count(c)
    with pytest.raises(WorkflowError) as exc:
        c.client.submit("echo", [], depends_on=[good.id], on_parent_failure="run_only")
    assert "already succeeded" in str(exc.value)
    assert stored_task_count(c) == before
    with pytest.raises(InvalidInputError) as bad_input:
        c.client.submit("echo", [], depends_on=[good.id], on_parent_failure="only")
    assert bad_input.value.field.endswith("on_parent_failure")
    assert "run_only" in str(bad_input.value)


def test_replace_hands_waiting_dependents_to_the_replacement_in_one_step(cluster):
    c = cluster()  # no dispatcher: nothing runs; the replaced tasks are marked running
    old, new = c.client.submit("noop"), c.client.submit("noop")
    child = c.client.submit("noop", depends_on=[old.id], pass_results="single")
    assert c.store.workflows.replace(old.id, new.id) == ["not_running", "pending"]
    c.store.client.hset(c.store.keys.task(old.id), "state", "running")  # its body runs
    assert c.store.workflows.replace(old.id, "no-such-task") == ["missing", "no-such-task"]
    assert c.store.workflows.replace(old.id, new.id) == ["ok", "1"]
    moved = c.store.tasks.records([child.id])[0]
    assert moved.state == TaskState.WAITING
    assert moved.depends_on == (new.id,)
    assert c.store.tasks.fields([old.id], ["replaced_by"])[0]["replaced_by"] == new.id
    # a replacement that already ended settles the moved dependents at once
    old2, gone = c.client.submit("noop"), c.client.submit("noop")
    child2 = c.client.submit("noop", depends_on=[old2.id])
    c.store.client.hset(c.store.keys.task(old2.id), "state", "running")
    assert c.store.tasks.expire(gone.id, "gave up") == "expired"
    assert c.store.workflows.replace(old2.id, gone.id) == ["ok", "1"]
    ended = c.store.tasks.records([child2.id])[0]
    assert ended.state == TaskState.CANCELLED
    assert ended.reason == f"parent {gone.id} expired"


def test_pass_results_hands_the_parents_results_in_depends_on_order(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("w1@test", slots=3)
    slow = c.client.submit("echo", [1, {"x": 0.1}])
    quick = c.client.submit("echo", ["two"])
    done = c.client.submit("echo", [3.25])
    c.client.wait([done], timeout=30)  # a parent that succeeded before the child's submission
    child = c.client.submit(
        "echo", ["own", 7], {}, depends_on=[quick.id, done.id, slow.id], pass_results=True
    )
    assert child.result(timeout=60) == [[["two"], [3.25], [1, {"x": 0.1}]], "own", 7]


def test_cancelling_a_workflow_ends_all_its_unfinished_tasks(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("w1@test", slots=1)
    items = [{"id": "c.root", "name": "marked_sleep", "args": ["root", 3.0]}]
    items += [{"id": f"c.{i}", "name": "noop", "depends_on": ["c.root"]} for i in range(5)]
    items += [{"id": "c.sink", "name": "noop", "depends_on": [f"c.{i}" for i in range(5)]}]
    wf, handles = c.client.submit_workflow(items, workflow_id="wf-cancel")
    assert wf == "wf-cancel"
    assert c.client.workflow(wf).counts.get("waiting") == 6
    assert c.client.cancel_workflow(wf) >= 6
    records = c.client.wait(handles, timeout=60)
    assert all(r.state.terminal for r in records)
    assert all(r.state == TaskState.CANCELLED for r in records[1:])
    assert all(r.started_at is None for r in records[1:])
    status = c.client.workflow(wf)
    assert status.finished
    assert status.counts.get("cancelled", 0) >= 6


def test_cancelling_a_waiting_task_cancels_its_dependents(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("w1@test", slots=1)
    root = c.client.submit("marked_sleep", ["r", 0.5])
    mid = c.client.submit("noop", depends_on=[root.id])
    leaf = c.client.submit("noop", depends_on=[mid.id])
    assert mid.cancel() is True
    assert root.result(timeout=30) == 0.5
    records = c.client.wait([mid, leaf], timeout=30)
    assert [r.state for r in records] == [TaskState.CANCELLED, TaskState.CANCELLED]
    assert records[1].reason == f"parent {mid.id} cancelled"


@pytest.mark.parametrize(
    ("items", "problem", "ids"),
    [
        (
            [
                {"id": "x", "name": "noop", "depends_on": ["z"]},
                {"id": "y", "name": "noop", "depends_on": ["x"]},
                {"id": "z", "name": "noop", "depends_on": ["y"]},
            ],
            "cycle",
            {"x", "y", "z"},
        ),
        ([{"id": "x", "name": "noop", "depends_on": ["x"]}], "depends on itself", {"x"}),
        (
            [{"id": "x", "name": "noop"}, {"id": "y", "name": "noop", "depends_on": ["nope"]}],
            "nope",
            {"y", "nope"},
        ),
    ],
)
def test_a_bad_workflow_is_refused_naming_the_ids_with_nothing_stored(cluster, items, problem, ids):
    c = cluster()
    before = stored_task_count(c)
    with pytest.raises(WorkflowError) as exc:
        c.client.submit_workflow(items)
    assert problem in str(exc.value)
    assert set(exc.value.ids) == ids
    assert stored_task_count(c) == before


def test_a_workflow_over_the_size_limit_is_refused_with_nothing_stored(cluster):
    c = cluster(max_workflow=3)
    before = stored_task_count(c)
    items = [{"id": f"s{i}", "name": "noop"} for i in range(4)]
    with pytest.raises(WorkflowError) as exc:
        c.client.submit_workflow(items)
    assert "at most 3 tasks" in str(exc.value)
    assert stored_task_count(c) == before


def test_depending_on_an_expired_or_missing_parent_is_refused_with_nothing_stored(cluster):
    c = cluster()  # no dispatcher: the parent stays pending until expired here
    expired = c.client.submit("noop")
    assert c.store.tasks.expire(expired.id, "gave up") == "expired"
    before = stored_task_count(c)
    for parent, word in ((expired.id, "expired"), ("never-submitted", "no record")):
        with pytest.raises(WorkflowError) as exc:
            c.client.submit_many(
                [{"id": "ok1", "name": "noop"}, {"id": "k", "name": "noop", "depends_on": [parent]}]
            )
        assert word in str(exc.value)
        assert parent in str(exc.value)
        assert exc.value.ids == ("k", parent)
    assert stored_task_count(c) == before


def test_an_id_already_stored_is_refused(cluster):
    c = cluster()
    c.client.submit_many([{"id": "same", "name": "noop"}])
    with pytest.raises(InvalidInputError, match="same"):
        c.client.submit_many([{"id": "same", "name": "noop"}])


def test_after_on_the_command_line_and_workflow_show_and_cancel(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("w1@test", slots=1)
    cli = [sys.executable, "-m", "scheduler.cli"]
    env = c.env()

    def run(*argv: str) -> str:
        done = subprocess.run(
            [*cli, *argv], env=env, capture_output=True, text=True, timeout=60, check=True
        )
        return done.stdout

    parent = c.client.submit("echo", ["p"])
    out = run("submit", "echo", '"c"', "--after", parent.id, "--pass-results", "--wait")
    child_id, result = out.strip().splitlines()
    assert json.loads(result) == [[["p"]], "c"]
    assert c.client.handle(child_id).record().depends_on == (parent.id,)

    # a cluster with no dispatcher: nothing of the workflow starts, so the cancel finds
    # the root pending and the leaf waiting whatever the machine's speed
    idle = cluster()
    env = idle.env()
    items = [{"id": "cli.root", "name": "noop"}]
    items += [{"id": "cli.leaf", "name": "noop", "depends_on": ["cli.root"]}]
    wf, handles = idle.client.submit_workflow(items, workflow_id="wf-cli")
    shown = json.loads(run("workflow", "show", wf, "--json"))
    assert shown["total"] == 2
    assert shown["tasks"] == {"cli.root": "pending", "cli.leaf": "waiting"}
    assert "2 unfinished tasks cancelled" in run("workflow", "cancel", wf)
    records = idle.client.wait(handles, timeout=60)
    assert [r.state for r in records] == [TaskState.CANCELLED, TaskState.CANCELLED]
    assert "2 tasks, finished" in run("workflow", "show", wf)


def test_workflows_over_http_submit_show_and_cancel(tmp_path):
    with live_stack(tmp_path) as api:
        body = {
            "id": "wf-http",
            "tasks": [
                {"id": "h.a", "name": "echo", "args": [1]},
                {"id": "h.b", "name": "echo", "args": [2]},
                {"id": "h.c", "name": "echo", "depends_on": ["h.a", "h.b"], "pass_results": True},
            ],
        }
        r = api.http.post("/v1/workflows", json=body, headers=auth("submit"))
        assert r.status_code == 201, r.text
        assert r.json()["id"] == "wf-http"
        assert [t["id"] for t in r.json()["tasks"]] == ["h.a", "h.b", "h.c"]
        res = api.http.get("/v1/tasks/h.c/result", params={"wait": 30}, headers=auth("read"))
        assert res.json()["result"] == [[[1], [2]]]
        rec = api.http.get("/v1/tasks/h.c", headers=auth("read")).json()
        assert rec["depends_on"] == ["h.a", "h.b"]
        assert rec["workflow"] == "wf-http"
        info = api.http.get("/v1/workflows/wf-http", headers=auth("read")).json()
        assert info["counts"] == {"succeeded": 3}
        assert info["finished"] is True

        single = api.http.post(
            "/v1/tasks",
            json={"name": "echo", "args": ["x"], "depends_on": ["h.c"], "pass_results": True},
            headers=auth("submit"),
        )
        assert single.status_code == 201, single.text
        tid = single.json()["id"]
        res = api.http.get(f"/v1/tasks/{tid}/result", params={"wait": 30}, headers=auth("read"))
        assert res.json()["result"] == [[[[[1], [2]]]], "x"]  # [h.c's result], then "x"

        cyclic = {
            "tasks": [
                {"id": "y.a", "name": "noop", "depends_on": ["y.b"]},
                {"id": "y.b", "name": "noop", "depends_on": ["y.a"]},
            ]
        }
        bad = api.http.post("/v1/workflows", json=cyclic, headers=auth("submit"))
        assert bad.status_code == 422
        assert "cycle" in bad.json()["message"]
        assert api.http.get("/v1/tasks/y.a", headers=auth("read")).status_code == 404

        slow = {
            "tasks": [
                {"id": "s.a", "name": "marked_sleep", "args": ["s", 3.0]},
                {"id": "s.b", "name": "noop", "depends_on": ["s.a"]},
            ]
        }
        wf = api.http.post("/v1/workflows", json=slow, headers=auth("submit")).json()["id"]
        r = api.http.post(f"/v1/workflows/{wf}/cancel", headers=auth("submit"))
        assert r.status_code == 200
        assert r.json()["cancelled"] >= 1
        assert api.http.get("/v1/tasks/s.b", headers=auth("read")).json()["state"] == "cancelled"
        missing = api.http.get("/v1/workflows/no-such", headers=auth("read"))
        assert missing.status_code == 404
