"""Tune wall time, and the regression gate's false-positive rate in A/A runs.

1. Wall time of `tune` with 100 trials on a 100k-task trace (mixed, 8
   workers) with 2 jobs, every strategy searched (target: at most 3 minutes
   on a 2-core machine).
2. A/A: the baseline against itself. The simulator is deterministic, so the
   same configuration on the same tasks gives the same schedule and the gate
   can never propose it; to give it noise to resist, each run simulates the
   baseline's replicates of the held-out part (as tune does, YM_TUNE_REPLICATES
   of them, run times multiplied by log-normal noise of sigma 0.1) twice, with
   independent noise, and judges one set against the other as a candidate
   (harder than tune's own replicates, whose noise the two configurations
   share). Over kinds, seeds and splits, the share proposed is the
   false-positive rate (target at most 5 %); reported with the default floor
   (YM_TUNE_MIN_GAIN 0.01) and with none (0), where only the intervals decide,
   and for each of the gate's two intervals alone (low end above 0).

    python benchmarks/tune_speed.py [--tasks 100000] [--aa-seeds 40] [--replicates 5] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from common import code_state, emit, machine, progress

from scheduler.settings import load_settings
from scheduler.tuning import evaluate
from scheduler.tuning.regression import Tolerances, judge
from scheduler.tuning.rules import current_config
from scheduler.tuning.session import Baseline, TuneOptions, tune
from scheduler.tuning.trace import split_trace
from scheduler.workload_gen import KINDS, generate, to_jsonl


def speed(tasks: int, trials: int, jobs: int) -> dict:
    settings = load_settings({})
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "big.jsonl"
        trace.write_text(to_jsonl(generate("mixed", tasks, 1, workers=8)))
        began = time.perf_counter()
        record = tune(
            TuneOptions(
                trace, workers=8, trials=trials, jobs=jobs, storage=f"sqlite:///{tmp}/t.db"
            ),
            Baseline(current_config(settings.strategy, settings)),
            settings,
        )
        wall = time.perf_counter() - began
    progress(f"speed: {trials} trials on {tasks} tasks with {jobs} jobs: {wall:.1f} s")
    return {
        "tasks": tasks, "trials": trials, "jobs": jobs, "wall_seconds": wall,
        "trials_done": record["trials"], "best": record["best"]["strategy"],
        "gate": record["gate"]["reason"],
    }  # fmt: skip


def aa(seeds: int, n: int, sigma: float, replicates: int) -> dict:
    settings = load_settings({})
    baseline = current_config(settings.strategy, settings)
    floors = {"default_floor": Tolerances.from_settings(settings)}
    floors["no_floor"] = dataclasses.replace(floors["default_floor"], min_gain=0.0)
    proposed = {name: 0 for name in floors}
    alone = {"noise_interval": 0, "traffic_interval": 0}  # low end > 0, each test alone
    identical = 0
    runs = 0
    for kind in KINDS:
        for seed in range(seeds):
            holdout = 0.2 + 0.2 * (seed % 3)  # several splits
            part = split_trace(generate(kind, n, 1000 + seed, workers=4), holdout).holdout
            run = dict(base=settings, workers=4, slots=1, noise=sigma, count=replicates)
            one = evaluate.replicates(baseline, part, seed=2 * seed, **run)
            two = evaluate.replicates(baseline, part, seed=2 * seed + 1, **run)
            for name, tol in floors.items():
                verdict = judge(one, two, "misses_then_flow", tol, seed=seed)
                proposed[name] += verdict.proposed
            for test in alone:
                interval = getattr(verdict, test)
                alone[test] += interval is not None and interval[0] > 0
            same = evaluate.simulate(baseline, part, base=settings, workers=4, slots=1)
            identical += judge(same, same, "misses_then_flow", floors["no_floor"]).proposed
            runs += 1
        progress(f"A/A {kind}: {proposed} proposed of {runs} so far")
    return {
        "runs": runs, "tasks": n, "sigma": sigma, "replicates": replicates,
        "objective": "misses_then_flow", "proposed": proposed,
        "false_positive_rate": {k: v / runs for k, v in proposed.items()},
        "alone_no_floor": {k: v / runs for k, v in alone.items()},
        "identical_proposed": identical,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--aa-seeds", type=int, default=40)
    parser.add_argument("--aa-tasks", type=int, default=2000)
    parser.add_argument("--sigma", type=float, default=0.1)
    parser.add_argument("--replicates", type=int, default=5)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    result = {"benchmark": "tune_speed", "machine": machine(), "code": code_state()}
    if not args.skip_speed:
        result["speed"] = speed(args.tasks, args.trials, args.jobs)
    if args.aa_seeds > 0:  # --aa-seeds 0: the wall time alone
        result["aa"] = aa(args.aa_seeds, args.aa_tasks, args.sigma, args.replicates)
    emit(result, args.json_out)


if __name__ == "__main__":
    main()
