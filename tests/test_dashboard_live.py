"""Dashboard v2 in headless Chromium during a live run: charts over time, the task
explorer, workers with their records, and a strategy rollback that needs the admin token.

A real cluster (private Redis, a dispatcher, two Celery workers) runs while a
thread keeps submitting tasks; ``yardmaster monitor`` serves the page and,
with ``YM_API_TOKENS`` set, the HTTP API under ``/api``. The page is driven
over the DevTools protocol (tests/cdp.py): typed into, clicked, read back and
screenshotted. The screenshots are saved to docs/img/dashboard-*.png.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import httpx
import pytest

from scheduler.embedded import free_port
from scheduler.models import TaskState
from tests.api_live import TOKENS, tokens_json
from tests.cdp import Browser
from tests.test_dashboard_browser import CHROMIUM

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
CHARTS = (
    "chart-throughput",
    "chart-wait",
    "chart-backlog",
    "chart-utilization",
    "chart-health",
    "chart-memory",
)


class Feeder(threading.Thread):
    """Keeps tasks flowing: a small batch of sleeps of mixed priorities every 0.3 s."""

    def __init__(self, client) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.stop = threading.Event()
        self.submitted = 0

    def run(self) -> None:
        i = 0
        while not self.stop.wait(0.3):
            batch = [
                {"name": "sleep", "args": [0.02 + 0.01 * (j % 4)], "priority": (i + j) % 10}
                for j in range(6)
            ]
            self.client.submit_many(batch)
            self.submitted += len(batch)
            i += 1


def _text(b: Browser, ident: str) -> str:
    return b.js(f"document.getElementById({ident!r}).textContent")


def _data(b: Browser, ident: str, key: str) -> str:
    return b.js(f"document.getElementById({ident!r}).dataset.{key} || ''")


def _set(b: Browser, ident: str, value: str) -> None:
    b.js(f"document.getElementById({ident!r}).value = {json.dumps(value)}")


def _click(b: Browser, ident: str) -> None:
    b.js(f"document.getElementById({ident!r}).click()")


def test_the_dashboard_charts_explores_and_rolls_back_during_a_live_run(cluster, tmp_path):
    c = cluster(api_tokens=tokens_json(), strategy="priority", monitor_interval=0.5)
    c.dispatcher()
    c.worker("ui1@test", slots=2)
    c.worker("ui2@test", slots=2)
    # Resources and labels come with another feature; the page shows whatever JSON a
    # worker's record holds under those names.
    c.store.client.hset(
        c.store.keys.worker("ui2@test"),
        mapping={"resources": json.dumps({"gpu": 1}), "labels": json.dumps({"zone": "eu"})},
    )
    port = free_port()
    c.monitor(port)
    base = f"http://127.0.0.1:{port}"
    c.wait_for(lambda: _reachable(base + "/monitor/health"), "monitor")
    assert httpx.get(base + "/monitor/config").json() == {"api": "api/"}

    first = c.client.set_strategy("fifo", who="test", note="drain in order")
    second = c.client.set_strategy("priority", {"priority_aging": 0.5}, who="test")
    # A task retried twice then failed (three attempts), and one whose error names a
    # Redis URL with a password.
    flaky = c.client.submit("flaky", ["ui", 99], retry={"max_attempts": 3, "backoff": 0.05})
    secret = c.client.submit("fail", kwargs={"message": "cannot reach redis://app:hunter2@db:6379"})
    c.client.wait([flaky, secret], timeout=60)
    assert flaky.record().attempt == 3

    feeder = Feeder(c.client)
    feeder.start()
    try:
        with Browser(tmp_path / "chromium") as b:
            b.goto(base + "/dashboard")
            b.wait("Number(document.body.dataset.polls || 0) >= 3")
            for chart in CHARTS:
                b.wait(f"Number(document.getElementById('{chart}').dataset.points) >= 4")
            b.wait("Number(document.getElementById('finished').dataset.v) > 10")
            # a few more seconds of the run, so that the overview's charts show a trend
            b.wait("Number(document.getElementById('chart-health').dataset.points) >= 16")
            series = httpx.get(base + "/monitor/series").json()
            assert len(series["time"]) >= int(_data(b, "chart-throughput", "points"))
            assert max(series["throughput_1m"]) > 0
            assert series["wait_p95"], "no priority has a wait series"
            # Workers: slots and in-flight counts, resources and labels as stored.
            b.wait("document.getElementById('worker-table').textContent.includes('zone')")
            table = _text(b, "worker-table")
            assert "ui1@test" in table
            assert "ui2@test" in table
            assert '{"gpu":1}' in table
            assert '{"zone":"eu"}' in table
            b.screenshot(tmp_path / "dashboard-overview.png")

            # The explorer finds the flaky task by id and shows its three attempts.
            _set(b, "q-id", flaky.id)
            _click(b, "open-id")
            b.wait(f"document.getElementById('task-detail').dataset.id === {flaky.id!r}")
            outcomes = b.js(
                "Array.from(document.querySelectorAll('#timeline .attempt'))"
                ".map((a) => [Number(a.dataset.attempt), a.dataset.outcome])"
            )
            assert outcomes == [[1, "retry"], [2, "retry"], [3, "failed"]]
            assert "run 3 of 99" in _text(b, "t-outcome")
            assert "run 2 of 99" in _text(b, "t-outcome")  # the last retried attempt's error
            assert _text(b, "task-progress") == "none reported"
            b.js("document.getElementById('explorer').scrollIntoView()")
            b.screenshot(tmp_path / "dashboard-task.png")

            # Its error is shown with the URL's password hidden.
            _set(b, "q-id", secret.id)
            _click(b, "open-id")
            b.wait(f"document.getElementById('task-detail').dataset.id === {secret.id!r}")
            shown = _text(b, "t-outcome") + _text(b, "t-args")
            assert "redis://app:<hidden>@db:6379" in shown
            assert "hunter2" not in shown

            # Progress fields on a record (reported by tasks in a later feature) show.
            done = c.client.submit("sleep", [0.01])
            c.client.wait([done], timeout=30)
            c.store.client.hset(
                c.store.keys.task(done.id),
                mapping={"progress_done": 3, "progress_total": 10, "progress_note": "resizing"},
            )
            b.js(f"location.hash = 'task={done.id}'")
            b.wait(f"document.getElementById('task-detail').dataset.id === {done.id!r}")
            assert _text(b, "task-progress").startswith("3 / 10 — resizing")

            # Search by state, name and worker.
            _set(b, "q-state", "succeeded")
            _set(b, "q-name", "slee")
            _set(b, "q-worker", "ui2")
            _click(b, "search")
            b.wait("Number(document.getElementById('task-rows').dataset.count || 0) > 0")
            found = b.js(
                "Array.from(document.querySelectorAll('#task-rows tr.pick'))"
                ".map((r) => JSON.parse(r.dataset.row))"
            )
            assert all(t["name"] == "sleep" and t["worker"] == "ui2@test" for t in found)
            assert all(t["state"] == "succeeded" for t in found)

            # Rollback: refused without a token and with a read token, done with the admin one.
            versions = len(c.store.strategy.history())
            b.js("document.getElementById('strategy-box').scrollIntoView()")
            for token, status in (("", "401"), (TOKENS["read"], "403")):
                _set(b, "admin-token", token)
                b.js("document.getElementById('rollback-msg').dataset.status = ''")
                _click(b, "rollback")
                b.wait(f"document.getElementById('rollback-msg').dataset.status === '{status}'")
                assert len(c.store.strategy.history()) == versions
            _set(b, "admin-token", TOKENS["admin"])
            _click(b, "rollback")
            b.wait("document.getElementById('rollback-msg').dataset.status === '200'")
            history = c.store.strategy.history()
            assert len(history) == versions + 1
            assert history[-1].strategy == first.strategy == "fifo"
            assert history[-1].note == f"rollback to version {first.version}"
            assert history[-1].version == second.version + 1
            assert history[-1].who.startswith("api:admin-user")
            b.wait(
                "document.getElementById('strategy-history').dataset.latest"
                f" === 'rollback to version {first.version}'"
            )
            assert "fifo (version" in _text(b, "strategy-config")
            b.screenshot(tmp_path / "dashboard-strategy.png")
    finally:
        feeder.stop.set()
        feeder.join(timeout=10)
    assert feeder.submitted > 0
    c.client.wait(list(c.client.submit_many([{"name": "noop"}])), timeout=60)
    assert c.store.events.counters()["submitted"] >= feeder.submitted + 4
    assert not [r for r in c.store.tasks.records([flaky.id]) if r and r.state != TaskState.FAILED]

    IMG.mkdir(exist_ok=True)
    for name in ("dashboard-overview", "dashboard-task", "dashboard-strategy"):
        data = (tmp_path / f"{name}.png").read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(data) > 30_000, f"{name} looks blank"
        shutil.copy(tmp_path / f"{name}.png", IMG / f"{name}.png")


def _reachable(url: str) -> bool:
    try:
        httpx.get(url, timeout=5)
    except httpx.TransportError:
        return False
    return True
