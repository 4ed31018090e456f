"""A running task's progress: ``self.progress(done, total, note)`` reaches its record,
rate-limited, and is seen through the HTTP API, the client and ``yardmaster status ID``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from scheduler.errors import InvalidInputError
from scheduler.models import TaskProgress, TaskState
from workers.progress import Throttle, check

TOKEN = "progress-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def wait_for(predicate, what: str, timeout: float = 30.0):
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < end, f"{what} did not happen within {timeout}s"
        time.sleep(0.02)


# -- pure parts --------------------------------------------------------------------
def test_the_throttle_writes_the_first_report_keeps_the_rest_and_hands_back_the_last():
    t = Throttle(interval=0.5)
    assert t.offer(10.0, (1.0, 10.0, "a")) == (1.0, 10.0, "a")  # the first: at once
    assert t.offer(10.2, (2.0, 10.0, "b")) is None  # inside the interval: kept
    assert t.offer(10.4, (3.0, 10.0, "c")) is None
    assert t.offer(10.5, (4.0, 10.0, "d")) == (4.0, 10.0, "d")  # past it: written
    assert t.take_kept() is None  # nothing kept since that write
    assert t.offer(10.6, (5.0, 10.0, "e")) is None
    assert t.take_kept() == (5.0, 10.0, "e")  # the run's end writes the last value
    assert t.take_kept() is None
    every = Throttle(interval=0.0)
    assert [every.offer(1.0, (float(i), None, "")) for i in range(3)] == [
        (0.0, None, ""),
        (1.0, None, ""),
        (2.0, None, ""),
    ]


@pytest.mark.parametrize(
    ("done", "total", "note", "field"),
    [
        (-1, 10, "", "progress(done)"),
        (float("nan"), 10, "", "progress(done)"),
        (True, 10, "", "progress(done)"),
        ("3", 10, "", "progress(done)"),
        (3, 0, "", "progress(total)"),
        (3, -5, "", "progress(total)"),
        (3, float("inf"), "", "progress(total)"),
        (3, 10, 7, "progress(note)"),
    ],
)
def test_a_bad_report_is_refused_naming_the_field(done, total, note, field):
    with pytest.raises(InvalidInputError) as info:
        check(done, total, note)
    assert field in str(info.value)


def test_a_report_is_normalised_and_its_note_cut():
    assert check(3, None, "x") == (3.0, None, "x")
    assert check(2.5, 10, "y" * 2000)[2] == "y" * 500


def test_progress_is_decoded_from_the_records_fields():
    assert TaskProgress.from_hash({"state": "running"}) is None
    p = TaskProgress.from_hash(
        {"progress_done": "3.0", "progress_total": "", "progress_note": "n", "progress_at": "5"}
    )
    assert p == TaskProgress(3.0, None, "n", 5.0)
    assert p.fraction is None
    assert TaskProgress(5.0, 4.0).fraction == 1.0
    assert TaskProgress(1.0, 4.0).fraction == 0.25


# -- live ------------------------------------------------------------------------
def _api_progress(http: httpx.Client, task_id: str) -> dict | None:
    body = http.get(f"/v1/tasks/{task_id}", headers=AUTH)
    assert body.status_code == 200, body.text
    return body.json()["progress"]


def test_a_task_reporting_progress_is_seen_at_each_intermediate_value_through_the_api(cluster):
    tokens = json.dumps([{"name": "progress", "scope": "admin", "token": TOKEN}])
    c = cluster(progress_interval=0, api_tokens=tokens)
    c.dispatcher()
    c.worker("steps@test", slots=1)
    url = c.api()
    key = "gate-" + uuid.uuid4().hex[:6]
    handle = c.client.submit("stepped", [key, 4])
    with httpx.Client(base_url=url, timeout=30) as http:
        wait_for(lambda: handle.status() == TaskState.RUNNING, "the start")
        assert _api_progress(http, handle.id) is None  # nothing reported yet
        seen = []
        for step in range(1, 4):
            c.store.demo.count_run(key)  # let the task take one more step
            shown = wait_for(
                lambda s=step: (p := _api_progress(http, handle.id)) and p["done"] == s and p,
                f"progress {step} in the API",
            )
            assert handle.status() == TaskState.RUNNING  # an intermediate value, while it runs
            seen.append(shown)
        assert [(p["done"], p["total"], p["note"]) for p in seen] == [
            (1.0, 4.0, "step 1 of 4"),
            (2.0, 4.0, "step 2 of 4"),
            (3.0, 4.0, "step 3 of 4"),
        ]
        assert all(p["at"] is not None for p in seen)
        assert seen[0]["at"] <= seen[1]["at"] <= seen[2]["at"]
        # the client's handle and the command line show the same
        progress = handle.progress()
        assert progress is not None
        assert (progress.done, progress.total, progress.fraction) == (3.0, 4.0, 0.75)
        cli = [sys.executable, "-m", "scheduler.cli", "status", handle.id]
        out = subprocess.run(
            cli, env=c.env(COLUMNS="200"), capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert "progress: 3 / 4" in out.stdout
        assert "75%" in out.stdout
        assert "step 3 of 4" in out.stdout
        # and the dashboard's task view (the monitor's explorer route, which the API serves)
        view = http.get(f"/monitor/tasks/{handle.id}", headers=AUTH)
        assert view.status_code == 200, view.text
        assert (view.json()["progress"]["done"], view.json()["progress"]["note"]) == (
            3.0,
            "step 3 of 4",
        )
        c.store.demo.count_run(key)
        assert handle.result(timeout=30) == 4
        final = _api_progress(http, handle.id)
        assert (final["done"], final["total"]) == (4.0, 4.0)  # kept after the end


def test_reports_inside_the_interval_are_held_back_and_the_last_is_written_at_the_end(cluster):
    c = cluster(progress_interval=3600)
    c.dispatcher()
    c.worker("steps@test", slots=1)
    key = "gate-" + uuid.uuid4().hex[:6]
    handle = c.client.submit("stepped", [key, 4])
    for _ in range(3):
        c.store.demo.count_run(key)
    wait_for(lambda: "reported 3" in " ".join(c.store.demo.timeline(key)), "three reports")
    # the first report was written at once; the next two fell inside the interval
    progress = handle.progress()
    assert progress is not None
    assert progress.done == 1.0
    assert not handle.status().terminal  # the body waits for its fourth step
    c.store.demo.count_run(key)
    assert handle.result(timeout=30) == 4
    final = handle.progress()
    assert final is not None
    assert (final.done, final.note) == (4.0, "step 4 of 4")  # the run's end wrote it


def test_a_stale_delivery_cannot_write_progress_on_the_record(cluster):
    c = cluster()
    c.dispatcher()
    c.worker("steps@test", slots=1)
    key = "gate-" + uuid.uuid4().hex[:6]
    handle = c.client.submit("stepped", [key, 1])
    wait_for(lambda: handle.status() == TaskState.RUNNING, "the start")
    record = handle.record()
    assert record.worker == "steps@test"
    tasks = c.store.tasks
    assert not tasks.set_progress(handle.id, "other@test", record.attempt, 9, None, "stale")
    assert not tasks.set_progress(handle.id, "steps@test", record.attempt + 1, 9, None, "later")
    assert not tasks.set_progress("no-such-task", "steps@test", 1, 9, None, "")
    assert handle.progress() is None
    assert tasks.set_progress(handle.id, "steps@test", record.attempt, 0.5, 1, "by its run")
    c.store.demo.count_run(key)
    assert handle.result(timeout=30) == 1
    final = handle.progress()
    assert final is not None
    assert final.done == 1.0
