"""The HTTP advisor against a small local HTTP server: every kind of answer, classified and
counted; only a valid proposal that passes the gate is proposed."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from scheduler.settings import load_settings
from scheduler.tuning.advisors import (
    AdvisorRequest,
    HttpAdvisor,
    advisor_counts,
    consult,
    summarize,
)
from scheduler.tuning.rules import current_config
from scheduler.tuning.session import Baseline, TuneOptions, tune
from scheduler.workload_gen import generate, to_jsonl

BASE = load_settings({})
SJF = json.dumps({"strategy": "sjf", "params": {"ema_alpha": 0.5}, "note": "short first"})
ANSWERS = {
    "/good": (200, SJF),
    "/malformed": (200, '{"strategy": "sjf", '),
    "/schema": (200, json.dumps({"strategy": "sjf", "params": {"weights": {}}})),
    "/unknown": (200, json.dumps({"strategy": "fastest"})),
    "/semantic": (200, json.dumps({"strategy": "weighted", "params": {"weights": {"wait": 0, "duration": 3}}})),
    "/inversion": (200, json.dumps({"strategy": "weighted", "params": {"weights": {"priority": 0}}})),
    "/empty": (200, ""),
    "/null": (200, "null"),
    "/failing": (500, "boom"),
}  # fmt: skip


class Handler(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []
    flaky = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Handler.requests.append(json.loads(body))
        if self.path == "/slow":
            time.sleep(1.5)
            status, text = 200, SJF
        elif self.path == "/flaky":  # a bad answer first, then a good one
            Handler.flaky += 1
            status, text = (200, "not json") if Handler.flaky == 1 else (200, SJF)
        else:
            status, text = ANSWERS[self.path]
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def request() -> AdvisorRequest:
    tasks = generate("mixed", 200, 1)
    return AdvisorRequest(
        objective="mean_flow",
        workers=2,
        slots=1,
        workload=summarize(tasks),
        current=current_config("priority", BASE).as_dict(),
        strategies=["priority", "sjf", "weighted"],
        spaces=[],
    )


def ask(server: str, path: str, retries: int = 0, timeout: float = 5.0):
    return consult(
        HttpAdvisor(server + path, timeout), request(), BASE, retries=retries, pause=lambda _: None
    )


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/malformed", "parse_error"),
        ("/schema", "schema_violation"),
        ("/unknown", "schema_violation"),
        ("/semantic", "semantic_violation"),
        ("/inversion", "semantic_violation"),
        ("/empty", "empty"),
        ("/null", "empty"),
        ("/failing", "transport_failure"),
    ],
)
def test_each_bad_answer_is_classified_retried_and_falls_back(server: str, path: str, kind: str):
    before = advisor_counts().get("http", {}).get(kind, 0)
    result = ask(server, path, retries=2)
    assert result.config is None  # the caller keeps the current configuration
    assert [k for k, _ in result.answers] == [kind] * 3
    assert result.counts() == {kind: 3}
    assert advisor_counts()["http"][kind] == before + 3


def test_a_slow_advisor_times_out(server: str):
    result = ask(server, "/slow", retries=1, timeout=0.3)
    assert result.config is None
    assert result.counts() == {"timed_out": 2}


def test_an_unreachable_advisor_is_a_transport_failure():
    result = consult(
        HttpAdvisor("http://127.0.0.1:9/", 1.0), request(), BASE, retries=0, pause=lambda _: None
    )
    assert result.counts() == {"transport_failure": 1}


def test_a_well_formed_answer_is_accepted_and_the_request_carries_the_summary(server: str):
    Handler.requests.clear()
    result = ask(server, "/good")
    assert result.config is not None
    assert result.config.strategy == "sjf"
    assert result.config.params == {"ema_alpha": 0.5}
    assert result.note == "short first"
    sent = Handler.requests[-1]
    assert sent["protocol"] == "yardmaster.tune/1"
    assert sent["current"] == {"strategy": "priority", "params": {"priority_aging": 0.1}}
    assert sent["workload"]["tasks"] == 200


def test_a_bad_answer_then_a_good_one_is_retried_to_success(server: str):
    Handler.flaky = 0
    result = ask(server, "/flaky", retries=2)
    assert result.config is not None
    assert [k for k, _ in result.answers] == ["parse_error", "accepted"]


def baseline_tune(tmp_path: Path, url: str, kind: str = "bursty") -> dict:
    trace = tmp_path / "w.jsonl"
    trace.write_text(to_jsonl(generate(kind, 1200, 4, workers=2)))
    options = TuneOptions(
        trace,
        workers=2,
        objective="mean_flow",
        storage=f"sqlite:///{tmp_path}/tune.db",
        advisor=HttpAdvisor(url, 5.0),
    )
    return tune(options, Baseline(current_config("priority", BASE)), BASE)


def test_a_valid_proposal_goes_through_the_gate_and_is_recorded(server: str, tmp_path: Path):
    record = baseline_tune(tmp_path, server + "/good")
    assert record["advisor"] == "http"
    assert record["advisor_answers"] == {"accepted": 1}
    assert record["best"]["strategy"] == "sjf"
    assert record["gate"]["proposed"], record["gate"]["reason"]  # sjf wins on bursts
    assert record["trials"]["complete"] == 0  # no search ran


def test_an_advisor_with_no_valid_answer_leaves_the_current_configuration(
    server: str, tmp_path: Path
):
    record = baseline_tune(tmp_path, server + "/inversion")
    assert not record["gate"]["proposed"]
    assert record["best"]["strategy"] == "priority"
    assert record["advisor_answers"] == {"semantic_violation": 3}
    assert "no valid proposal" in record["gate"]["reason"]
