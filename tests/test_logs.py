"""Logs that tie a task together: ``YM_LOG_FORMAT=json|text``, every line about a task with
its id, attempt, worker as fields, in every process of a real run."""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid

import httpx
import pytest

from scheduler.logs import (
    JsonFormatter,
    TaskFields,
    TextFormatter,
    enter_task,
    leave_task,
    task_context,
    task_fields,
)
from scheduler.models import TaskState

TOKEN = "logs-" + uuid.uuid4().hex


def _record(msg: str, args=(), **extra) -> logging.LogRecord:
    rec = logging.LogRecord("yardmaster.test", logging.INFO, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def _through(rec: logging.LogRecord, fields: TaskFields | None = None) -> logging.LogRecord:
    assert (fields or TaskFields()).filter(rec)
    return rec


# -- pure parts --------------------------------------------------------------------
def test_a_json_line_carries_the_task_fields_given_with_the_call():
    rec = _through(_record("task %s dispatched", ("abc",), **task_fields("abc", 2, "w1@h")))
    line = json.loads(JsonFormatter("dispatcher").format(rec))
    assert line["msg"] == "task abc dispatched"
    assert (line["task_id"], line["attempt"], line["worker"]) == ("abc", 2, "w1@h")
    assert line["service"] == "dispatcher"
    assert line["level"] == "INFO"
    assert line["logger"] == "yardmaster.test"
    assert "workflow" not in line  # only the fields that are known
    assert task_fields("x", None, "", "wf-1", "started") == {
        "task_id": "x",
        "workflow": "wf-1",
        "event": "started",
    }


def test_lines_inside_a_task_context_are_about_that_task_and_others_are_not():
    with task_context(task_id="t1", attempt=1, worker="w@h"):
        inside = _through(_record("a line of the body"))
    outside = _through(_record("a line about nothing"))
    assert (inside.task_id, inside.attempt, inside.worker) == ("t1", 1, "w@h")
    assert "task_id" not in json.loads(JsonFormatter().format(outside))
    enter_task(task_id="t2", attempt=3, worker="w@h")
    try:
        assert _through(_record("x")).task_id == "t2"
    finally:
        leave_task()
    assert getattr(_through(_record("y")), "task_id", None) is None


def test_celerys_own_lines_get_the_id_from_their_arguments_and_the_workers_name():
    defaults: dict[str, str] = {}
    fields = TaskFields(defaults)
    defaults["worker"] = "w9@h"  # known later than the filter is made (celeryd_after_setup)
    rec = _through(_record("Task %(name)s[%(id)s] received", ({"name": "n", "id": "c1"},)), fields)
    assert rec.getMessage() == "Task n[c1] received"
    assert (rec.task_id, rec.worker) == ("c1", "w9@h")
    plain = _through(_record("Connected to redis"), fields)
    assert getattr(plain, "worker", None) is None  # not about a task: no worker field


def test_a_text_line_ends_with_the_task_fields_before_any_traceback():
    rec = _through(_record("boom", **task_fields("t7", 1, "w@h")))
    try:
        raise ValueError("bad")
    except ValueError:
        rec.exc_info = sys.exc_info()
    text = TextFormatter().format(rec)
    first, _, rest = text.partition("\n")
    assert first.endswith("boom [task=t7 attempt=1 worker=w@h]")
    assert "ValueError: bad" in rest
    inner = logging.Formatter("[%(levelname)s] %(message)s")
    assert TextFormatter(inner).format(_record("plain")) == "[INFO] plain"


# -- live ------------------------------------------------------------------------
def _json_lines(c) -> list[dict]:
    out = []
    for path in sorted(c.log_dir.glob("*.log")):
        for raw in path.read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                line = json.loads(raw)
                line["file"] = path.name
                out.append(line)
    return out


def test_json_logs_of_one_run_follow_a_task_through_the_api_dispatcher_and_worker(cluster):
    tokens = json.dumps([{"name": "logs", "scope": "admin", "token": TOKEN}])
    c = cluster(log_format="json", api_tokens=tokens, handoff="false")
    c.dispatcher(loglevel="DEBUG")
    c.worker("logs@test", slots=1, loglevel="DEBUG")
    url = c.api(loglevel="DEBUG")
    with httpx.Client(base_url=url, timeout=30) as http:
        reply = http.post(
            "/v1/tasks",
            json={"name": "sleep", "args": [0.05], "priority": 7},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert reply.status_code in (200, 201, 202), reply.text
        task_id = reply.json()["id"]
    handle = c.client.handle(task_id)
    assert handle.result(timeout=30) is not None
    assert handle.status() == TaskState.SUCCEEDED

    # the worker writes its last lines after the outcome: wait for its finished line
    def about() -> list[dict]:
        return [line for line in _json_lines(c) if line.get("task_id") == task_id]

    end = time.monotonic() + 30
    while not any(line.get("event") == "finished" for line in about()):
        assert time.monotonic() < end, about()
        time.sleep(0.05)
    lines = about()
    events = {(line["service"], line.get("event")) for line in lines}
    assert ("api", "submitted") in events, lines
    assert ("dispatcher", "dispatched") in events, lines
    assert ("worker", "started") in events, lines
    assert ("worker", "finished") in events, lines
    assert len({line["pid"] for line in lines}) >= 3, lines  # api, dispatcher, pool (+ main)
    assert len({line["file"] for line in lines}) >= 3
    for line in lines:
        if line.get("event") in ("dispatched", "started", "finished"):
            assert (line["attempt"], line["worker"]) == (1, "logs@test"), line
    finished = next(line for line in lines if line.get("event") == "finished")
    assert "success" in finished["msg"]
    # Celery's own lines of the run carry the task's fields too: "received" in the main
    # process (id and worker), "succeeded" in the pool process (id, attempt and worker)
    received = [
        line
        for line in lines
        if "received" in line["msg"] and line["logger"] != "yardmaster.worker"
    ]
    assert received, lines
    assert all(line["worker"] == "logs@test" for line in received), lines
    succeeded = [line for line in lines if "succeeded in" in line["msg"]]
    assert succeeded, lines
    assert all(line.get("attempt") == 1 for line in succeeded), lines
    # every line of ours, and every INFO line, that names the task carries its id (Celery's
    # DEBUG internals, such as the pool's "Apply <function ...>", are left as they are)
    for path in c.log_dir.glob("*.log"):
        for raw in path.read_text(errors="replace").splitlines():
            if task_id not in raw or not raw.startswith("{"):
                continue
            line = json.loads(raw)
            if line["logger"].startswith("yardmaster") or line["level"] != "DEBUG":
                assert line.get("task_id") == task_id, (path.name, raw)


@pytest.mark.parametrize("fmt", ["text"])
def test_text_logs_name_the_task_in_the_dispatcher_and_the_worker(cluster, fmt):
    c = cluster(log_format=fmt, handoff="false")
    c.dispatcher(loglevel="DEBUG")
    c.worker("text@test", slots=1, loglevel="DEBUG")
    handle = c.client.submit("noop")
    assert handle.result(timeout=30) is None
    dispatcher = (c.log_dir / "dispatcher.log").read_text()
    assert (
        f"dispatched [task={handle.id} attempt=1 worker=text@test event=dispatched]" in dispatcher
    )
    end = time.monotonic() + 30
    while (
        f"[task={handle.id} attempt=1 worker=text@test event=finished]"
        not in (c.log_dir / "text@test.log").read_text()
    ):
        assert time.monotonic() < end, (c.log_dir / "text@test.log").read_text()[-3000:]
        time.sleep(0.05)
