"""What monitoring costs: yardmaster's throughput with its monitors on and off, and with
Flower's Celery events for comparison, measured side by side in one run.

Usage::

    python -m benchmarks.monitoring [--tasks N] [--rounds R] [--json-out FILE]

Each round runs ``N`` noop tasks through one dispatcher and one prefork
worker with 2 slots (WARNING logs, a fresh private ``redis-server`` per
measurement, as in ``benchmarks/throughput.py``) in each configuration, the
order rotating between rounds so that drift on a shared machine falls on all:

off
    nothing watches the cluster.
monitor
    full monitoring by yardmaster's own records: ``yardmaster monitor``
    polling every second (``YM_MONITOR_INTERVAL=1``) with its JSON Lines
    history written every second, and a scraper in this process fetching
    ``/metrics`` and ``/monitor/snapshot`` (what the dashboard polls) once a
    second each.
flower
    what Flower needs: the worker sends Celery task events (``--task-events``)
    and a Flower process consumes them.

The clock runs from just before ``Client.submit_many`` until the counters
show ``N`` terminal tasks (polled every 5 ms); every record is then checked.
The report gives each configuration's median rate, its ratio to ``off`` (and
per round), the CPU milliseconds per task of each process, their sum against
``off`` (``extra_cpu_share``: steadier than rates when other work shares the
machine), and, for ``monitor``, what its scrapes saw (so a run where the
monitor did nothing cannot pass for cheap).
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tree this file belongs to
    sys.path.insert(0, str(ROOT))

from benchmarks.clusters import (  # noqa: E402
    CONCURRENCY,
    LOGLEVEL,
    TERMINAL,
    CpuMeter,
    StallGuard,
    deadline_for,
    pid_of,
    private_redis,
    wait_terminal,
)
from benchmarks.common import code_state, emit, finish_machine, machine, progress, today  # noqa: E402
from scheduler.client import Client  # noqa: E402
from scheduler.local_cluster import LocalCluster  # noqa: E402
from scheduler.settings import load_settings  # noqa: E402

CONFIGS = ("off", "monitor", "flower")
TARGET = 0.10  # at most 10% of throughput for full monitoring


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Scraper(threading.Thread):
    """Fetches /metrics and /monitor/snapshot once a second, like Prometheus and the page."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.stop = threading.Event()
        self.scrapes = 0
        self.errors = 0
        self.last_finished = 0

    def run(self) -> None:
        while not self.stop.wait(1.0):
            try:
                with urllib.request.urlopen(self.base + "/metrics", timeout=10) as r:
                    r.read()
                with urllib.request.urlopen(self.base + "/monitor/snapshot", timeout=10) as r:
                    snap = json.loads(r.read())
                self.last_finished = sum(snap["counters"].get(k, 0) for k in TERMINAL)
                self.scrapes += 1
            except OSError:
                self.errors += 1


def _wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:g}s")


