"""adaptive against the best fixed strategy over many seeds, in the simulator.

Usage::

    python -m benchmarks.adaptive_sweep [--tasks N] [--workers W] [--seeds 1,2,3] [--json-out FILE]

For each generated kind and seed it simulates every fixed strategy and
``adaptive`` (objective: fewest deadline misses, then lowest mean flow) and
reports whether adaptive is within 5% of the best fixed one (fewer misses, or
at most 5% more misses and at most 5% more mean flow), and on ``phases``
whether it beats every fixed one. ``tests/test_adaptive.py`` asserts the same
for two seeds; this sweep shows how far the claim carries.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tree this file belongs to
    sys.path.insert(0, str(ROOT))

from benchmarks.common import code_state, emit, finish_machine, machine, today  # noqa: E402
from scheduler.adaptive import build_strategy  # noqa: E402
from scheduler.settings import load_settings  # noqa: E402
from scheduler.simulator import Simulator, metrics  # noqa: E402
from scheduler.strategies import PURE_STRATEGY_NAMES  # noqa: E402
from scheduler.workload_gen import KINDS, generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seeds", default="1,2,3,11,12")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    info = machine()
    settings = load_settings({})
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for kind in KINDS:
            tasks = generate(kind, args.tasks, seed, workers=args.workers, slots=1)
            out = {}
            for name in (*PURE_STRATEGY_NAMES, "adaptive"):
                sim = Simulator(build_strategy(name, settings), workers=args.workers, slots=1)
                m = metrics(sim.run(tasks), args.workers)
                out[name] = (m["deadline_misses"], m["mean_flow"], len(sim.switches))
            fixed = {n: out[n][:2] for n in PURE_STRATEGY_NAMES}
            best = min(fixed, key=lambda n: fixed[n])
            misses, flow, switches = out["adaptive"]
            within = misses < fixed[best][0] or (
                misses <= 1.05 * fixed[best][0] and flow <= 1.05 * fixed[best][1]
            )
            beats_all = all((misses, flow) < fixed[n] for n in PURE_STRATEGY_NAMES)
            row = {
                "kind": kind,
                "seed": seed,
                "best_fixed": best,
                "best": fixed[best],
                "adaptive": (misses, flow),
                "switches": switches,
                "within_5pct": within,
                "beats_every_fixed": beats_all,
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    summary = {
        "cases": len(rows),
        "within_5pct": sum(r["within_5pct"] for r in rows),
        "phases_beats_every_fixed": sum(
            r["beats_every_fixed"] for r in rows if r["kind"] == "phases"
        ),
        "phases_cases": sum(1 for r in rows if r["kind"] == "phases"),
    }
    result = {
        "benchmark": "adaptive_sweep",
        "command": " ".join(["python -m benchmarks.adaptive_sweep", *sys.argv[1:]]),
        "date": today(),
        "code": code_state(),
        "machine": finish_machine(info),
        "tasks": args.tasks,
        "workers": args.workers,
        "summary": summary,
        "rows": rows,
    }
    emit(result, args.json_out)


if __name__ == "__main__":
    main()
