"""``yardmaster tune`` as a user runs it: a real subprocess, a real SQLite study."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from scheduler.workload import WorkloadTask
from scheduler.workload_gen import generate, to_jsonl

YM = [sys.executable, "-m", "scheduler.cli"]


def run(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YM_")}
    done = subprocess.run(
        [*YM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def counted_trials(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            row = conn.execute(
                "SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')"
            ).fetchone()
        except sqlite3.OperationalError as exc:  # the file exists before Optuna's tables
            if "no such table" in str(exc):
                return 0
            raise
    return int(row[0])


def test_tune_proposes_sjf_on_bursts_with_a_report_and_the_json_the_issue_names(tmp_path: Path):
    (tmp_path / "w.jsonl").write_text(to_jsonl(generate("bursty", 1500, 2, workers=2)))
    done = run(
        "tune", "w.jsonl", "--workers", "2", "--objective", "mean_flow",
        "--strategies", "priority,sjf,fifo", "--trials", "20", "--json",
        "--report", "r.html", cwd=tmp_path,
    )  # fmt: skip
    record = json.loads(done.stdout)
    for part in ("baseline", "best"):
        assert {"strategy", "params", "holdout"} <= set(record[part])
    assert record["baseline"]["strategy"] == "priority"
    assert record["best"]["strategy"] == "sjf"
    assert record["best"]["holdout"] < record["baseline"]["holdout"]
    low, high = record["improvement"]["interval"]
    assert 0 < low <= record["improvement"]["value"] <= high
    assert record["gate"]["proposed"] is True
    assert record["gate"]["reason"].startswith("proposed: mean_flow better by")
    assert record["trials"]["complete"] + record["trials"]["pruned"] == 20
    page = (tmp_path / "r.html").read_text()
    for heading in (
        "Objective over trials",
        "Parameter importance: sjf",
        "Current against candidate",
    ):
        assert heading in page
    assert (tmp_path / ".yardmaster" / "tune.db").exists()  # the default storage


def test_where_the_default_is_already_best_nothing_is_proposed(tmp_path: Path):
    # Every task finds a free slot the moment it arrives: no setting can change
    # anything, so every trial ties with the baseline and the gate holds.
    names = ("resize", "ocr", "report")
    tasks = [
        WorkloadTask(
            id=f"t{i}", name=names[i % 3], submit_at=i * 1.0, duration=0.2 + 0.1 * (i % 3),
            priority=i % 10, deadline=i * 1.0 + 0.9, affinity_key=f"k{i % 4}",
        )
        for i in range(300)
    ]  # fmt: skip
    (tmp_path / "idle.jsonl").write_text(to_jsonl(tasks))
    done = run("tune", "idle.jsonl", "--workers", "2", "--trials", "15", "--json", cwd=tmp_path)
    record = json.loads(done.stdout)
    assert record["gate"]["proposed"] is False
    assert record["improvement"]["value"] <= 0.0
    assert record["gate"]["reason"].startswith("not proposed")


def test_a_killed_tune_continues_when_run_again_and_runs_are_listed(tmp_path: Path):
    (tmp_path / "w.jsonl").write_text(to_jsonl(generate("mixed", 3000, 5, workers=3)))
    db = tmp_path / "study.db"
    args = [
        "tune", "w.jsonl", "--workers", "3", "--trials", "40", "--jobs", "2",
        "--storage", f"sqlite:///{db}", "--json",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("YM_")}
    proc = subprocess.Popen(
        [*YM, *args], cwd=tmp_path, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if db.exists() and counted_trials(db) >= 8:
            break
        assert proc.poll() is None, "tune ended before it could be killed"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the command and its search processes
    proc.wait()
    killed_at = counted_trials(db)
    assert 8 <= killed_at < 40

    listed = run("tune", "history", "--storage", f"sqlite:///{db}", "--json", cwd=tmp_path)
    (unfinished,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert unfinished["status"] == "running"

    done = run(*args, cwd=tmp_path)
    record = json.loads(done.stdout)
    assert record["trials"]["complete"] + record["trials"]["pruned"] == 40
    assert record["trials"]["this_run"] == 40 - killed_at  # nothing done twice

    listed = run("tune", "history", "--storage", f"sqlite:///{db}", "--json", cwd=tmp_path)
    (entry,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert entry["id"] == record["id"]
    assert entry["status"] == "finished"
    assert [r["status"] for r in entry["runs"]] == ["running", "finished"]  # the killed one too
    table = run("tune", "history", "--storage", f"sqlite:///{db}", cwd=tmp_path).stdout
    assert "tune runs in" in table
    assert "unfinished" not in table


def test_bad_input_from_the_command_line_exits_2_naming_the_field(tmp_path: Path):
    (tmp_path / "w.jsonl").write_text(to_jsonl(generate("mixed", 200, 1)))
    (tmp_path / "empty.jsonl").write_text("")
    cases = [
        (["w.jsonl", "--workers", "2", "--objective", "fastest"], "--objective='fastest'"),
        (["empty.jsonl", "--workers", "2"], "holds no task"),
        (["w.jsonl"], "--workers"),
        (["w.jsonl", "--workers", "2", "--strategies", "fifo,magic"], "--strategies='magic'"),
        (["w.jsonl", "--workers", "2", "--space", "nonsense=1..2"], "--space='nonsense'"),
        (
            ["w.jsonl", "--workers", "2", "--strategies", "weighted", "--space", "weights.wait=0",
             "--space", "weights.priority=0.01..0.5", "--space", "weights.duration=1..2"],
            "search space of weighted",
        ),
    ]  # fmt: skip
    for args, expected in cases:
        done = run(
            "tune", *args, "--storage", f"sqlite:///{tmp_path}/t.db", cwd=tmp_path, check=False
        )
        assert done.returncode == 2, (args, done.stderr)
        assert expected in " ".join(done.stderr.split()), (args, done.stderr)


def test_the_baseline_is_the_live_configuration_when_a_redis_is_given(redis_server):
    from scheduler.cli.tune import live_baseline
    from scheduler.client import Client
    from scheduler.settings import load_settings
    from scheduler.store import Store, connect

    settings = load_settings({}, redis_url=redis_server.url, namespace="tunetest")
    never = live_baseline(settings)
    assert (never.config.strategy, never.source, never.version) == ("priority", "redis", 0)
    client = Client(Store(connect(redis_server.url), settings))
    client.set_strategy("weighted", {"weights": {"priority": 3.0}, "priority_aging": 0.5})
    live = live_baseline(settings)
    assert live.source == "redis"
    assert live.version == 1
    assert live.config.strategy == "weighted"
    assert live.config.params["weights"]["priority"] == 3.0
    assert "priority_aging" not in live.config.params  # weighted does not read it
    offline = live_baseline(load_settings({}))
    assert (offline.source, offline.version) == ("settings", None)