def run_once(config: str, tasks: int, log_dir: Path) -> dict[str, Any]:
    """One measurement of ``tasks`` noops in one configuration."""
    with private_redis() as server:
        settings = load_settings(redis_url=server.url, monitor_interval=1.0)
        stack = LocalCluster(settings, log_dir=log_dir)
        name = f"bench@{socket.gethostname()}"
        scraper: Scraper | None = None
        pids: dict[str, int] = {}
        try:
            stack.dispatcher(loglevel=LOGLEVEL, wait=False)
            stack.worker(
                "w1", CONCURRENCY, hostname=name, events=config == "flower", loglevel=LOGLEVEL,
                wait=False,
            )  # fmt: skip
            stack.wait_ready(1, 60.0)
            if config == "monitor":
                port = free_port()
                menv = {"YM_MONITOR_HISTORY": str(log_dir / f"history-{config}.jsonl")}
                menv["YM_MONITOR_HISTORY_EVERY"] = "1"
                menv["YM_MONITOR_INTERVAL"] = "1"
                cmd = [sys.executable, "-m", "scheduler.cli", "monitor", "--port", str(port)]
                stack.spawn("monitor", cmd, **menv)
                base = f"http://127.0.0.1:{port}"
                _wait_http(base + "/monitor/health")
                scraper = Scraper(base)
                scraper.start()
                pids["monitor"] = stack.procs["monitor"].pid
            if config == "flower":
                pids["flower"] = stack.flower(free_port(), 1, 60.0).pid
            store = stack.store
            client = Client(store, known_tasks=["noop"])
            deadline = deadline_for(tasks)
            meter = CpuMeter(
                {
                    "redis": pid_of(server),
                    "dispatcher": stack.procs["dispatcher"].pid,
                    "worker": stack.procs["w1"].pid,
                    **pids,
                }
            )
            guard = StallGuard(f"yardmaster ({config})")
            t0 = time.perf_counter()
            handles = client.submit_many([{"name": "noop"}] * tasks)
            wait_terminal(store, tasks, deadline, guard)
            elapsed = time.perf_counter() - t0
            cpu = meter.stop(tasks)
            states: dict[str, int] = {}
            for rec in client.wait(handles, timeout=30):
                states[str(rec.state)] = states.get(str(rec.state), 0) + 1
            if states != {"succeeded": tasks}:
                raise RuntimeError(f"{config}: task states {states}, expected all succeeded")
            out: dict[str, Any] = {
                "tasks": tasks,
                "seconds": elapsed,
                "tasks_per_s": tasks / elapsed,
                "cpu_ms_per_task": cpu,
            }
            if scraper is not None:
                time.sleep(1.5)  # one more scrape after the end
                scraper.stop.set()
                scraper.join()
                history = log_dir / f"history-{config}.jsonl"
                lines = history.read_text().splitlines() if history.exists() else []
                out["monitor"] = {
                    "scrapes": scraper.scrapes,
                    "scrape_errors": scraper.errors,
                    "finished_seen_by_monitor": scraper.last_finished,
                    "history_lines": len(lines),
                }
                if scraper.last_finished != tasks or scraper.scrapes < 2:
                    raise RuntimeError(f"the monitor did not follow the run: {out['monitor']}")
            return out
        finally:
            stack.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the JSON report on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each configuration")
    parser.add_argument("--json-out", type=Path, help="also write the JSON report here")
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.rounds < 1:
        parser.error("--tasks and --rounds must be at least 1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    shown = sys.argv[1:] if argv is None else argv
    code = code_state(("scheduler", "workers", "broker_config"))
    info = machine()
    progress(f"measuring {ROOT} (commit {code.get('commit')}); {args.rounds} rounds x {args.tasks}")
    log_root = Path(tempfile.mkdtemp(prefix="ym-bench-monitoring-"))
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CONFIGS}
    for rnd in range(args.rounds):
        order = CONFIGS[rnd % len(CONFIGS) :] + CONFIGS[: rnd % len(CONFIGS)]
        for config in order:
            log_dir = log_root / f"round{rnd + 1}-{config}"
            log_dir.mkdir()
            t = time.perf_counter()
            result = run_once(config, args.tasks, log_dir)
            runs[config].append(result)
            progress(
                f"round {rnd + 1} {config:<8} {result['tasks_per_s']:8.1f} tasks/s "
                f"({time.perf_counter() - t:.1f}s with set-up)"
            )
    medians = {c: statistics.median(r["tasks_per_s"] for r in runs[c]) for c in CONFIGS}
    paired = {
        c: [round(x["tasks_per_s"] / o["tasks_per_s"], 3) for x, o in zip(runs[c], runs["off"], strict=True)]
        for c in CONFIGS
    }  # fmt: skip
    cost = {c: round(1 - medians[c] / medians["off"], 3) for c in CONFIGS}
    # CPU per task is steadier than a rate on a shared machine: what each
    # configuration spends per task in all its processes, against off.
    cpu_total = {
        c: round(statistics.median(sum(r["cpu_ms_per_task"].values()) for r in runs[c]), 4)
        for c in CONFIGS
    }
    watcher_cpu = {
        "monitor": round(statistics.median(r["cpu_ms_per_task"]["monitor"] for r in runs["monitor"]), 4),
        "flower": round(statistics.median(r["cpu_ms_per_task"]["flower"] for r in runs["flower"]), 4),
    }  # fmt: skip
    report = {
        "benchmark": "monitoring",
        "command": " ".join(["python -m benchmarks.monitoring", *shown]),
        "date": today(),
        "config": {
            "tasks": args.tasks,
            "rounds": args.rounds,
            "worker": "1 prefork worker, 2 slots, WARNING logs; noop tasks",
            "monitor": "poll 1 s, history every 1 s, /metrics and /monitor/snapshot scraped 1/s",
            "flower": "worker --task-events, Flower 2.x consuming them",
        },
        "median_tasks_per_s": {c: round(v, 1) for c, v in medians.items()},
        "ratio_to_off": {c: round(medians[c] / medians["off"], 3) for c in CONFIGS},
        "paired_ratio_to_off": paired,
        "cost": cost,
        "cpu_ms_per_task_all_processes": cpu_total,
        "cpu_ms_per_task_of_the_watcher": watcher_cpu,
        "extra_cpu_share": {c: round(cpu_total[c] / cpu_total["off"] - 1, 3) for c in CONFIGS},
        "target_cost": TARGET,
        "monitor_meets_target": cost["monitor"] <= TARGET,
        "runs": runs,
        "machine": finish_machine(info),
        "code": code,
    }
    emit(report, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
