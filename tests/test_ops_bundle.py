"""The ops bundle (docs/ops/ and docs/runbook.md) against what yardmaster really serves.

Every metric a Grafana panel or an alert rule queries must be one the monitor's
/metrics exposes on a live cluster; the alert rules pass ``promtool check rules``
and fire as tests/ops/alerts_test.yml expects (``promtool test rules``; promtool
comes with Debian's ``prometheus`` package, which .ci/run installs); every
``yardmaster`` command the runbook gives exists.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from scheduler.monitor import Monitor
from scheduler.monitor.prometheus import render

ROOT = Path(__file__).resolve().parent.parent
OPS = ROOT / "docs" / "ops"
RUNBOOK = ROOT / "docs" / "runbook.md"
PROMTOOL = shutil.which("promtool")

# PromQL words that are not metric names: keywords, aggregation modifiers, and
# (followed by "(") functions and aggregations.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}
KEYWORDS |= {"unless", "offset", "bool", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # label values
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        word = match.group()
        rest = text[match.end() :].lstrip()
        if word.lower() in KEYWORDS or rest.startswith("("):
            continue
        if re.fullmatch(r"\d+[smhdwy]", word) or text[match.start() - 1 : match.start()].isdigit():
            continue
        names.add(word)
    return names


def test_the_promql_name_extractor_finds_metrics_and_skips_everything_else():
    expr = (
        'sum by (priority) (rate(ym_tasks_total{event=~"a|b"}[5m] offset 10m)) / '
        "ignoring(x) ym_slots > 0.5 and on() absent(ym_health_score) unless foo:bar_ratio"
    )
    assert metric_names(expr) == {"ym_tasks_total", "ym_slots", "ym_health_score", "foo:bar_ratio"}
    assert metric_names("histogram_quantile(0.9, x_bucket) > 1e3") == {"x_bucket"}


def grafana_exprs() -> list[tuple[str, str]]:
    dash = json.loads((OPS / "grafana-dashboard.json").read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dash["panels"]
        for target in panel.get("targets", [])
    ]


def alert_rules() -> list[dict]:
    doc = yaml.safe_load((OPS / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def exposed(tmp_path_factory) -> set[str]:
    """Sample and family names of /metrics after a live run (dispatcher, worker, tasks)."""
    from scheduler.embedded import EmbeddedRedis
    from tests.conftest import Cluster

    redis = EmbeddedRedis().start()
    cluster = Cluster(redis, tmp_path_factory.mktemp("ops"))
    try:
        cluster.dispatcher()
        cluster.worker("ops@test", slots=2)
        specs = [{"name": "sleep", "args": [0.01], "priority": p} for p in range(10)]
        cluster.client.wait(cluster.client.submit_many([*specs, {"name": "fail"}]), timeout=60)
        text = render(Monitor(cluster.store).poll())
    finally:
        cluster.stop()
        redis.stop()
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def test_every_grafana_query_reads_metrics_the_monitor_exposes(exposed):
    queries = grafana_exprs()
    assert len(queries) >= 20
    used = set()
    for title, expr in queries:
        names = metric_names(expr)
        assert names, f"{title!r}: no metric in {expr!r}"
        assert names <= exposed, f"{title!r} reads {sorted(names - exposed)}, not served"
        used |= names
    for needed in ("ym_throughput_tasks_per_second", "ym_priority_wait_seconds"):
        assert needed in used
    for needed in ("ym_backlog_tasks", "ym_slot_utilization_ratio", "ym_health_score"):
        assert needed in used


def test_every_alert_reads_metrics_the_monitor_exposes(exposed):
    for rule in alert_rules():
        names = metric_names(rule["expr"])
        assert names, f"{rule['alert']}: no metric in {rule['expr']!r}"
        assert names <= exposed, f"{rule['alert']} reads {sorted(names - exposed)}, not served"


def test_the_grafana_dashboard_is_well_formed():
    dash = json.loads((OPS / "grafana-dashboard.json").read_text())
    assert dash["uid"]
    assert dash["title"] == "yardmaster"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        box = panel["gridPos"]
        assert box["x"] >= 0, panel["title"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs
        assert len(refs) == len(set(refs)), panel["title"]


def test_the_alert_rules_cover_the_failures_an_operator_must_hear_of():
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    reads = {n: metric_names(r["expr"]) for n, r in zip(names, rules, strict=True)}
    wanted = {
        "backlog growth": "ym_backlog_tasks",
        "no leader": "ym_dispatcher_up",
        "workers stalled": "ym_worker_heartbeat_age_seconds",
        "failure spike": "ym_failure_ratio",
        "health low": "ym_health_score",
        "Redis memory": "ym_redis_memory_max_bytes",
    }
    for what, metric in wanted.items():
        assert any(metric in used for used in reads.values()), f"no alert on {what}"
    sections = set(re.findall(r"^## (.+)$", RUNBOOK.read_text(), re.M))
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["annotations"]["summary"]
        for section in re.findall(r"docs/runbook\.md, ([A-Z][^.)]*)", json.dumps(rule)):
            assert section in sections, f"{rule['alert']} points at a missing section {section!r}"


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian's prometheus) is not installed")
def test_promtool_accepts_the_rules_and_they_fire_as_expected(tmp_path):
    check = subprocess.run(
        [PROMTOOL, "check", "rules", str(OPS / "alerts.yml")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # The expectations are about expressions, durations and labels; the annotations'
    # templates (checked above) would otherwise have to be rendered in the test file.
    doc = yaml.safe_load((OPS / "alerts.yml").read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations")
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(doc))
    shutil.copy(ROOT / "tests" / "ops" / "alerts_test.yml", tmp_path / "alerts_test.yml")
    run = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts_test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


def runbook_commands() -> list[list[str]]:
    """``yardmaster ...`` lines of the runbook's bash blocks, as the command and subcommands."""
    blocks = re.findall(r"```bash\n(.*?)```", RUNBOOK.read_text(), re.S)
    out = []
    for block in blocks:
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            for found in re.finditer(r"\byardmaster((?:\s+[a-z][a-z-]*)+)", line):
                out.append(found.group(1).split())
    return out


def _help(words: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli", *words, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_yardmaster_command_in_the_runbook_exists():
    sections = set(re.findall(r"^## (.+)$", RUNBOOK.read_text(), re.M))
    for needed in ("Cold start", "Scaling workers", "Strategy rollback", "A Redis outage"):
        assert needed in sections
    for needed in ("A stuck task", "A full Redis"):
        assert needed in sections
    commands = runbook_commands()
    assert len(commands) >= 10
    checked: set[tuple[str, ...]] = set()
    for words in commands:
        command = words[:1]
        if tuple(command) not in checked:
            run = _help(command)
            assert run.returncode == 0, f"`yardmaster {command[0]}` does not exist"
            checked.add(tuple(command))
            if "Commands" in run.stdout:  # a group: the next word must be one of its commands
                checked.add(("group", command[0]))
        if ("group", command[0]) in checked:
            sub = words[:2]
            assert len(sub) == 2, f"`yardmaster {command[0]}` needs a subcommand"
            if tuple(sub) not in checked:
                run = _help(sub)
                assert run.returncode == 0, f"`yardmaster {' '.join(sub)}` does not exist"
                checked.add(tuple(sub))
