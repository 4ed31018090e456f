"""Decision cost with placement constraints (issue #18's benchmark, a first measure).

Usage::

    python -m benchmarks.placement_cost [--pending 100000] [--decisions 2000]

A backlog of ``--pending`` tasks: 30 % need ``gpu=1``, 10 % the label
``zone=eu``, the rest are plain. 50 workers of mixed offers: 10 with
``gpu=2``, 25 with ``zone=eu``, each with one free slot. For each strategy one
decision, ``plan(strategy, queue, snapshot, 1)``, is timed ``--decisions``
times (after 100 untimed), a new task of the same mix added after each
(untimed). Scenario ``gpu-free``: the gpu workers have their gpus free;
``gpu-taken``: every gpu is held, so gpu tasks are skipped (and put back) until
a task that fits is found. Prints p50 / p99 / max microseconds per decision.
Target (issue #18): p99 at most 1 ms at 100k pending with 50 mixed workers.

Under ``gpu-taken`` the cost grows with the gpu tasks ahead of the first task that
fits (see docs/placement.md, "Not built yet", for the figures and the fix).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scheduler.adaptive import build_strategy  # noqa: E402
from scheduler.models import Estimates, PendingTask, PlacedTask, WorkerView  # noqa: E402
from scheduler.settings import STRATEGY_NAMES, load_settings  # noqa: E402
from scheduler.stats import percentile  # noqa: E402
from scheduler.strategies import Snapshot, plan  # noqa: E402

NOW = 1_750_000_000.0


def make_task(rng: random.Random, seq: int) -> PendingTask:
    task = PendingTask(
        id=f"p{seq}",
        name=f"task-{rng.randrange(300)}",
        priority=rng.randrange(10),
        seq=seq,
        submitted_at=NOW - rng.uniform(0, 3600),
        deadline=NOW + rng.uniform(60, 7200) if rng.random() < 0.5 else None,
        affinity_key=f"k{rng.randrange(1000)}" if rng.random() < 0.5 else None,
    )
    roll = rng.random()
    if roll < 0.3:
        return PlacedTask.placed(task, {"gpu": 1}, None)
    if roll < 0.4:
        return PlacedTask.placed(task, None, {"zone": "eu"})
    return task


def make_workers(gpu_free: float) -> list[WorkerView]:
    workers = []
    for i in range(50):
        gpu = {"gpu": 2.0} if i < 10 else None
        workers.append(
            WorkerView(
                f"w{i:02d}",
                slots=2,
                inflight=1,
                resources=gpu,
                free_resources={"gpu": gpu_free} if gpu else None,
                labels={"zone": "eu"} if 10 <= i < 35 else {"zone": "us"},
            )
        )
    return workers


def run(name: str, pending: int, decisions: int, gpu_free: float) -> list[float]:
    rng = random.Random(7)
    strategy = build_strategy(name, load_settings())
    estimates = Estimates()
    queue = strategy.make_queue(estimates)
    for seq in range(pending):
        queue.add(make_task(rng, seq))
    workers = make_workers(gpu_free)
    times: list[float] = []
    seq = pending
    for i in range(decisions + 100):
        snapshot = Snapshot(NOW, workers, estimates)
        start = time.perf_counter()
        plan(strategy, queue, snapshot, 1)
        spent = time.perf_counter() - start
        if i >= 100:
            times.append(spent * 1e6)
        queue.add(make_task(rng, seq))
        seq += 1
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=2000)
    args = parser.parse_args()
    print(f"{args.pending} pending, 50 workers (10 gpu=2, 25 zone=eu), one free slot each")
    for scenario, gpu_free in (("gpu-free", 2.0), ("gpu-taken", 0.0)):
        for name in STRATEGY_NAMES:
            t = sorted(run(name, args.pending, args.decisions, gpu_free))
            print(
                f"{scenario:9} {name:13} p50 {percentile(t, 50):7.1f} us  "
                f"p99 {percentile(t, 99):7.1f} us  max {t[-1]:8.1f} us"
            )


if __name__ == "__main__":
    main()
