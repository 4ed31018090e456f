"""Dependency overhead through a live cluster: a chain and a fan-out / fan-in against
the same number of independent tasks, and the cost of storing a workflow.

Usage::

    python -m benchmarks.dag_live [--tasks N] [--slots S] [--rounds R]
        [--workflow-nodes M] [--json-out FILE]

On one private ``redis-server``, each shape runs on a fresh namespace with a
dispatcher and one worker of ``S`` slots (default 1, so that a chain, which
can use only one slot, is compared with independent tasks on the same
capacity): ``N`` ``noop`` tasks (default 2,000) submitted in one
``submit_many`` as independent tasks, as a chain (each depends on the one
before), and as a fan-out / fan-in (one root, ``N - 2`` children, one sink).
The clock runs from the submission until ``Client.wait`` has every record
terminal; the shapes alternate, ``R`` rounds each (default 2), and the best
time of each is reported with its ratio to the independent tasks'. Then a
random workflow of ``M`` nodes (default 20,000; up to two parents each) is
stored with ``submit_workflow`` and nothing running: its time and the growth
of Redis's ``used_memory`` per node.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, emit, progress
from scheduler.cli.connect import BUILTIN_TASKS
from scheduler.client import Client
from scheduler.embedded import EmbeddedRedis
from scheduler.local_cluster import LocalCluster
from scheduler.settings import load_settings

SHAPES = ("independent", "chain", "fan")


def _cluster(redis: EmbeddedRedis, log_dir: Path) -> tuple[LocalCluster, Client]:
    settings = load_settings(redis_url=redis.url, namespace="b" + uuid.uuid4().hex[:8])
    c = LocalCluster(
        settings, redis=redis, log_dir=log_dir, env={"PYTHONPATH": str(ROOT)}, cwd=ROOT
    )
    return c, Client(c.store, known_tasks=list(BUILTIN_TASKS))


def _items(shape: str, n: int) -> list[dict[str, Any]]:
    if shape == "independent":
        return [{"id": f"i{i}", "name": "noop"} for i in range(n)]
    if shape == "chain":
        rest = [{"id": f"c{i}", "name": "noop", "depends_on": [f"c{i - 1}"]} for i in range(1, n)]
        return [{"id": "c0", "name": "noop"}, *rest]
    middle = [{"id": f"f{i}", "name": "noop", "depends_on": ["root"]} for i in range(n - 2)]
    sink = {"id": "sink", "name": "noop", "depends_on": [m["id"] for m in middle]}
    return [{"id": "root", "name": "noop"}, *middle, sink]


def _run(redis: EmbeddedRedis, log_dir: Path, shape: str, n: int, slots: int) -> float:
    c, client = _cluster(redis, log_dir)
    try:
        c.dispatcher()
        c.worker("w@dag-live", slots=slots)
        items = _items(shape, n)
        t0 = time.perf_counter()
        handles = client.submit_many(items)
        records = client.wait(handles, timeout=max(600.0, n * 0.2))
        wall = time.perf_counter() - t0
        assert all(r.state == "succeeded" for r in records), shape
        return wall
    finally:
        c.stop()


def _store_workflow(redis: EmbeddedRedis, log_dir: Path, m: int) -> dict[str, float]:
    c, client = _cluster(redis, log_dir)
    rng = random.Random(1)
    items = [
        {
            "id": f"m{i}",
            "name": "noop",
            "depends_on": [f"m{j}" for j in sorted({rng.randrange(i) for _ in range(2)})]
            if i
            else [],
        }
        for i in range(m)
    ]
    try:
        before = int(c.store.client.info("memory")["used_memory"])
        t0 = time.perf_counter()
        client.submit_workflow(items)
        wall = time.perf_counter() - t0
        after = int(c.store.client.info("memory")["used_memory"])
    finally:
        c.stop()
    return {"nodes": m, "seconds": round(wall, 3), "bytes_per_node": round((after - before) / m)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--slots", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workflow-nodes", type=int, default=20_000)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    redis = EmbeddedRedis().start()
    log_dir = Path(tempfile.mkdtemp(prefix="dag-live-"))
    times: dict[str, list[float]] = {s: [] for s in SHAPES}
    try:
        for r in range(args.rounds):
            for shape in SHAPES:
                progress(f"round {r + 1}: {shape}, {args.tasks} tasks")
                times[shape].append(_run(redis, log_dir, shape, args.tasks, args.slots))
        stored = _store_workflow(redis, log_dir, args.workflow_nodes)
    finally:
        redis.stop()
    best = {s: min(v) for s, v in times.items()}
    result = {
        "benchmark": "dag_live",
        "tasks": args.tasks,
        "slots": args.slots,
        "rounds": args.rounds,
        "seconds": {s: [round(t, 3) for t in v] for s, v in times.items()},
        "best_seconds": {s: round(t, 3) for s, t in best.items()},
        "ratio_to_independent": {s: round(t / best["independent"], 2) for s, t in best.items()},
        "submit_workflow": stored,
    }
    emit(result, args.json_out)


if __name__ == "__main__":
    main()
