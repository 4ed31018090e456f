"""What ``YM_DURABLE_REPLICAS`` costs: submission and end-to-end throughput, durability on and off.

Usage::

    python -m benchmarks.durability [--tasks N] [--batch B] [--e2e-tasks M] [--rounds R]
                                    [--json-out FILE]

Method: one private topology of :class:`~scheduler.sentinel_topology.SentinelRedis`
(a primary, one replica, three Sentinels on loopback ports); every client connects
through the Sentinels. Modes: *off* (``YM_DURABLE_REPLICAS=0``) and *on* (``=1``:
each accepted submission, and each write of outcomes, waits for the replica).

- **submission**: ``N`` noop tasks submitted by one client, once one per call
  (``Client.submit``: a ``WAIT`` per task when on, the worst case) and once in
  batches of ``B`` (``submit_many``: one ``WAIT`` per batch). No dispatcher or worker.
- **end to end**: a dispatcher and two workers of 2 slots (started once per mode,
  in a namespace of their own); ``M`` noop tasks submitted in batches of ``B``,
  timed from the first submission to the last success.

Tasks per second, median over ``R`` rounds; the modes take turns (each first every
other round), so a change in the machine's load touches both. One JSON object goes
to stdout (and ``--json-out``); progress to stderr.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tree this file belongs to
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    code_state,
    emit,
    finish_machine,
    machine,
    progress,
    submission_rate,
    today,
)
from scheduler.client import Client  # noqa: E402
from scheduler.local_cluster import LocalCluster  # noqa: E402
from scheduler.sentinel_topology import SentinelRedis  # noqa: E402
from scheduler.settings import load_settings  # noqa: E402
from scheduler.store import Store  # noqa: E402

MODES = {"off": 0, "on": 1}


def _cluster(topology: SentinelRedis, durable: int, log_dir: Path) -> tuple[LocalCluster, Client]:
    namespace = "dur" + uuid.uuid4().hex[:6]
    settings = load_settings(
        redis_url=topology.url, namespace=namespace, strategy="fifo", durable_replicas=durable
    )
    cluster = LocalCluster(
        settings,
        redis=topology,
        log_dir=log_dir,
        env={"YM_DURABLE_REPLICAS": str(durable), "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    cluster.dispatcher(f"d-{namespace}")
    for i in range(2):
        cluster.worker(f"w{i}@{namespace}", slots=2)
    return cluster, Client(cluster.store, known_tasks=["noop"])


def _end_to_end_rate(client: Client, tasks: int, batch: int) -> float:
    """Tasks per second from the first submission to the last success."""
    spec = [{"name": "noop"}] * batch
    started = time.perf_counter()
    handles = []
    for _ in range(tasks // batch):
        handles += client.submit_many(spec)
    client.wait(handles, timeout=600)
    return len(handles) / (time.perf_counter() - started)


def measure(
    topology: SentinelRedis, tasks: int, batch: int, e2e_tasks: int, rounds: int, log_dir: Path
) -> dict[str, Any]:
    """Tasks per second in each mode and shape, every round, and the medians."""
    url = topology.url
    submitters = {
        mode: Client(
            Store.from_url(url, load_settings(redis_url=url, durable_replicas=n)),
            known_tasks=["noop"],
        )
        for mode, n in MODES.items()
    }
    clusters = {mode: _cluster(topology, n, log_dir) for mode, n in MODES.items()}
    shapes = ["submit_single", f"submit_batch_{batch}", f"end_to_end_batch_{batch}"]
    runs: dict[str, dict[str, list[float]]] = {s: {m: [] for m in MODES} for s in shapes}
    try:
        for r in range(rounds):
            order = list(MODES) if r % 2 == 0 else list(MODES)[::-1]  # neither always first
            for mode in order:
                sub = submitters[mode]
                sub.store.client.delete(sub.store.keys.pending)  # no backlog between rounds
                runs["submit_single"][mode].append(round(submission_rate(sub, tasks, 1), 1))
                runs[shapes[1]][mode].append(round(submission_rate(sub, tasks, batch), 1))
                sub.store.client.delete(sub.store.keys.pending)
                _, client = clusters[mode]
                runs[shapes[2]][mode].append(round(_end_to_end_rate(client, e2e_tasks, batch), 1))
            progress(
                f"round {r + 1}/{rounds}: "
                + "; ".join(f"{s} " + ", ".join(f"{m} {v[-1]:.0f}/s" for m, v in by.items())
                            for s, by in runs.items())
            )  # fmt: skip
    finally:
        for cluster, _ in clusters.values():
            cluster.stop()
    out: dict[str, Any] = {}
    for shape, by in runs.items():
        off, on = statistics.median(by["off"]), statistics.median(by["on"])
        out[shape] = {
            "off_tasks_per_s": round(off, 1),
            "on_tasks_per_s": round(on, 1),
            "on_vs_off": round(on / off - 1, 4),
            "rounds": by,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--e2e-tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json-out", type=Path, default=None)
    opts = parser.parse_args()
    topology = SentinelRedis().start()
    log_dir = Path(topology.dir) / "logs"
    log_dir.mkdir()
    try:
        info = machine()
        report = {
            "benchmark": "durability",
            "command": " ".join(["python -m benchmarks.durability", *sys.argv[1:]]),
            "date": today(),
            "code": code_state(("scheduler", "workers", "broker_config"), (".py", ".lua")),
            "machine": info,
            "tasks": opts.tasks,
            "batch": opts.batch,
            "e2e_tasks": opts.e2e_tasks,
            "rounds": opts.rounds,
            "shapes": measure(
                topology, opts.tasks, opts.batch, opts.e2e_tasks, opts.rounds, log_dir
            ),
        }
    finally:
        topology.stop()
    finish_machine(info)
    emit(report, opts.json_out)


if __name__ == "__main__":
    main()
