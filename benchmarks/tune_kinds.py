"""Does `yardmaster tune` find a better configuration on each generated kind?

For each kind (mixed, bursty, deadlines, affinity, phases): a generated trace,
the default configuration (`priority`, aging 0.1) as the baseline, at most 100
trials over every strategy, the objective `misses_then_flow` (the default);
the best is judged on the held-out last 30 % by the regression gate. Writes
the results JSON and a markdown table (improvement and its 95 % interval per
kind) for docs/benchmarks.md.

    python benchmarks/tune_kinds.py [--n 4000] [--workers 4] [--trials 100] [--jobs 2]
        [--json-out benchmarks/results/tune_kinds.json] [--md-out benchmarks/results/tune_kinds.md]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import code_state, emit, machine, progress

from scheduler.settings import load_settings
from scheduler.tuning.rules import current_config
from scheduler.tuning.session import Baseline, TuneOptions, tune
from scheduler.workload_gen import KINDS, generate, to_jsonl


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--objective", default="misses_then_flow")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--md-out", type=Path)
    args = parser.parse_args()
    settings = load_settings({})
    baseline = Baseline(current_config(settings.strategy, settings))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in KINDS:
            trace = Path(tmp) / f"{kind}.jsonl"
            trace.write_text(to_jsonl(generate(kind, args.n, args.seed, workers=args.workers)))
            began = time.perf_counter()
            record = tune(
                TuneOptions(
                    trace, workers=args.workers, objective=args.objective, trials=args.trials,
                    jobs=args.jobs, storage=f"sqlite:///{tmp}/tune.db", seed=args.seed,
                ),
                baseline,
                settings,
            )  # fmt: skip
            wall = time.perf_counter() - began
            row = {
                "kind": kind,
                "baseline": record["baseline"],
                "best": record["best"],
                "improvement": record["improvement"],
                "gate": record["gate"]["reason"],
                "proposed": record["gate"]["proposed"],
                "trials": record["trials"],
                "wall_seconds": wall,
            }
            rows.append(row)
            progress(f"{kind}: {record['gate']['reason']} ({wall:.0f} s)")
    result = {
        "benchmark": "tune_kinds", "machine": machine(), "code": code_state(),
        "n": args.n, "workers": args.workers, "trials": args.trials, "jobs": args.jobs,
        "seed": args.seed, "objective": args.objective, "rows": rows,
    }  # fmt: skip
    emit(result, args.json_out)
    if args.md_out is not None:
        args.md_out.write_text(markdown(result))


def markdown(result: dict) -> str:
    lines = [
        f"{result['n']} tasks per kind (seed {result['seed']}), {result['workers']} workers x 1 "
        f"slot, baseline `priority` (aging 0.1, the default), objective `{result['objective']}`, "
        f"{result['trials']} trials, {result['jobs']} jobs; judged on the last 30 % held out.",
        "",
        "| kind | best found | baseline mean flow / misses | best mean flow / misses | improvement [95 % interval] | proposed |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        b, c = r["baseline"]["metrics"], r["best"]["metrics"]
        imp = r["improvement"]
        low, high = imp["interval"]
        lines.append(
            f"| {r['kind']} | `{r['best']['strategy']}` | {b['mean_flow']:.3f} s / "
            f"{b['deadline_misses']} | {c['mean_flow']:.3f} s / {c['deadline_misses']} | "
            f"{imp['value']:+.1%} [{low:+.1%}, {high:+.1%}] | {'yes' if r['proposed'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
