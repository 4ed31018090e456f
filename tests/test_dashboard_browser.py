"""The dashboard in headless Chromium: it loads, updates, its numbers match /metrics,
and a screenshot of the live page is saved.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it), driven
through its own command line: ``--dump-dom`` after a virtual-time budget in
which the page polls several times, and ``--screenshot``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_flower_and_up_monitor import free_port

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


class Values(HTMLParser):
    """Collects data-v (raw value) and the visible text of every element with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: dict[str, str] = {}
        self.text: dict[str, str] = {}
        self.body: dict[str, str] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = {k: v or "" for k, v in a.items()}
        ident = a.get("id") if "data-v" in a else None
        if ident:
            self.raw[ident] = a["data-v"] or ""
            self.text[ident] = ""
        self._open.append(ident)

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        for ident in self._open:
            if ident:
                self.text[ident] += data


def chromium(tmp_path: Path, url: str, *extra: str) -> str:
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    out = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=4000", *extra, url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def metric_values(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
def test_the_dashboard_loads_updates_matches_metrics_and_is_screenshotted(cluster, tmp_path):
    c = cluster()
    c.dispatcher()
    c.worker("dash1@test", slots=2)
    c.worker("dash2@test", slots=2)
    port = free_port()
    c.spawn("monitor", [sys.executable, "-m", "scheduler.cli", "monitor", "--port", str(port)])
    base = f"http://127.0.0.1:{port}"
    c.wait_for(lambda: _reachable(base + "/monitor/health"), "monitor")

    specs = [{"name": "sleep", "args": [0.01 * (i % 6)], "priority": i % 10} for i in range(40)]
    specs += [{"name": "fail"} for _ in range(12)]
    c.client.wait(c.client.submit_many(specs), timeout=60)
    time.sleep(2.5)  # past YM_MONITOR_INTERVAL: the page and /metrics see the finished run

    dom = Values()
    dom.feed(chromium(tmp_path, base + "/dashboard", "--dump-dom"))
    metrics = metric_values(_get(base + "/metrics"))
    assert int(dom.body.get("data-polls", "0")) >= 2, "the page did not poll repeatedly"

    def page(ident: str) -> float:
        return float(dom.raw[ident])

    def metric(name: str, **labels: str) -> float:
        return metrics[(name, tuple(sorted(labels.items())))]

    def total(name: str, label: str, values) -> float:
        return sum(metric(name, **{label: v}) for v in values)

    terminal = ("succeeded", "failed", "cancelled", "expired")
    assert page("finished") == total("ym_tasks_total", "event", terminal) == 52
    assert page("backlog") == total("ym_backlog_tasks", "priority", map(str, range(10))) == 0
    assert page("workers") == metric("ym_workers") == 2
    assert page("slots-total") == metric("ym_slots") == 4
    assert page("slots-busy") == metric("ym_slots") - metric("ym_free_slots")
    assert page("thr-5m") == pytest.approx(metric("ym_throughput_tasks_per_second", window="5m"))
    assert page("thr-1m") == pytest.approx(metric("ym_throughput_tasks_per_second", window="1m"))
    for q in ("0.5", "0.95", "0.99"):
        key = f"run-p{round(float(q) * 100)}"
        assert page(key) == pytest.approx(metric("ym_run_seconds", quantile=q))
        assert dom.text[key] == f"{metric('ym_run_seconds', quantile=q):.3f}"
    assert page("run-n") == metric("ym_run_seconds_count") == 52
    assert page("wait-p95") == pytest.approx(metric("ym_wait_seconds", quantile="0.95"))
    assert page("health-score") == metric("ym_health_score")
    assert page("switches") == metric("ym_strategy_switches_total")
    anomalies = sum(v for (name, _), v in metrics.items() if name == "ym_anomalies")
    assert page("anomaly-count") == anomalies == 1  # 12 of 52 runs failed: a failure spike
    assert dom.text["health-score"] == f"{metric('ym_health_score'):.0f}"

    # A screenshot of the page live, with work in flight.
    c.client.submit_many([{"name": "sleep", "args": [0.2], "priority": i % 10} for i in range(60)])
    shot = tmp_path / "dashboard.png"
    chromium(tmp_path, base + "/dashboard", "--window-size=1400,1000", f"--screenshot={shot}")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 30_000, "the screenshot looks blank"
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "dashboard.png")
    if os.environ.get("YM_DASHBOARD_SCREENSHOT"):
        shutil.copy(shot, os.environ["YM_DASHBOARD_SCREENSHOT"])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as reply:
        return reply.read().decode()


def _reachable(url: str) -> bool:
    try:
        _get(url)
    except OSError:
        return False
    return True
