"""The dashboard's parts without a browser: the series ring, the explorer's task view and
its redaction rule, filtered listing pages, and the attempts a requeue keeps (real Redis,
no worker)."""

from __future__ import annotations

import json

import pytest

from scheduler.client import Client
from scheduler.models import TaskState
from scheduler.monitor.explorer import attempts, progress, task_view, worker_view
from scheduler.monitor.series import Series
from scheduler.monitor.snapshot import Snapshot
from scheduler.redaction import HIDDEN, MAX_ITEMS, MAX_TEXT, redact_text, redact_value
from scheduler.settings import load_settings
from scheduler.store import Store, connect
from scheduler.store.tasks import StoredTask
from scheduler.store.workers import StoredWorker


def summary(p50: float | None = None, p95: float | None = None) -> dict:
    return {"count": 0, "sum": 0.0, "mean": None, "p50": p50, "p95": p95, "p99": None}


def snap(
    t: float, *, backlog: int = 0, waits: dict[str, tuple[float, float]] | None = None
) -> Snapshot:
    """A monitor snapshot at time ``t`` with the figures the series keeps set."""
    by_priority = {p: summary(a, b) for p, (a, b) in (waits or {}).items()}
    no_runs = {"all": summary(), "by_task": {}, "by_priority": {}}
    rate = {"finished": 0, "failed": 0, "ratio": 0.0}
    return Snapshot.from_dict(
        {
            "time": t,
            "dispatcher": {"leader": True, "strategy": "fifo", "strategy_switches": 0,
                           "recent_switches": []},
            "workers": [],
            "slots": {"total": 2, "busy": 1, "free": 1, "utilization": 0.5},
            "backlog": {"total": backlog, "by_priority": {}},
            "counters": {},
            "throughput": {"total": {"1s": t / 10, "1m": 1.0, "5m": 0.5}, "by_task": {}},
            "latency": {"wait": {**no_runs, "by_priority": by_priority}, "run": no_runs},
            "deadlines": {"finished": 0, "missed": 0, "miss_ratio": 0.0},
            "prediction": {"by_task": {}, "samples": 0, "mean_rel_error": None},
            "failures": {"short": rate, "long": rate},
            "cache": None,
            "windows": {"short_s": 60.0, "long_s": 300.0},
            "anomalies": [],
            "health": {"score": 90.0, "status": "healthy", "components": {}, "reasons": []},
            "redis": {"used_bytes": 10, "max_bytes": 100, "ratio": 0.1},
        }
    )  # fmt: skip


def test_the_series_keeps_the_newest_points_and_returns_those_after_a_time():
    ring = Series(points=3)
    for t in range(1, 6):
        ring.add(snap(float(t), backlog=t))
    assert len(ring) == 3
    cols = ring.columns()
    assert cols["time"] == [3.0, 4.0, 5.0]
    assert cols["backlog"] == [3, 4, 5]
    assert cols["redis_memory_ratio"] == [0.1] * 3
    assert ring.columns(since=4.0)["time"] == [5.0]
    assert ring.columns(since=5.0)["time"] == []


def test_the_series_gives_each_priority_its_own_wait_column_with_gaps_as_null():
    ring = Series()
    ring.add(snap(1.0, waits={"7": (0.1, 0.2)}))
    ring.add(snap(2.0, waits={"7": (0.3, 0.4), "2": (1.0, 2.0)}))
    cols = ring.columns()
    assert list(cols["wait_p95"]) == ["7", "2"]  # highest priority first
    assert cols["wait_p95"]["7"] == [0.2, 0.4]
    assert cols["wait_p50"]["2"] == [None, 1.0]


def test_redaction_hides_secret_named_keys_url_passwords_and_cuts_long_values():
    value = {
        "Password": "pw",
        "db_url": "postgres://app:s3cret@db/x",
        "api_key": {"nested": 1},
        "auth_header": "Bearer abc",
        "size": 3,
        "items": list(range(MAX_ITEMS + 5)),
        "text": "x" * (MAX_TEXT + 1),
        "deep": [[[[[[[["bottom"]]]]]]]],
    }
    shown = redact_value(value)
    assert shown["Password"] == shown["api_key"] == shown["auth_header"] == HIDDEN
    assert shown["db_url"] == f"postgres://app:{HIDDEN}@db/x"
    assert shown["size"] == 3
    assert shown["items"][:MAX_ITEMS] == list(range(MAX_ITEMS))
    assert shown["items"][-1] == "… 5 more"
    assert shown["text"].endswith(f"… ({MAX_TEXT + 1} characters)")
    assert "bottom" not in json.dumps(shown)
    assert redact_value(["redis://:pw@h:6379/0"]) == [f"redis://:{HIDDEN}@h:6379/0"]
    assert redact_text("see rediss://u:p@h and http://plain/host") == (
        f"see rediss://u:{HIDDEN}@h and http://plain/host"
    )


