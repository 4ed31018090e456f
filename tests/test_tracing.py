"""yardmaster's OpenTelemetry spans: one task, one trace, across processes.

Real redis-server, dispatcher and Celery worker processes (the Cluster fixture);
each process exports its spans to one JSON-lines file (``YM_OTEL=file``), since
the SDK's in-memory exporter cannot see another process. The in-process tests
use the in-memory exporter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from broker_config import make_celery
from broker_config.publisher import CeleryPublisher
from scheduler import tracing
from scheduler.errors import SettingsError
from scheduler.settings import load_settings

from .conftest import ROOT

CLI = [sys.executable, "-m", "scheduler.cli"]


@pytest.fixture
def memory():
    """yardmaster's spans in this process go to an in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_provider(None)


def submit_in_a_process(c, *args: str) -> str:
    """Submit through the CLI (a client process of its own); the task's id."""
    done = subprocess.run(
        [*CLI, "submit", *args], env=c.env(), cwd=ROOT, capture_output=True, text=True, timeout=60
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


def spans_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_one_tasks_spans_form_one_trace_across_client_dispatcher_and_worker(cluster, tmp_path):
    path = tmp_path / "spans.jsonl"
    c = cluster(strategy="fifo", otel="file", otel_file=str(path))
    c.dispatcher()
    # Three waiting for one slot: when the worker comes, the first goes straight to its
    # queue and the other two onto the hand-off list; both routes carry the context.
    ids = [submit_in_a_process(c, "sleep", "1.0") for _ in range(3)]
    c.worker("w1@test", slots=1)
    records = c.client.wait([c.client.handle(i) for i in ids], timeout=60)
    assert [r.state for r in records] == ["succeeded"] * 3

    spans = spans_of(path)
    runs = {
        s["attributes"]["yardmaster.task.id"]: s for s in spans if s["name"] == "yardmaster.run"
    }
    assert set(runs) == set(ids)
    by_id = {s["span_id"]: s for s in spans}
    # One slot: before the first run started, at most one message could go straight to
    # the worker's queue; a run whose message was built earlier came off the hand-off list.
    first_start = min(r["start"] for r in runs.values())
    early = [t for t in ids if by_id[runs[t]["parent_id"]]["start"] < first_start]
    assert len(early) >= 2
    traces = set()
    for task_id in ids:
        run = runs[task_id]
        dispatch = by_id[run["parent_id"]]
        assert dispatch["name"] == "yardmaster.dispatch"
        assert dispatch["attributes"]["yardmaster.task.id"] == task_id
        submit = by_id[dispatch["parent_id"]]
        assert submit["name"] == "yardmaster.submit"
        assert submit["parent_id"] is None
        # the wait of this dispatch ends where it starts (a message built for the hand-off
        # list and taken back has a wait and a dispatch of its own, and no run)
        (wait,) = [
            s for s in spans
            if s["name"] == "yardmaster.wait" and s["end"] == dispatch["start"]
            and s["attributes"]["yardmaster.task.id"] == task_id
        ]  # fmt: skip
        assert wait["parent_id"] == submit["span_id"]
        assert wait["start"] <= wait["end"] <= dispatch["start"] <= run["start"]
        assert {s["trace_id"] for s in (submit, wait, dispatch, run)} == {submit["trace_id"]}
        traces.add(submit["trace_id"])
        # three processes: the client, the dispatcher and the worker's pool process
        assert submit["service"] == "yardmaster-client"
        assert dispatch["service"] == wait["service"] == "yardmaster-dispatcher"
        assert run["service"] == "yardmaster-worker"
        assert len({submit["pid"], dispatch["pid"], run["pid"]}) == 3
        assert dispatch["pid"] == c.procs["dispatcher"].pid
        assert run["attributes"] == {
            "yardmaster.task.id": task_id,
            "yardmaster.task.name": "sleep",
            "yardmaster.attempt": 1,
            "yardmaster.worker": "w1@test",
            "yardmaster.state": "succeeded",
            "process.pid": run["pid"],
        }
        assert run["events"] == ["yardmaster.finish"]
    assert len(traces) == 3  # one trace per submission, not one for everything


def test_a_failed_run_and_its_retry_are_spans_of_the_submissions_trace(cluster, tmp_path):
    path = tmp_path / "spans.jsonl"
    c = cluster(strategy="fifo", otel="file", otel_file=str(path), retry_backoff=0)
    c.dispatcher()
    c.worker("w1@test", slots=1)
    task_id = submit_in_a_process(c, "fail", "--retry", '{"max_attempts": 2, "backoff": 0}')
    c.client.wait([c.client.handle(task_id)], timeout=60)
    spans = spans_of(path)
    runs = [s for s in spans if s["name"] == "yardmaster.run"]
    assert [(r["attributes"]["yardmaster.attempt"], r["attributes"]["yardmaster.state"]) for r in
            sorted(runs, key=lambda r: r["start"])] == [(1, "retry"), (2, "failed")]  # fmt: skip
    assert runs[-1]["status"] == "ERROR"
    assert len({s["trace_id"] for s in spans}) == 1
    assert len([s for s in spans if s["name"] == "yardmaster.dispatch"]) == 2


def test_in_process_the_submit_context_reaches_the_message_headers_and_the_run(
    cluster, memory, tmp_path
):
    c = cluster(strategy="fifo")
    handle = c.client.submit("noop")
    options = c.store.tasks.payloads([handle.id])[0][4]
    entry = tracing.entry_of(options)
    assert entry is not None
    assert entry["traceparent"].startswith("00-")
    publisher = CeleryPublisher(make_celery(c.settings, c.url), c.store)
    message = json.loads(publisher.template(handle.id, "noop", "[]", "{}", options))
    headers = message["headers"]
    assert headers["traceparent"] != entry["traceparent"]

    class Request:  # what Celery makes of the message's headers: attributes
        traceparent = headers["traceparent"]

    tracing.start_run(c.settings, Request(), handle.id, "noop", 1, "w1")
    tracing.finish_run(handle.id, "succeeded")
    spans = {s.name: s for s in memory.get_finished_spans()}
    assert set(spans) == {
        "yardmaster.submit", "yardmaster.wait", "yardmaster.dispatch", "yardmaster.run"
    }  # fmt: skip
    assert len({s.context.trace_id for s in spans.values()}) == 1
    assert spans["yardmaster.run"].parent.span_id == spans["yardmaster.dispatch"].context.span_id
    assert spans["yardmaster.dispatch"].parent.span_id == spans["yardmaster.submit"].context.span_id
    assert f"{spans['yardmaster.dispatch'].context.span_id:016x}" in headers["traceparent"]


def test_without_a_tracer_provider_nothing_is_added_to_the_record_or_the_message(cluster):
    c = cluster(strategy="fifo")
    handle = c.client.submit("noop")
    options = c.store.tasks.payloads([handle.id])[0][4]
    assert tracing.entry_of(options) is None
    message = CeleryPublisher(make_celery(c.settings, c.url), c.store).template(
        handle.id, "noop", "[]", "{}", options
    )
    assert "traceparent" not in json.loads(message)["headers"]


def test_without_opentelemetry_installed_a_traced_cluster_runs_its_tasks(cluster, tmp_path):
    # A package named opentelemetry whose import fails, first on every process's path.
    shim = tmp_path / "shim" / "opentelemetry"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('opentelemetry is not installed')\n")
    path = tmp_path / "spans.jsonl"
    c = cluster(strategy="fifo", otel="file", otel_file=str(path))
    c.extra_env["PYTHONPATH"] = f"{shim.parent}{os.pathsep}{ROOT}"
    c.dispatcher()
    c.worker("w1@test", slots=1)
    task_id = submit_in_a_process(c, "sleep", "0.05")
    (record,) = c.client.wait([c.client.handle(task_id)], timeout=60)
    assert record.state == "succeeded"
    assert not path.exists()
    assert tracing.entry_of(c.store.tasks.payloads([task_id])[0][4]) is None


def test_the_no_op_path_in_process_submits_and_builds_messages(cluster, memory, monkeypatch):
    monkeypatch.setattr(tracing, "_missing", True)
    c = cluster(strategy="fifo")
    handle = c.client.submit("noop")
    options = c.store.tasks.payloads([handle.id])[0][4]
    assert options == ""
    assert tracing.dispatch(c.settings, {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
                            handle.id, "noop") == {}  # fmt: skip
    assert memory.get_finished_spans() == ()


def test_file_export_without_a_path_is_refused_naming_the_setting():
    with pytest.raises(SettingsError, match="YM_OTEL_FILE"):
        load_settings(otel="file")


def test_spans_of_opentelemetry_instrumentation_celery_join_the_same_trace(cluster, tmp_path):
    pytest.importorskip("opentelemetry.instrumentation.celery")
    path = tmp_path / "spans.jsonl"
    c = cluster(strategy="fifo", otel="file", otel_file=str(path))
    c.dispatcher()
    c.native_worker("otel@test", "tests.otel_celery_app", slots=1)
    task_id = submit_in_a_process(c, "tests.traced", "21")
    (record,) = c.client.wait([c.client.handle(task_id)], timeout=60)
    assert record.state == "succeeded"
    assert c.client.handle(task_id).result(timeout=10) == 42
    spans = spans_of(path)
    by_name = {s["name"]: s for s in spans}
    dispatch = by_name["yardmaster.dispatch"]
    # Both run spans take the dispatch span as parent: the instrumentation reads the
    # same traceparent header; the body's own span sits under the instrumentation's.
    assert by_name["yardmaster.run"]["parent_id"] == dispatch["span_id"]
    assert by_name["run/tests.traced"]["parent_id"] == dispatch["span_id"]
    assert by_name["body"]["parent_id"] == by_name["run/tests.traced"]["span_id"]
    assert len({s["trace_id"] for s in spans}) == 1


SUBMIT_DELAYED_AND_DEPENDENT = """
import json, os, time
from scheduler.client import Client
c = Client.connect(os.environ["YM_REDIS_URL"])
late = c.submit_many([{"name": "noop"}], not_before=time.time() + 0.5)
_, wf = c.submit_workflow(
    [{"id": "parent", "name": "noop"}, {"id": "child", "name": "noop", "depends_on": ["parent"]}]
)
print(json.dumps([late[0].id, wf[0].id, wf[1].id]))
"""


def test_a_countdown_tasks_and_a_dependent_tasks_spans_form_one_trace(cluster, tmp_path):
    path = tmp_path / "spans.jsonl"
    c = cluster(strategy="fifo", otel="file", otel_file=str(path))
    c.dispatcher()
    c.worker("w1@test", slots=1)
    c.wait_worker("w1@test")
    done = subprocess.run(
        [sys.executable, "-c", SUBMIT_DELAYED_AND_DEPENDENT],
        env=c.env(), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    late, parent, child = json.loads(done.stdout)
    records = c.client.wait([c.client.handle(i) for i in (late, parent, child)], timeout=60)
    assert [r.state for r in records] == ["succeeded"] * 3

    spans = spans_of(path)
    by_id = {s["span_id"]: s for s in spans}
    runs = {
        s["attributes"]["yardmaster.task.id"]: s for s in spans if s["name"] == "yardmaster.run"
    }
    submits = {}
    for task_id in (late, parent, child):
        run = runs[task_id]
        dispatch = by_id[run["parent_id"]]
        assert dispatch["name"] == "yardmaster.dispatch"
        submit = by_id[dispatch["parent_id"]]
        assert submit["name"] == "yardmaster.submit"
        assert submit["service"] == "yardmaster-client"
        waits = [
            s for s in spans
            if s["name"] == "yardmaster.wait" and s["attributes"]["yardmaster.task.id"] == task_id
        ]  # fmt: skip
        assert waits
        assert all(w["parent_id"] == submit["span_id"] for w in waits)
        assert {s["trace_id"] for s in (submit, dispatch, run, *waits)} == {submit["trace_id"]}
        submits[task_id] = submit
    # the workflow is one submission: parent and child share its span and trace
    assert submits[parent]["span_id"] == submits[child]["span_id"]
    assert submits[late]["trace_id"] != submits[parent]["trace_id"]
