"""yardmaster's end-to-end noop throughput under two or more environment variants, interleaved.

Usage::

    python benchmarks/env_ab.py --rounds 4 --tasks 3000 \\
        "early=" "sync=YM_EARLY_START_WINDOW:0"

Each variant is ``NAME=VAR:VALUE[,VAR:VALUE...]`` (empty: the defaults). Every
round runs each variant once, through the same stack as
``benchmarks/throughput.py``'s first shape (one dispatcher, one worker with 2 slots, a
fresh private Redis), in an order that flips from round to round, and prints
its rate and the CPU milliseconds per task of each process. At the end it
prints each variant's median and one JSON object with every figure. Plain
Celery is not run: this compares yardmaster with itself, so a setting's
effect can be told from the machine's drift.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.clusters import Shape, yardmaster_run  # noqa: E402


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``NAME=VAR:VALUE,...`` as (name, environment overrides)."""
    name, sep, spec = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"variant {text!r}: expected NAME=VAR:VALUE[,VAR:VALUE...]")
    env: dict[str, str] = {}
    for item in filter(None, spec.split(",")):
        var, colon, value = item.partition(":")
        if not colon:
            raise SystemExit(f"variant {name}: {item!r} is not VAR:VALUE")
        env[var] = value
    return name, env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="NAME=VAR:VALUE[,VAR:VALUE...]")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=3000)
    args = parser.parse_args(argv)
    variants = dict(parse_variant(v) for v in args.variants)
    base = dict(os.environ)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    rounds: list[dict[str, Any]] = []
    for r in range(args.rounds):
        order = list(variants) if r % 2 == 0 else list(variants)[::-1]
        for name in order:
            os.environ.clear()
            os.environ.update(base)
            os.environ.update(variants[name])
            out = yardmaster_run(Shape(), args.tasks, Path(tempfile.mkdtemp()))
            rates[name].append(out["tasks_per_s"])
            rounds.append({"round": r, "variant": name, **out})
            print(f"{name}: {out['tasks_per_s']:.0f} tasks/s, cpu ms/task {out['cpu_ms_per_task']}")
    os.environ.clear()
    os.environ.update(base)
    medians = {name: statistics.median(v) for name, v in rates.items()}
    for name, median in medians.items():
        print(f"{name}: median {median:.0f} tasks/s over {[round(x) for x in rates[name]]}")
    summary = {"variants": variants, "tasks": args.tasks, "medians": medians, "rounds": rounds}
    print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
