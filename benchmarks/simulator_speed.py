"""Simulator speed: tasks per second of the whole ``yardmaster simulate`` command.

Usage::

    python -m benchmarks.simulator_speed [--tasks N] [--workers W] [--rounds R]
        [--strategies A,B] [--profile STRATEGY] [--json-out FILE]

Generates one ``mixed`` workload of ``N`` tasks (default 300,000) sized for
``W`` workers (default 32) into a temporary directory, then, for every
strategy in ``scheduler.settings.STRATEGY_NAMES``, times the command
``python -m scheduler.cli simulate FILE --workers W --strategy NAME --json``
as a subprocess, from start to exit: interpreter start-up, imports, reading
and validating the file, the simulation and the metrics all count. The rate
is ``N`` over the best of ``R`` rounds' wall time (default 1 round); the
target is 200,000 tasks/s. Each round's CPU time (user + system, from the
child's rusage) is recorded too: other work on a shared machine stretches
wall time far more than CPU time.

Where the time goes: the same command on a one-task file gives the start-up
cost (interpreter, imports, settings, argument parsing), and in this process
(CPU time, best of ``R``) reading and validating the file, then per strategy
the simulation and the metrics.

``--profile NAME`` runs the same command once more under cProfile and prints
the top functions (by own time and by cumulative time) to stderr.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tree this file belongs to
    sys.path.insert(0, str(ROOT))

from benchmarks.common import code_state, emit, finish_machine, machine, progress, today  # noqa: E402
from scheduler.adaptive import build_strategy  # noqa: E402
from scheduler.settings import STRATEGY_NAMES, load_settings  # noqa: E402
from scheduler.simulator import Simulator, outcome_metrics  # noqa: E402
from scheduler.workload import load_workload  # noqa: E402

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


def timed(command: list[str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system) and stdout of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def phases(path: Path, workers: int, strategies: list[str], rounds: int) -> dict:
    """CPU seconds in this process (best of ``rounds``): loading, and per strategy
    the simulation and the metrics."""
    settings = load_settings()
    load = []
    for _ in range(rounds):
        started = time.process_time()
        tasks = load_workload(path)
        load.append(time.process_time() - started)
    out: dict = {"load_cpu_seconds": round(min(load), 3), "strategies": {}}
    for name in strategies:
        sim_s, met_s = [], []
        for _ in range(rounds):
            sim = Simulator.from_settings(build_strategy(name, settings), settings, workers=workers)
            started = time.process_time()
            outcome = sim.simulate(tasks)
            middle = time.process_time()
            outcome_metrics(outcome, workers)
            sim_s.append(middle - started)
            met_s.append(time.process_time() - middle)
        out["strategies"][name] = {
            "simulate_cpu_seconds": round(min(sim_s), 3),
            "metrics_cpu_seconds": round(min(met_s), 3),
        }
        progress(
            f"  in process: {name:<12} simulate {min(sim_s):.2f} s, metrics {min(met_s):.2f} s"
        )
    return out


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
        "command": " ".join(["python -m benchmarks.simulator_speed", *sys.argv[1:]]),
        "date": today(),
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

        one = Path(tmp) / "one.jsonl"
        one.write_text(path.open().readlines()[1])  # the first task (line 0 is the header)
        walls, cpus = [], []
        for _ in range(max(3, args.rounds)):
            wall, cpu, _ = timed(simulate_command(one, args.workers, "fifo"))
            walls.append(wall)
            cpus.append(cpu)
        result["startup"] = {"seconds": round(min(walls), 3), "cpu_seconds": round(min(cpus), 3)}
        progress(f"  start-up (a one-task file): {min(walls):.2f} s, CPU {min(cpus):.2f} s")

        per_strategy = {}
        for name in strategies:
            walls, cpus = [], []
            for _ in range(args.rounds):
                wall, cpu, stdout = timed(simulate_command(path, args.workers, name))
                walls.append(wall)
                cpus.append(cpu)
            summary = json.loads(stdout)[name]
            best = min(walls)
            rate = args.tasks / best
            per_strategy[name] = {
                "seconds": round(best, 3),
                "all_seconds": [round(w, 3) for w in walls],
                "tasks_per_s": round(rate),
                "meets_target": rate >= TARGET_TASKS_PER_S,
                "cpu_seconds": round(min(cpus), 3),
                "all_cpu_seconds": [round(c, 3) for c in cpus],
                "tasks_per_cpu_s": round(args.tasks / min(cpus)),
                "mean_flow": summary["mean_flow"],
                "utilization": summary["utilization"],
            }
            progress(
                f"  {name:<12} {rate:9.0f} tasks/s ({best:.2f} s; CPU {min(cpus):.2f} s, "
                f"{args.tasks / min(cpus):.0f} tasks per CPU second)"
            )
        result["strategies"] = per_strategy
        result["phases_in_process"] = phases(path, args.workers, strategies, args.rounds)
        finish_machine(result["machine"])
        result["timed_command"] = " ".join(simulate_command(Path("FILE"), args.workers, "NAME")[1:])
        if args.profile:
            progress(f"profiling {args.profile} (cProfile, in process)")
            progress(profile(path, args.workers, args.profile))
    emit(result, args.json_out)


if __name__ == "__main__":
    main()
