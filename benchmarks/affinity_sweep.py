"""Affinity under load: ``load_balance`` and ``weighted`` against the best order-only strategy.

Usage::

    python benchmarks/affinity_sweep.py [--n N] [--seeds 1,2,3] [--workers 2,3,4]
        [--loads 0.6,0.75,0.9] [--set NAME=VALUE ...] [--json-out FILE] [--markdown FILE]

Each case is one ``yardmaster workload gen --kind affinity`` workload (one
slot per worker, ``warm_capacity * workers`` keys) with its submission times
stretched so that the offered load, counted at cold run times as the
generator counts it, is the case's load instead of the generator's 95 %.
Every case runs in the simulator under ``fifo``, ``priority``, ``sjf``,
``edf``, ``load_balance`` and ``weighted`` with the default settings (or
those given with ``--set``). Reported per case: the mean flow of the best of
fifo / priority / sjf / edf, the ratio of ``load_balance``'s (and
``weighted``'s) mean flow to it, and the share of tasks each ran warm; as JSON
(stdout and ``--json-out``) and a markdown table (``--markdown``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import code_state, emit, machine, progress  # noqa: E402
from scheduler.adaptive import build_strategy  # noqa: E402
from scheduler.settings import Settings, load_settings  # noqa: E402
from scheduler.simulator import Simulator, outcome_metrics  # noqa: E402
from scheduler.workload import WorkloadTask  # noqa: E402
from scheduler.workload_gen import generate  # noqa: E402

BASELINES = ("fifo", "priority", "sjf", "edf")
AFFINE = ("load_balance", "weighted")
GENERATED_LOAD = 0.95  # the load `--kind affinity` is generated at


def affinity_workload(n: int, seed: int, workers: int, load: float) -> list[WorkloadTask]:
    """The generator's affinity workload, its arrivals stretched to ``load`` (cold run times)."""
    tasks = generate("affinity", n, seed, workers=workers)
    stretch = GENERATED_LOAD / load
    return [msgspec.structs.replace(t, submit_at=round(t.submit_at * stretch, 6)) for t in tasks]


def run_case(
    tasks: list[WorkloadTask], workers: int, settings: Settings
) -> dict[str, dict[str, float]]:
    """Mean flow and warm share of every strategy on one workload."""
    out = {}
    for name in BASELINES + AFFINE:
        sim = Simulator.from_settings(build_strategy(name, settings), settings, workers=workers)
        metrics = outcome_metrics(sim.simulate(tasks), workers)
        out[name] = {
            "mean_flow": round(metrics["mean_flow"], 5),
            "warm": round(metrics["affinity_hits"] / len(tasks), 4),
        }
    return out


def summarise(case: dict[str, dict[str, float]]) -> dict[str, object]:
    best = min(BASELINES, key=lambda name: case[name]["mean_flow"])
    row: dict[str, object] = {"best": best, "best_flow": case[best]["mean_flow"]}
    for name in AFFINE:
        row[f"{name}_ratio"] = round(case[name]["mean_flow"] / case[best]["mean_flow"], 4)
        row[f"{name}_warm"] = case[name]["warm"]
    return row


def markdown(rows: list[dict[str, object]]) -> str:
    lines = [
        "| workers | load | seed | best of fifo/priority/sjf/edf (mean flow s) "
        "| `load_balance` / best | `load_balance` warm | `weighted` / best | `weighted` warm |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workers']} | {r['load']:.0%} | {r['seed']} | `{r['best']}` "
            f"{r['best_flow']:.3f} | {r['load_balance_ratio']:.3f} | "
            f"{r['load_balance_warm']:.1%} | {r['weighted_ratio']:.3f} | {r['weighted_warm']:.1%} |"
        )
    worst_ratio = max(float(r["load_balance_ratio"]) for r in rows)  # type: ignore[arg-type]
    worst_warm = min(float(r["load_balance_warm"]) for r in rows)  # type: ignore[arg-type]
    lines += [
        "",
        f"`load_balance` over {len(rows)} cases: largest mean-flow ratio {worst_ratio:.3f}, "
        f"lowest warm share {worst_warm:.1%}.",
    ]
    return "\n".join(lines)


def ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seeds", type=ints, default=[1, 2, 3, 4, 5])
    parser.add_argument("--workers", type=ints, default=[2, 3, 4])
    parser.add_argument("--loads", type=floats, default=[0.6, 0.75, 0.9])
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        overrides[name] = json.loads(value)
    settings = load_settings({}, **overrides)
    started = time.perf_counter()
    rows: list[dict[str, object]] = []
    cases = []
    for workers in args.workers:
        for load in args.loads:
            for seed in args.seeds:
                case = run_case(affinity_workload(args.n, seed, workers, load), workers, settings)
                row = {"workers": workers, "load": load, "seed": seed, **summarise(case)}
                rows.append(row)
                cases.append({"workers": workers, "load": load, "seed": seed, "strategies": case})
                progress(json.dumps(row))
    text = markdown(rows)
    progress(text)
    if args.markdown is not None:
        args.markdown.write_text(text + "\n")
    result = {
        "benchmark": "affinity_sweep",
        "machine": machine(),
        "code": code_state(),
        "n": args.n,
        "settings": overrides,
        "rows": rows,
        "cases": cases,
        "seconds": round(time.perf_counter() - started, 1),
    }
    emit(result, args.json_out)


if __name__ == "__main__":
    main()