def test_the_task_view_lists_kept_attempts_then_the_current_one_and_redacts():
    fields = {
        "name": "resize",
        "state": "succeeded",
        "priority": "7",
        "attempt": "3",
        "worker": "w2",
        "submitted_at": "100.0",
        "dispatched_at": "105.0",
        "started_at": "105.5",
        "finished_at": "106.0",
        "args": json.dumps(["redis://u:pw@h/0", 2]),
        "kwargs": json.dumps({"token": "t", "n": 1}),
        "result": json.dumps({"ok": True}),
        "attempt_1": json.dumps(
            {
                "dispatched_at": "100.5",
                "started_at": "101",
                "ended_at": "102",
                "worker": "w1",
                "outcome": "retry",
                "error": "OSError: redis://:pw@h down",
            }
        ),
        "attempt_2": json.dumps(
            {
                "dispatched_at": "103",
                "started_at": "",
                "ended_at": "104",
                "worker": "w1",
                "outcome": "requeued",
            }
        ),
    }
    view = task_view(StoredTask("t1", fields, None))
    assert view["source"] == "record"
    assert view["priority"] == 7
    assert [(a["attempt"], a["outcome"], a["worker"]) for a in view["attempts"]] == [
        (1, "retry", "w1"),
        (2, "requeued", "w1"),
        (3, "succeeded", "w2"),
    ]
    assert view["attempts"][0]["error"] == f"OSError: redis://:{HIDDEN}@h down"
    assert view["attempts"][1]["started_at"] is None
    assert view["attempts"][2]["ended_at"] == 106.0
    assert view["args"] == [f"redis://u:{HIDDEN}@h/0", 2]
    assert view["kwargs"] == {"token": HIDDEN, "n": 1}
    assert view["result"] == {"ok": True}
    assert view["progress"] is None


def test_a_task_waiting_out_a_retry_has_no_current_attempt_beyond_the_kept_one():
    kept = json.dumps({"dispatched_at": "1", "ended_at": "2", "outcome": "retry"})
    fields = {"state": "pending", "attempt": "1", "attempt_1": kept}
    assert [a["attempt"] for a in attempts(fields)] == [1]
    assert attempts({"state": "pending", "attempt": "0"}) == []


def test_progress_shows_the_records_progress_fields_when_present():
    assert progress({"state": "running"}) is None
    shown = progress({"progress_done": "3", "progress_total": "10", "progress_at": "5.5"})
    assert shown == {"done": 3.0, "total": 10.0, "note": "", "at": 5.5}


def test_an_expired_record_is_shown_from_its_terminal_event():
    event = {"id": "t9", "name": "noop", "state": "failed", "worker": "w", "attempt": "1",
             "submitted_at": "1", "dispatched_at": "2", "started_at": "3",
             "finished_at": "4", "expected": ""}  # fmt: skip
    view = task_view(StoredTask("t9", {}, event))
    assert view["source"] == "event"
    assert view["state"] == "failed"
    assert view["attempts"] == [
        {"attempt": 1, "worker": "w", "dispatched_at": 2.0, "started_at": 3.0,
         "ended_at": 4.0, "outcome": "failed", "error": None}
    ]  # fmt: skip


def test_a_worker_view_shows_resources_and_labels_only_when_its_record_has_them():
    plain = worker_view(StoredWorker("a", {"slots": "2", "heartbeat": "9"}, ["t1"]), now=10.0)
    assert plain["in_flight"] == 1
    assert plain["free"] == 1
    assert plain["heartbeat_age"] == 1.0
    assert "resources" not in plain
    assert "labels" not in plain
    fields = {"slots": "4", "resources": '{"gpu": 2}', "labels": '{"zone": "eu"}'}
    rich = worker_view(StoredWorker("b", fields, []), now=0.0)
    assert rich["resources"] == {"gpu": 2}
    assert rich["labels"] == {"zone": "eu"}


@pytest.fixture
def store(redis_server):
    settings = load_settings(redis_url=redis_server.url, namespace="units")
    return Store(connect(redis_server.url), settings)


def test_filtered_pages_cover_exactly_the_matching_tasks_in_order(store):
    client = Client(store, known_tasks=["noop", "sleep"])
    names = ["noop" if i % 3 else "sleep" for i in range(40)]
    handles = client.submit_many([{"name": n} for n in names])
    wanted = [h.id for h, n in zip(handles, names, strict=True) if n == "sleep"]

    seen: list[str] = []
    cursor = None
    for _ in range(100):
        page, cursor = store.tasks.find(TaskState.PENDING, 3, cursor, name="SLE", budget=2)
        assert len(page) <= 3
        seen += [r.id for r in page]
        if cursor is None:
            break
    assert seen == wanted
    everything, _ = store.tasks.find(TaskState.PENDING, 100)
    assert [r.id for r in everything] == [r.id for r in store.tasks.page(TaskState.PENDING, 100)[0]]
    none, end = store.tasks.find(TaskState.PENDING, 5, worker="nobody")
    assert none == []
    assert end is None


def test_a_requeue_keeps_the_ended_attempts_times_for_the_timeline(store):
    worker = "w@units"
    store.workers.register(worker, 1, "host", 1, ["noop"])
    [handle] = Client(store, known_tasks=["noop"]).submit_many([{"name": "noop"}])
    [claim] = store.pending.claim([(handle.id, worker)])
    assert claim.status == "ok"
    assert store.pending.requeue(worker) == 1
    found = store.tasks.stored(handle.id)
    assert found is not None
    [kept] = attempts(found.fields)
    assert kept["attempt"] == 1
    assert kept["outcome"] == "requeued"
    assert kept["worker"] == worker
    assert kept["dispatched_at"] == pytest.approx(claim.at)
    assert kept["ended_at"] >= kept["dispatched_at"]
    assert store.tasks.stored("no-such-task") is None
