"""Makespan of ``critical_path`` on random layered DAGs, against every strategy and the lower bound.

Usage::

    python benchmarks/dag_quality.py [--instances N] [--json-out FILE] [--markdown FILE]

Each instance is one workflow from ``yardmaster workload gen --kind dag``
(:func:`draw_instance`: 30 to 300 tasks, 2, 3, 4 or 8 workers of one slot,
mean layer width 2 to 3 x workers, fan-in 1 to 4, fan-out 2 to 4, durations
learned, not hinted), simulated under every strategy. The lower bound is
``max(critical path, total work / slots)`` with the true durations. Two
variants: the generator's own (a deadline on every sink, so ``edf`` orders by
deadlines propagated back through the workflow) and the same DAGs without
deadlines. Reports, per variant, the distribution of ``critical_path``'s
makespan over the bound, the share of instances where it is at most every
other strategy's, and per strategy the share where it is at most that one's
and the largest ratio; as JSON (stdout and ``--json-out``) and as a markdown
table (``--markdown``).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import code_state, emit, machine, progress  # noqa: E402
from scheduler.adaptive import build_strategy  # noqa: E402
from scheduler.settings import STRATEGY_NAMES, load_settings  # noqa: E402
from scheduler.simulator import Simulator, outcome_metrics  # noqa: E402
from scheduler.workflow import build_graph  # noqa: E402
from scheduler.workload import WorkloadTask  # noqa: E402
from scheduler.workload_dag import DagShape, generate_dag  # noqa: E402


def draw_instance(seed: int) -> tuple[list[WorkloadTask], int]:
    """One random layered workflow and the number of workers it runs on (deterministic)."""
    rng = random.Random(seed)
    workers = rng.choice([2, 3, 4, 8])
    n = rng.randint(30, 300)
    shape = DagShape(
        width=rng.randint(2, 3 * workers), fan_in=rng.randint(1, 4), fan_out=rng.randint(2, 4)
    )
    return generate_dag(n, seed, workers=workers, shape=shape), workers


def lower_bound(tasks: list[WorkloadTask], slots: int) -> float:
    graph = build_graph([t.id for t in tasks], [t.depends_on for t in tasks])
    longest, _ = graph.critical_path([t.duration for t in tasks])
    return max(longest, sum(t.duration for t in tasks) / slots)


def makespans(tasks: list[WorkloadTask], workers: int) -> dict[str, float]:
    settings = load_settings({})
    out = {}
    for name in STRATEGY_NAMES:
        sim = Simulator.from_settings(build_strategy(name, settings), settings, workers=workers)
        out[name] = outcome_metrics(sim.simulate(tasks), workers)["makespan"]
    return out


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def variant(instances: int, deadlines: bool) -> dict:
    ratios = []
    at_most_all = 0
    versus = {
        name: {"at_most": 0, "worst": 0.0} for name in STRATEGY_NAMES if name != "critical_path"
    }
    for seed in range(instances):
        tasks, workers = draw_instance(seed)
        if not deadlines:
            tasks = [msgspec.structs.replace(t, deadline=None) for t in tasks]
        spans = makespans(tasks, workers)
        mine = spans.pop("critical_path")
        ratios.append(mine / lower_bound(tasks, workers))
        at_most_all += mine <= min(spans.values()) + 1e-9
        for name, span in spans.items():
            versus[name]["at_most"] += mine <= span + 1e-9
            versus[name]["worst"] = max(versus[name]["worst"], mine / span)
    return {
        "instances": instances,
        "over_bound": {
            "p50": round(quantile(ratios, 0.5), 4),
            "p95": round(quantile(ratios, 0.95), 4),
            "max": round(max(ratios), 4),
            "within_1_3": sum(r <= 1.3 for r in ratios) / instances,
        },
        "at_most_every_other": at_most_all / instances,
        "versus": {
            name: {"at_most": v["at_most"] / instances, "worst_ratio": round(v["worst"], 4)}
            for name, v in versus.items()
        },
    }


def markdown(result: dict) -> str:
    lines = []
    for label, key in (
        ("sink deadlines (generator default)", "deadlines"),
        ("no deadlines", "none"),
    ):
        v = result[key]
        b = v["over_bound"]
        lines += [
            f"**{label}**, {v['instances']} instances: `critical_path` makespan / lower bound "
            f"p50 {b['p50']:.3f}, p95 {b['p95']:.3f}, max {b['max']:.3f} "
            f"(within 1.3x on {b['within_1_3']:.0%}); at most every other strategy's on "
            f"{v['at_most_every_other']:.0%}.",
            "",
            "| against | critical_path at most it | largest critical_path / it |",
            "|---|---|---|",
        ]
        for name, row in v["versus"].items():
            lines.append(f"| `{name}` | {row['at_most']:.0%} | {row['worst_ratio']:.4f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    result: dict = {"benchmark": "dag_quality", "machine": machine(), "code": code_state()}
    started = time.perf_counter()
    for key, deadlines in (("deadlines", True), ("none", False)):
        progress(f"{args.instances} instances, {'with' if deadlines else 'without'} sink deadlines")
        result[key] = variant(args.instances, deadlines)
    result["seconds"] = round(time.perf_counter() - started, 1)
    text = markdown(result)
    progress(text)
    if args.markdown is not None:
        args.markdown.write_text(text)
    emit(result, args.json_out)


if __name__ == "__main__":
    main()
