"""Decision cost: how long one scheduling decision takes as the backlog grows.

Usage::

    python -m benchmarks.decision_cost [--sizes 1000,10000,100000,1000000]
        [--decisions N] [--json-out FILE]

For each strategy in ``scheduler.settings.STRATEGY_NAMES`` (built with
``build_strategy(name, load_settings())``) and each backlog size, the
strategy's own queue (``strategy.make_queue(estimates)``) is filled with that
many pending tasks: priorities 0..9, a deadline on half of them, a duration
hint on a fifth, an affinity key on half, and names drawn from 300 duration
keys whose EMAs sit in the ``Estimates``. Then one decision, a call of
``plan(strategy, queue, snapshot, 1)`` with 32 workers that each have one
free slot, is timed ``N`` times (default 3000, after 100 untimed); after
each one a new task is added (not timed), so the backlog keeps its size.
Reported per size: p50, p99 and max microseconds per decision and the median
cost of the add, and whether p99 grows at most logarithmically from the
smallest to the largest size. The target is p99 <= 1 ms.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tree this file belongs to
    sys.path.insert(0, str(ROOT))

from benchmarks.common import code_state, emit, finish_machine, machine, progress, today  # noqa: E402
from scheduler.adaptive import build_strategy  # noqa: E402
from scheduler.models import Estimates, PendingTask, WorkerView  # noqa: E402
from scheduler.settings import STRATEGY_NAMES, load_settings  # noqa: E402
from scheduler.stats import percentile  # noqa: E402
from scheduler.strategies import Snapshot, plan  # noqa: E402

TARGET_P99_US = 1000.0
DURATION_KEYS = 300
AFFINITY_KEYS = 1000
WORKERS = 32
NOW = 1_750_000_000.0


def make_tasks(rng: random.Random, count: int, first_seq: int) -> list[PendingTask]:
    """``count`` pending tasks submitted over the last hour, with mixed attributes."""
    tasks = []
    for seq in range(first_seq, first_seq + count):
        submitted = NOW - rng.uniform(0, 3600)
        tasks.append(
            PendingTask(
                id=f"p{seq}",
                name=f"task-{rng.randrange(DURATION_KEYS)}",
                priority=rng.randrange(10),
                seq=seq,
                submitted_at=submitted,
                deadline=submitted + rng.uniform(1, 7200) if rng.random() < 0.5 else None,
                expected_duration=rng.uniform(0.01, 5) if rng.random() < 0.2 else None,
                affinity_key=f"key-{rng.randrange(AFFINITY_KEYS)}" if rng.random() < 0.5 else None,
            )
        )
    return tasks


def measure(name: str, backlog: list[PendingTask], fresh: list[PendingTask], warmup: int) -> dict:
    """Time single decisions on a queue holding ``backlog``; ``fresh`` refills it."""
    rng = random.Random(7)
    estimates = Estimates(
        durations={f"task-{k}": rng.uniform(0.01, 5) for k in range(DURATION_KEYS)},
        default_duration=1.0,
    )
    strategy = build_strategy(name, load_settings())
    queue = strategy.make_queue(estimates)
    started = time.perf_counter()
    for task in backlog:
        queue.add(task)
    fill_seconds = time.perf_counter() - started
    workers = [WorkerView(f"w{i}@bench", slots=1) for i in range(WORKERS)]
    snapshot = Snapshot(now=NOW, workers=workers, estimates=estimates)
    decide_ns: list[int] = []
    add_ns: list[int] = []
    clock = time.perf_counter_ns
    for i, task in enumerate(fresh):
        t0 = clock()
        decisions = plan(strategy, queue, snapshot, 1)
        t1 = clock()
        queue.add(task)
        t2 = clock()
        assert len(decisions) == 1
        if i >= warmup:
            decide_ns.append(t1 - t0)
            add_ns.append(t2 - t1)
    assert len(queue) == len(backlog)
    us = [ns / 1000 for ns in decide_ns]
    return {
        "fill_seconds": round(fill_seconds, 3),
        "decisions": len(us),
        "p50_us": round(percentile(us, 50), 2),
        "p99_us": round(percentile(us, 99), 2),
        "max_us": round(max(us), 2),
        "mean_us": round(statistics.fmean(us), 2),
        "add_p50_us": round(percentile([ns / 1000 for ns in add_ns], 50), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--decisions", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--strategies", default=",".join(STRATEGY_NAMES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    info = machine()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    strategies = args.strategies.split(",")

    results: dict[str, dict[str, dict]] = {name: {} for name in strategies}
    for size in sizes:
        rng = random.Random(args.seed)
        progress(f"backlog {size}: making tasks")
        backlog = make_tasks(rng, size, 0)
        fresh = make_tasks(rng, args.warmup + args.decisions, size)
        for name in strategies:
            row = measure(name, backlog, fresh, args.warmup)
            results[name][str(size)] = row
            progress(
                f"  {name:<9} fill {row['fill_seconds']:6.2f} s  p50 {row['p50_us']:8.1f} us"
                f"  p99 {row['p99_us']:8.1f} us  max {row['max_us']:9.1f} us"
            )
        del backlog, fresh

    small, large = str(sizes[0]), str(sizes[-1])
    log_ratio = math.log(sizes[-1]) / math.log(sizes[0]) if sizes[0] > 1 else float("inf")
    summary = {}
    for name in strategies:
        p99s = [results[name][str(s)]["p99_us"] for s in sizes]
        ratio = results[name][large]["p99_us"] / results[name][small]["p99_us"]
        summary[name] = {
            "worst_p99_us": max(p99s),
            "meets_target": max(p99s) <= TARGET_P99_US,
            "p99_ratio_largest_to_smallest": round(ratio, 2),
            "at_most_logarithmic": ratio <= log_ratio,
        }
    emit(
        {
            "benchmark": "decision_cost",
            "command": " ".join(["python -m benchmarks.decision_cost", *sys.argv[1:]]),
            "date": today(),
            "machine": finish_machine(info),
            "code": code_state(),
            "target_p99_us": TARGET_P99_US,
            "sizes": sizes,
            "workers": WORKERS,
            "log_ratio_largest_to_smallest": round(log_ratio, 2),
            "summary": summary,
            "results": results,
        },
        args.json_out,
    )


if __name__ == "__main__":
    main()
