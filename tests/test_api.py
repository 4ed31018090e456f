"""The HTTP API over real HTTP against a live stack: submit, inspect, cancel, steer;
authentication and limits, each refusal leaving everything else as it was."""

from __future__ import annotations

import pickle
import time

import httpx
import pytest

from tests.api_live import TOKENS, auth, live_stack

ADMIN, SUBMIT, READ = auth("admin"), auth("submit"), auth("read")


@pytest.fixture(scope="module")
def api_stack(tmp_path_factory):
    with live_stack(tmp_path_factory.mktemp("api")) as stack:
        yield stack


def _result(api, task_id, wait=30):
    reply = api.http.get(f"/v1/tasks/{task_id}/result", params={"wait": wait}, headers=READ)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_a_task_submitted_over_http_runs_and_its_result_and_record_come_back(api_stack):
    api = api_stack
    reply = api.http.post("/v1/tasks", json={"name": "sleep", "args": [0.01]}, headers=SUBMIT)
    assert reply.status_code == 201, reply.text
    task_id = reply.json()["id"]
    assert reply.json()["state"] == "pending"

    outcome = _result(api, task_id)
    assert outcome["done"] is True
    assert outcome["state"] == "succeeded"
    assert outcome["result"]["slept"] == 0.01

    record = api.http.get(f"/v1/tasks/{task_id}", headers=READ).json()
    assert record["state"] == "succeeded"
    assert record["worker"] == "w1@api"
    assert record["started_at"] >= record["submitted_at"]

    failing = api.http.post("/v1/tasks", json={"name": "fail"}, headers=SUBMIT).json()["id"]
    failed = _result(api, failing)
    assert failed["state"] == "failed"
    assert failed["error"]

    missing = api.http.get("/v1/tasks/nosuchtask", headers=READ)
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


