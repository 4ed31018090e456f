"""Simulator speed: tasks per second of the whole ``yardmaster simulate`` command.

Usage::

    python benchmarks/simulator_speed.py [--tasks N] [--workers W] [--rounds R]
        [--profile STRATEGY] [--json-out FILE]

Generates one ``mixed`` workload of ``N`` tasks (default 300,000) sized for
``W`` workers (default 32) into a temporary directory, then, for every
strategy in ``scheduler.settings.STRATEGY_NAMES``, times the command
``python -m scheduler.cli simulate FILE --workers W --strategy NAME --json``
as a subprocess, from start to exit: interpreter start-up, imports, reading
and validating the file, the simulation and the metrics all count. The rate
is ``N`` over the best of ``R`` rounds' wall time (default 1 round); the
target is 200,000 tasks/s. The time to read and validate the file alone is
measured in-process too, so the share of loading is known.

``--profile NAME`` runs the same command once more under cProfile and prints
the top functions (by own time and by cumulative time) to stderr.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import code_state, emit, machine, progress

from scheduler.settings import STRATEGY_NAMES
from scheduler.workload import load_workload

TARGET_TASKS_PER_S = 200_000


def simulate_command(path: Path, workers: int, strategy: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "scheduler.cli",
        "simulate",
        str(path),
        "--workers",
        str(workers),
        "--strategy",
        strategy,
        "--json",
    ]


def profile(path: Path, workers: int, strategy: str, top: int = 25) -> str:
    """cProfile of the simulate command run in this process; the top entries as text."""
    from scheduler.cli import app

    profiler = cProfile.Profile()
    args = simulate_command(path, workers, strategy)[3:]
    profiler.enable()
    try:
        app(args, standalone_mode=False)
    finally:
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=300_000)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--strategies", default=",".join(STRATEGY_NAMES))
    parser.add_argument("--profile", metavar="STRATEGY", default=None)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    strategies = args.strategies.split(",")

    result: dict = {
        "benchmark": "simulator_speed",
        "machine": machine(),
        "code": code_state(),
        "target_tasks_per_s": TARGET_TASKS_PER_S,
        "tasks": args.tasks,
        "workers": args.workers,
    }
    with tempfile.TemporaryDirectory(prefix="ym-simspeed-") as tmp:
        path = Path(tmp) / "mixed.jsonl"
        gen = [sys.executable, "-m", "scheduler.cli", "workload", "gen", "--kind", "mixed"]
        gen += ["--n", str(args.tasks), "--seed", str(args.seed)]
        gen += ["--workers", str(args.workers), "--out", str(path)]
        progress(f"generating {args.tasks} mixed tasks for {args.workers} workers")
        started = time.perf_counter()
        subprocess.run(gen, check=True)
        result["generate_seconds"] = round(time.perf_counter() - started, 3)
        result["workload_command"] = " ".join(gen[1:]).replace(str(path), "FILE")
        result["file_bytes"] = path.stat().st_size

        started = time.perf_counter()
        load_workload(path)
        result["load_seconds_in_process"] = round(time.perf_counter() - started, 3)
        progress(f"  reading and validating alone: {result['load_seconds_in_process']:.2f} s")

        per_strategy = {}
        for name in strategies:
            walls = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                proc = subprocess.run(
                    simulate_command(path, args.workers, name),
                    capture_output=True,
                    text=True,
                    check=True,
                )
                walls.append(time.perf_counter() - started)
            summary = json.loads(proc.stdout)[name]
            best = min(walls)
            rate = args.tasks / best
            per_strategy[name] = {
                "seconds": round(best, 3),
                "all_seconds": [round(w, 3) for w in walls],
                "tasks_per_s": round(rate),
                "meets_target": rate >= TARGET_TASKS_PER_S,
                "mean_flow": summary["mean_flow"],
                "utilization": summary["utilization"],
            }
            progress(f"  {name:<9} {rate:9.0f} tasks/s ({best:.2f} s)")
        result["strategies"] = per_strategy
        result["command"] = " ".join(simulate_command(Path("FILE"), args.workers, "NAME")[1:])
        if args.profile:
            progress(f"profiling {args.profile} (cProfile, in process)")
            progress(profile(path, args.workers, args.profile))
    emit(result, args.json_out)


if __name__ == "__main__":
    main()
