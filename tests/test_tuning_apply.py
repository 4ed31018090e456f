"""Applying a tune candidate live: ``tune --apply`` and ``strategy set --from-experiment``.

A real redis-server (the Cluster fixture, its store and the command line in subprocesses);
the guard that then watches is shown in test_rollout_live.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

from scheduler.workload_gen import generate, to_jsonl

CLI = [sys.executable, "-m", "scheduler.cli"]


def cli(c, tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    storage = f"sqlite:///{tmp_path}/tune.db"
    return subprocess.run(
        [*CLI, *args], env=c.env(YM_TUNE_STORAGE=storage, **env), cwd=tmp_path,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_tune_apply_makes_the_proposed_candidate_a_guarded_version_carrying_its_experiment(
    cluster, tmp_path
):
    c = cluster(strategy="priority")
    (tmp_path / "w.jsonl").write_text(to_jsonl(generate("bursty", 1500, 2, workers=2)))
    done = cli(
        c, tmp_path, "tune", "w.jsonl", "--workers", "2", "--objective", "mean_flow",
        "--strategies", "priority,sjf", "--trials", "12", "--apply", "--window", "120", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["baseline"]["source"] == "redis"
    assert record["baseline"]["version"] == 0
    assert record["gate"]["proposed"] is True
    # ema_alpha is not searched with --apply: the cluster's value, so it can be applied
    sjf_space = next(s for s in record["space"] if s["strategy"] == "sjf")
    alpha = next(d for d in sjf_space["dimensions"] if d["setting"] == "ema_alpha")
    assert alpha["choice"] == [c.settings.ema_alpha]
    applied = record["applied"]
    assert applied["experiment"] == record["id"]
    assert applied["strategy"] == record["best"]["strategy"] == "sjf"
    assert "ema_alpha" not in applied["params"]
    assert applied["guard"] == {
        "window": 120.0, "previous": {"strategy": "priority", "params": {}, "version": 0},
    }  # fmt: skip
    assert applied["note"].startswith(f"candidate of experiment {record['id']} (mean_flow +")
    # No monitor runs here, and the guard runs in the monitor: the command says so.
    assert "no `yardmaster monitor` runs on this cluster" in done.stderr
    live = c.client.strategy()
    assert (live.version, live.experiment, live.strategy) == (1, record["id"], "sjf")
    shown = cli(c, tmp_path, "strategy", "history", "--json")
    (line,) = shown.stdout.splitlines()
    assert json.loads(line)["experiment"] == record["id"]


def test_strategy_set_from_experiment_refuses_what_cannot_be_applied_live(cluster, tmp_path):
    c = cluster(strategy="priority")
    (tmp_path / "w.jsonl").write_text(to_jsonl(generate("bursty", 1500, 2, workers=2)))
    done = cli(
        c, tmp_path, "tune", "w.jsonl", "--workers", "2", "--objective", "mean_flow",
        "--strategies", "sjf", "--space", "ema_alpha=0.9", "--trials", "6", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["best"]["params"]["ema_alpha"] == 0.9
    experiment = record["id"]
    refused = cli(c, tmp_path, "strategy", "set", "--from-experiment", experiment, "--force")
    assert refused.returncode == 2
    text = " ".join(refused.stderr.split())
    assert "params.ema_alpha=0.9 is not accepted" in text
    assert "cluster-wide learning setting" in text
    assert "YM_EMA_ALPHA=0.9" in text
    assert f"allowed: the cluster's value {c.settings.ema_alpha:g}" in text
    assert c.client.strategy() is None  # nothing was set

    unknown = cli(c, tmp_path, "strategy", "set", "--from-experiment", "tune-nope")
    assert unknown.returncode == 2
    assert experiment in " ".join(unknown.stderr.split())  # the latest experiments are listed


def test_an_experiment_the_gate_did_not_propose_is_applied_only_with_force(cluster, tmp_path):
    c = cluster(strategy="fifo")
    rows = [
        {"id": f"t{i}", "name": "a" if i % 2 else "b", "submit_at": i * 1.0, "duration": 0.1}
        for i in range(200)
    ]  # idle between tasks: every configuration gives the same schedule
    (tmp_path / "w.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = cli(
        c, tmp_path, "tune", "w.jsonl", "--workers", "2", "--strategies", "fifo,priority",
        "--trials", "4", "--json",
    )  # fmt: skip
    record = json.loads(done.stdout)
    assert record["gate"]["proposed"] is False
    refused = cli(c, tmp_path, "strategy", "set", "--from-experiment", record["id"])
    assert refused.returncode == 2
    assert "whose candidate the gate proposed" in " ".join(refused.stderr.split())
    forced = cli(
        c, tmp_path, "strategy", "set", "--from-experiment", record["id"], "--force",
        "--no-guard", "--wait", "0",
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    live = c.client.strategy()
    assert live.experiment == record["id"]
    assert live.guard is None
    assert "yardmaster monitor" not in forced.stderr  # no guard, nothing to warn of
