"""schemathesis against the OpenAPI document the live API serves: generated requests,
valid and invalid, never get a 5xx, and every answer is one the document lists, with the
documented body, headers and content type."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.api_live import TOKENS, live_stack

# Every check but positive_data_acceptance: a schema-valid request may still be refused
# for what no schema can say (a task name no worker registers, a cursor from no earlier
# page, a rollback with no earlier version); those refusals are 404/409/422 answers
# the document lists, which status_code_conformance checks.
CHECKS = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]
MAX_EXAMPLES = 20


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with live_stack(tmp_path_factory.mktemp("schema")) as live:
        yield live


def test_generated_requests_get_no_server_error_and_only_documented_answers(stack):
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    assert st, "schemathesis is a dev dependency"
    cmd = [st, "run", f"{stack.url}/openapi.json", *CHECKS]
    cmd += ["--header", f"Authorization: Bearer {TOKENS['admin']}"]
    cmd += ["--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--request-timeout", "40"]
    # GET /v1/tasks/{id}/result long-polls for up to wait=30 s by design (a generated
    # task may still be queued behind others), so the response-time check allows that
    cmd += ["--max-response-time", "45"]
    # generation health checks (too slow on a loaded machine, ...) are not API failures
    cmd += ["--suppress-health-check", "all", "--no-color"]
    # run where its cache (.schemathesis/) stays out of the source tree
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=stack.log_dir)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert "passed" in report
    assert " 0 passed" not in report
    # the cluster is still whole and nothing went wrong inside the API
    assert httpx.get(stack.url + "/healthz/ready").status_code == 200
    log = (stack.log_dir / "api.log").read_text(errors="replace")
    assert "unhandled error" not in log
    assert '" 500 ' not in log
    assert '" 503 ' not in log
    # generated submissions reached the cluster (the examples and the stateful phase)
    assert stack.counters().get("submitted", 0) > 0
    for proc in stack.cluster.procs.values():
        assert proc.poll() is None


def test_the_served_document_lists_every_operation_with_its_error_answers(stack):
    doc = httpx.get(stack.url + "/openapi.json").json()
    ops = {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}
    assert set(ops) >= {
        ("POST", "/v1/tasks"),
        ("POST", "/v1/tasks/batch"),
        ("GET", "/v1/tasks"),
        ("GET", "/v1/tasks/{task_id}"),
        ("GET", "/v1/tasks/{task_id}/result"),
        ("POST", "/v1/tasks/{task_id}/cancel"),
        ("GET", "/v1/workers"),
        ("GET", "/v1/strategy"),
        ("PUT", "/v1/strategy"),
        ("GET", "/v1/strategy/history"),
        ("POST", "/v1/strategy/rollback"),
        ("GET", "/healthz/live"),
        ("GET", "/healthz/ready"),
    }
    for (method, p), op in ops.items():
        if p.startswith("/healthz"):
            assert "security" not in op
            continue
        assert op["security"] == [{"HTTPBearer": []}], p
        for status in ("401", "403", "429", "503"):
            body = op["responses"][status]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/ErrorBody"}, (method, p, status)
        if method in ("POST", "PUT") and "requestBody" in op:
            assert {"413", "415", "422"} <= set(op["responses"]), (method, p)
    error = doc["components"]["schemas"]["ErrorBody"]
    assert set(error["required"]) == {"code", "message"}
    assert "field" in error["properties"]
