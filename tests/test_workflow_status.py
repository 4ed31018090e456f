"""Waiting tasks and live workflows in ``yardmaster status`` (text and --json), on a
real Redis and real worker processes (docs/workflows.md, "Seeing them")."""

from __future__ import annotations

import json
import subprocess
import sys

from scheduler.models import TaskState
from scheduler.status import cluster_status
from tests.api_live import auth, live_stack

CLI = [sys.executable, "-m", "scheduler.cli"]


def status_cli(c, *argv: str) -> str:
    done = subprocess.run(
        [*CLI, "status", *argv], env=c.env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def diamond(prefix: str) -> list[dict]:
    return [
        {"id": f"{prefix}.a", "name": "noop"},
        {"id": f"{prefix}.b", "name": "noop", "depends_on": [f"{prefix}.a"]},
        {"id": f"{prefix}.c", "name": "noop", "depends_on": [f"{prefix}.a"]},
        {"id": f"{prefix}.d", "name": "noop", "depends_on": [f"{prefix}.b", f"{prefix}.c"]},
    ]


def test_status_counts_waiting_tasks_and_lists_live_workflows_with_progress(cluster):
    # No dispatcher yet: nothing starts, so what waits stays waiting however slow the machine.
    c = cluster()
    _, first = c.client.submit_workflow(diamond("one"), workflow_id="wf-one")
    _, second = c.client.submit_workflow(diamond("two"), workflow_id="wf-two")
    # dependencies outside any workflow count as waiting too
    loose = c.client.submit_many(
        [
            {"id": "loose.p", "name": "noop"},
            {"id": "loose.c", "name": "noop", "depends_on": ["loose.p"]},
        ]
    )
    snap = cluster_status(c.store)
    assert snap["waiting"] == 3 + 3 + 1
    assert snap["pending"]["total"] == 3
    listed = {wf["id"]: wf for wf in snap["workflows"]}
    assert set(listed) == {"wf-one", "wf-two"}
    assert listed["wf-one"]["total"] == 4
    assert listed["wf-one"]["done"] == 0
    assert listed["wf-one"]["counts"] == {"pending": 1, "waiting": 3}
    assert [wf["id"] for wf in snap["workflows"]] == ["wf-two", "wf-one"]  # newest first

    # cancelling a waiting task (and so its waiting dependent) lowers the count; the
    # workflow shows the progress: 2 of 4 ended
    assert c.client.handle("two.b").cancel()
    snap = cluster_status(c.store)
    assert snap["waiting"] == 3 + 1 + 1
    listed = {wf["id"]: wf for wf in snap["workflows"]}
    assert listed["wf-two"]["done"] == 2
    assert listed["wf-two"]["counts"] == {"pending": 1, "waiting": 1, "cancelled": 2}

    shown = json.loads(status_cli(c, "--json"))
    assert shown["waiting"] == 5
    assert {wf["id"]: wf["done"] for wf in shown["workflows"]} == {"wf-one": 0, "wf-two": 2}
    text = status_cli(c)
    assert "waiting on parents: 5" in text
    assert "live workflows" in text
    assert "wf-two" in text

    # run them: every waiting task is released, the gauge is back to 0, and finished
    # workflows are no longer live
    c.dispatcher()
    c.worker("w1@test", slots=2)
    records = c.client.wait([*first, *second, *loose], timeout=60)
    states = {r.id: r.state for r in records}
    assert states["one.d"] == TaskState.SUCCEEDED
    assert states["two.d"] == TaskState.CANCELLED
    assert states["loose.c"] == TaskState.SUCCEEDED
    snap = cluster_status(c.store)
    assert snap["waiting"] == 0
    assert snap["workflows"] == []
    assert "waiting on parents: 0" in status_cli(c)


def test_workflows_are_listed_with_their_progress_over_http(tmp_path):
    with live_stack(tmp_path) as api:
        slow = [
            {"id": "l.a", "name": "marked_sleep", "args": ["l", 30.0]},
            {"id": "l.b", "name": "noop", "depends_on": ["l.a"]},
            {"id": "l.c", "name": "noop", "depends_on": ["l.b"]},
        ]
        quick = [
            {"id": "q.a", "name": "noop"},
            {"id": "q.b", "name": "noop", "depends_on": ["q.a"]},
        ]
        for wf, tasks in (("wf-slow", slow), ("wf-quick", quick)):
            r = api.http.post(
                "/v1/workflows", json={"id": wf, "tasks": tasks}, headers=auth("submit")
            )
            assert r.status_code == 201, r.text
        res = api.http.get("/v1/tasks/q.b/result", params={"wait": 30}, headers=auth("read"))
        assert res.status_code == 200, res.text

        every = api.http.get("/v1/workflows", headers=auth("read"))
        assert every.status_code == 200, every.text
        body = every.json()
        assert body["waiting"] == 2  # l.b and l.c, behind the 30 s l.a
        listed = {wf["id"]: wf for wf in body["workflows"]}
        assert [wf["id"] for wf in body["workflows"]] == ["wf-quick", "wf-slow"]
        assert listed["wf-quick"]["finished"] is True
        assert (listed["wf-quick"]["done"], listed["wf-quick"]["total"]) == (2, 2)
        assert (listed["wf-slow"]["done"], listed["wf-slow"]["total"]) == (0, 3)
        assert listed["wf-slow"]["counts"]["waiting"] == 2

        live = api.http.get("/v1/workflows", params={"live": "true"}, headers=auth("read"))
        assert [wf["id"] for wf in live.json()["workflows"]] == ["wf-slow"]
        one = api.http.get("/v1/workflows", params={"limit": 1}, headers=auth("read"))
        assert [wf["id"] for wf in one.json()["workflows"]] == ["wf-quick"]
        assert (
            api.http.get("/v1/workflows", params={"limit": 0}, headers=auth("read")).status_code
            == 422
        )
        assert api.http.get("/v1/workflows").status_code == 401

        api.http.post("/v1/workflows/wf-slow/cancel", headers=auth("submit"))
        after = api.http.get("/v1/workflows", params={"live": "true"}, headers=auth("read")).json()
        assert after["waiting"] == 0