def test_a_batch_is_accepted_whole_and_finished_tasks_are_listed_page_by_page(api_stack):
    api = api_stack
    batch = [{"name": "noop", "priority": p} for p in range(5)]
    reply = api.http.post("/v1/tasks/batch", json={"tasks": batch}, headers=SUBMIT)
    assert reply.status_code == 201, reply.text
    ids = [t["id"] for t in reply.json()["tasks"]]
    assert len(set(ids)) == 5
    for task_id in ids:
        assert _result(api, task_id)["state"] == "succeeded"

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"state": "succeeded", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.http.get("/v1/tasks", params=params, headers=READ).json()
        pages += 1
        assert len(page["tasks"]) <= 2
        assert all(t["state"] == "succeeded" for t in page["tasks"])
        seen += [t["id"] for t in page["tasks"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a task appeared on two pages"
    assert set(ids) <= set(seen)
    assert pages >= 3
    # newest first: the batch finished last, so it leads the list
    assert set(seen[:5]) == set(ids)

    bad = api.http.get("/v1/tasks", params={"state": "pending", "cursor": "x!"}, headers=READ)
    assert bad.status_code == 422
    assert bad.json()["field"] == "cursor"


def test_pending_tasks_are_listed_in_submission_order_and_cancelled_before_they_start(
    api_stack,
):
    api = api_stack
    blockers = [
        api.http.post("/v1/tasks", json={"name": "sleep", "args": [1.5]}, headers=SUBMIT).json()[
            "id"
        ]
        for _ in range(2)
    ]
    deadline = time.monotonic() + 30
    while True:
        running = api.http.get("/v1/tasks", params={"state": "running"}, headers=READ).json()
        if {t["id"] for t in running["tasks"]} == set(blockers):
            break
        assert time.monotonic() < deadline, running
        time.sleep(0.05)

    waiting = [
        api.http.post("/v1/tasks", json={"name": "noop"}, headers=SUBMIT).json()["id"]
        for _ in range(5)
    ]
    listed: list[str] = []
    cursor = None
    while True:
        params = {"state": "pending", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.http.get("/v1/tasks", params=params, headers=READ).json()
        listed += [t["id"] for t in page["tasks"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert listed == waiting

    for task_id in waiting[:3]:
        reply = api.http.post(f"/v1/tasks/{task_id}/cancel", headers=SUBMIT)
        assert reply.status_code == 200
        assert reply.json() == {"id": task_id, "cancelled": True, "state": "cancelled"}
    again = api.http.post(f"/v1/tasks/{waiting[0]}/cancel", headers=SUBMIT).json()
    assert again == {"id": waiting[0], "cancelled": False, "state": "cancelled"}
    busy = api.http.post(f"/v1/tasks/{blockers[0]}/cancel", headers=SUBMIT).json()
    assert busy["cancelled"] is False
    assert busy["state"] == "running"
    assert api.http.post("/v1/tasks/nosuch/cancel", headers=SUBMIT).status_code == 404

    for task_id in waiting[:3]:
        assert _result(api, task_id)["state"] == "cancelled"
    for task_id in waiting[3:] + blockers:
        assert _result(api, task_id)["state"] == "succeeded"


def test_workers_liveness_and_readiness_report_the_live_cluster(api_stack):
    api = api_stack
    workers = api.http.get("/v1/workers", headers=READ).json()["workers"]
    assert [w["name"] for w in workers] == ["w1@api"]
    assert workers[0]["slots"] == 2
    assert api.http.get("/healthz/live").json() == {"status": "ok"}
    ready = api.http.get("/healthz/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "redis": True, "dispatcher_leader": True, "workers": 1}


def test_the_strategy_is_steered_versioned_and_rolled_back_over_http(api_stack):
    api = api_stack
    start = len(api.http.get("/v1/strategy/history", headers=READ).json()["versions"])
    first = api.http.put(
        "/v1/strategy",
        json={"strategy": "fifo", "note": "api test"},
        headers=ADMIN,
    )
    assert first.status_code == 200, first.text
    v1 = first.json()
    assert v1["strategy"] == "fifo"
    assert v1["who"] == "api:admin-user"
    second = api.http.put(
        "/v1/strategy",
        json={"strategy": "priority", "params": {"priority_aging": 0.5}},
        headers=ADMIN,
    ).json()
    assert second["version"] == v1["version"] + 1
    assert second["params"] == {"priority_aging": 0.5}

    deadline = time.monotonic() + 30
    while True:
        shown = api.http.get("/v1/strategy", headers=READ).json()
        if shown["active"] and shown["active"]["version"] >= second["version"]:
            break
        assert time.monotonic() < deadline, shown
        time.sleep(0.05)
    assert shown["config"]["version"] == second["version"]
    assert shown["active"]["strategy"] == "priority"

    back = api.http.post("/v1/strategy/rollback", json={}, headers=ADMIN).json()
    assert back["strategy"] == "fifo"
    assert back["version"] == second["version"] + 1
    assert "rollback to version" in back["note"]
    history = api.http.get("/v1/strategy/history", headers=READ).json()["versions"]
    assert [v["strategy"] for v in history[start:]] == ["fifo", "priority", "fifo"]

    stale = api.http.put(
        "/v1/strategy", json={"strategy": "sjf", "expected_version": v1["version"]}, headers=ADMIN
    )
    assert stale.status_code == 409
    assert stale.json()["code"] == "conflict"
    unknown = api.http.put("/v1/strategy", json={"strategy": "random"}, headers=ADMIN)
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "strategy"
    out_of_range = api.http.put(
        "/v1/strategy",
        json={"strategy": "priority", "params": {"priority_aging": -1}},
        headers=ADMIN,
    )
    assert out_of_range.status_code == 422
    assert out_of_range.json()["field"] == "priority_aging"
    current = api.http.get("/v1/strategy", headers=READ).json()["config"]
    assert current["version"] == back["version"], "a refused change must not make a version"

    # A guarded change over HTTP, as `strategy set --guard`; no monitor runs in this stack,
    # and the strategy's view says so (nothing watches the version until one starts).
    unguarded = api.http.put("/v1/strategy", json={"strategy": "fifo", "window": 60}, headers=ADMIN)
    assert unguarded.status_code == 422
    assert unguarded.json()["field"] == "window"
    guarded = api.http.put(
        "/v1/strategy", json={"strategy": "fifo", "guard": True, "window": 60}, headers=ADMIN
    )
    assert guarded.status_code == 200, guarded.text
    assert guarded.json()["guard"]["window"] == 60.0
    assert guarded.json()["guard"]["previous"]["version"] == back["version"]
    view = api.http.get("/v1/strategy", headers=READ).json()
    assert view["config"]["guard"] == guarded.json()["guard"]
    assert view["guard_running"] is False
    assert api.http.post("/v1/strategy/rollback", json={}, headers=ADMIN).status_code == 200


def test_no_token_a_wrong_token_and_a_read_token_steering_are_each_refused(api_stack):
    api = api_stack
    version = api.http.get("/v1/strategy", headers=READ).json()["config"]
    before = (api.counters(), api.pending_ids())
    change = {"strategy": "edf"}

    none = api.http.put("/v1/strategy", json=change)
    assert none.status_code == 401
    assert none.json()["code"] == "unauthorized"
    assert none.headers["WWW-Authenticate"] == "Bearer"
    wrong = api.http.put(
        "/v1/strategy", json=change, headers={"Authorization": "Bearer not-a-known-token-at-all"}
    )
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "unauthorized"
    basic = api.http.get("/v1/workers", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401

    for scoped in (READ, SUBMIT):
        for method, path, body in (
            ("PUT", "/v1/strategy", change),
            ("POST", "/v1/strategy/rollback", {}),
        ):
            refused = api.http.request(method, path, json=body, headers=scoped)
            assert refused.status_code == 403, (scoped, path)
            assert refused.json()["code"] == "forbidden"
            assert "admin" in refused.json()["message"]
    read_submits = api.http.post("/v1/tasks", json={"name": "noop"}, headers=READ)
    assert read_submits.status_code == 403
    assert api.http.post("/v1/tasks", json={"name": "noop"}).status_code == 401

    assert api.http.get("/v1/strategy", headers=READ).json()["config"] == version
    assert (api.counters(), api.pending_ids()) == before
    # the secrets never reach the API's log (it runs with access logging on)
    log = (api.log_dir / "api.log").read_text(errors="replace")
    assert "POST /v1/tasks" in log
    assert not any(secret in log for secret in TOKENS.values())


def test_oversized_body_args_batch_and_unknown_task_are_refused_and_nothing_is_disturbed(
    api_stack,
):
    api = api_stack
    keep = api.http.post("/v1/tasks", json={"name": "noop"}, headers=SUBMIT).json()["id"]
    api.wait_idle()
    kept = api.http.get(f"/v1/tasks/{keep}", headers=READ).json()
    before = (api.counters(), api.pending_ids())
    refusals = []

    big_body = api.http.post(
        "/v1/tasks", json={"name": "noop", "args": ["x" * 70_000]}, headers=SUBMIT
    )
    refusals.append((big_body, 413, "body_too_large", "body"))

    def chunks():
        yield b'{"name": "noop", "args": ["'
        for _ in range(100):
            yield b"y" * 1000
        yield b'"]}'

    chunked = api.http.post(
        "/v1/tasks",
        content=chunks(),
        headers={**SUBMIT, "Content-Type": "application/json"},
    )
    refusals.append((chunked, 413, "body_too_large", "body"))

    big_args = api.http.post(
        "/v1/tasks", json={"name": "noop", "kwargs": {"blob": "z" * 5000}}, headers=SUBMIT
    )
    refusals.append((big_args, 422, "too_large", "args"))
    big_in_batch = api.http.post(
        "/v1/tasks/batch",
        json={"tasks": [{"name": "noop"}, {"name": "noop", "args": ["z" * 5000]}]},
        headers=SUBMIT,
    )
    refusals.append((big_in_batch, 422, "too_large", "tasks[1].args"))
    big_batch = api.http.post(
        "/v1/tasks/batch", json={"tasks": [{"name": "noop"}] * 51}, headers=SUBMIT
    )
    refusals.append((big_batch, 422, "too_large", "tasks"))
    unknown = api.http.post("/v1/tasks", json={"name": "resize_images"}, headers=SUBMIT)
    refusals.append((unknown, 422, "unknown_task", "name"))
    unknown_in_batch = api.http.post(
        "/v1/tasks/batch",
        json={"tasks": [{"name": "noop"}, {"name": "noop"}, {"name": "nope"}]},
        headers=SUBMIT,
    )
    refusals.append((unknown_in_batch, 422, "unknown_task", "tasks[2].name"))
    bad_priority = api.http.post("/v1/tasks", json={"name": "noop", "priority": 12}, headers=SUBMIT)
    refusals.append((bad_priority, 422, "invalid_input", "priority"))
    extra = api.http.post("/v1/tasks", json={"name": "noop", "exchange": "x"}, headers=SUBMIT)
    refusals.append((extra, 422, "invalid_input", "exchange"))
    nan = api.http.post(
        "/v1/tasks/batch",
        content=b'{"tasks": [{"name": "noop"}, {"name": "noop", "args": [NaN]}]}',
        headers={**SUBMIT, "Content-Type": "application/json"},
    )
    refusals.append((nan, 422, "invalid_input", "tasks[1].args"))
    as_text = api.http.post("/v1/tasks", json={"name": "noop", "priority": "7"}, headers=SUBMIT)
    refusals.append((as_text, 422, "invalid_input", "priority"))

    for reply, status, code, field in refusals:
        assert reply.status_code == status, reply.text
        body = reply.json()
        assert body["code"] == code, body
        assert body["field"] == field, body
        assert body["message"]
    assert "4096" in big_args.json()["message"]
    assert "50" in big_batch.json()["message"]
    assert "noop" in unknown.json()["message"]  # says what is registered

    assert (api.counters(), api.pending_ids()) == before
    assert api.http.get(f"/v1/tasks/{keep}", headers=READ).json() == kept


class _Boom:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_a_pickle_payload_is_refused_by_the_api(api_stack):
    api = api_stack
    api.wait_idle()
    before = (api.counters(), api.pending_ids())
    payload = pickle.dumps({"name": "noop", "args": [_Boom()]})

    as_pickle = api.http.post(
        "/v1/tasks",
        content=payload,
        headers={**SUBMIT, "Content-Type": "application/python-pickle"},
    )
    assert as_pickle.status_code == 415
    assert as_pickle.json()["code"] == "unsupported_media_type"
    assert as_pickle.json()["field"] == "Content-Type"

    disguised = api.http.post(
        "/v1/tasks", content=payload, headers={**SUBMIT, "Content-Type": "application/json"}
    )
    assert disguised.status_code == 422
    assert disguised.json()["code"] == "invalid_json"

    assert (api.counters(), api.pending_ids()) == before
    assert "unpickled!" not in (api.log_dir / "api.log").read_text(errors="replace")


def test_the_rate_limit_is_per_token_and_answers_429_with_retry_after(api_stack):
    api = api_stack
    url = api.api("api-slow", YM_API_RATE="0.2", YM_API_BURST="3")
    with httpx.Client(base_url=url, timeout=30) as http:
        codes = [http.get("/v1/workers", headers=READ).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = http.get("/v1/workers", headers=READ)
        assert limited.status_code == 429
        assert limited.json()["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) >= 1
        # another token has its own allowance
        assert http.get("/v1/workers", headers=auth("admin")).status_code == 200


def test_the_api_serves_the_monitor_behind_the_read_scope(api_stack):
    api = api_stack
    assert api.http.get("/metrics").status_code == 401
    assert api.http.get("/dashboard").status_code == 401
    metrics = api.http.get("/metrics", headers=READ)
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    # the registered worker appears in the exposition, as the monitor counts it
    assert "ym_workers" in metrics.text
    assert 'worker="w1@api"' in metrics.text
    page = api.http.get("/dashboard", headers=READ)
    assert page.status_code == 200
    assert "<html" in page.text.lower()
    snapshot = api.http.get("/monitor/snapshot", headers=READ).json()
    assert [w["name"] for w in snapshot["workers"]] == ["w1@api"]
    # the monitor's routes stay out of the API's OpenAPI document
    paths = api.http.get("/openapi.json").json()["paths"]
    assert not any(p.startswith(("/metrics", "/dashboard", "/monitor")) for p in paths)


def test_a_retried_task_shows_its_attempts_and_last_error_over_http(api_stack):
    api = api_stack
    key = "api-flaky-" + str(time.time_ns())
    body = {"name": "flaky", "args": [key, 1], "retry": {"max_attempts": 3, "backoff": 0.1}}
    reply = api.http.post("/v1/tasks", json=body, headers=SUBMIT)
    assert reply.status_code == 201, reply.text
    task_id = reply.json()["id"]
    outcome = _result(api, task_id)
    assert outcome["state"] == "succeeded"
    assert outcome["result"] == 2  # the second run succeeded
    info = api.http.get(f"/v1/tasks/{task_id}", headers=READ).json()
    assert info["attempt"] == 2
    assert info["max_attempts"] == 3
    assert f"{key}: run 1 of 1 planned failures" in info["last_error"]


def test_a_submission_answered_without_a_new_run_says_so_over_http(api_stack):
    api = api_stack
    body = {"name": "sleep", "args": [0.3], "coalesce": True}
    first = api.http.post("/v1/tasks", json=body, headers=SUBMIT).json()
    assert "answered_by" not in first or first["answered_by"] is None
    second = api.http.post("/v1/tasks", json=body, headers=SUBMIT).json()
    assert second["id"] == first["id"]
    assert second["answered_by"] == "coalesced"
    assert second["state"] in ("pending", "dispatched", "running")

    keyed = {"name": "noop", "idempotency_key": f"api-{time.monotonic_ns()}"}
    made = api.http.post("/v1/tasks/batch", json={"tasks": [keyed]}, headers=SUBMIT).json()
    again = api.http.post("/v1/tasks/batch", json={"tasks": [keyed]}, headers=SUBMIT).json()
    assert again["tasks"][0]["id"] == made["tasks"][0]["id"]
    assert again["tasks"][0]["answered_by"] == "idempotent"
    assert _result(api, first["id"])["state"] == "succeeded"
