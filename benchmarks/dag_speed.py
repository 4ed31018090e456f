"""Simulator speed on a 300,000-task DAG, as a ratio to the same command on 300,000 independent tasks.

Usage::

    python benchmarks/dag_speed.py [--tasks N] [--workers W] [--rounds R]
        [--strategies A,B] [--json-out FILE]

Generates two files of ``N`` tasks (default 300,000) sized for ``W`` workers
(default 32): one workflow from ``yardmaster workload gen --kind dag`` (mean
layer width 2 x W, fan-in and fan-out up to 3, a deadline on every sink,
durations learned), and the ``mixed`` kind that benchmarks/simulator_speed.py
uses. For each strategy (default ``fifo``, ``priority``, ``edf``,
``critical_path``) it times the whole command ``python -m scheduler.cli
simulate FILE --workers W --strategy NAME --json`` as a subprocess on each
file, the two alternating, ``R`` rounds each (default 3), and reports the best
wall and CPU time, tasks per second, and the DAG's time over the independent
file's: on a shared machine the ratio, measured side by side, is the figure
to read. In this process (CPU time, best of ``R``) it also splits the DAG's
run into reading and checking the file, the simulation and the metrics.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import code_state, emit, machine, progress  # noqa: E402
from scheduler.adaptive import build_strategy  # noqa: E402
from scheduler.settings import load_settings  # noqa: E402
from scheduler.simulator import Simulator, outcome_metrics  # noqa: E402
from scheduler.workload import load_workload  # noqa: E402


def simulate_command(path: Path, workers: int, strategy: str) -> list[str]:
    """The command timed (as benchmarks/simulator_speed.py times it)."""
    command = [sys.executable, "-m", "scheduler.cli", "simulate", str(path)]
    return [*command, "--workers", str(workers), "--strategy", strategy, "--json"]


def timed(command: list[str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (the child's user + system) and stdout of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def generate(kind: str, tasks: int, workers: int, seed: int, path: Path) -> list[str]:
    """Write the workload file; returns the command that made it."""
    command = [sys.executable, "-m", "scheduler.cli", "workload", "gen", "--kind", kind]
    command += ["--n", str(tasks), "--seed", str(seed), "--workers", str(workers)]
    subprocess.run([*command, "--out", str(path)], check=True)
    return command[1:]


def in_process(path: Path, workers: int, strategies: list[str], rounds: int) -> dict:
    """CPU seconds (best of ``rounds``) to read the file, then per strategy to simulate
    and to compute the metrics."""
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
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=300_000)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--strategies", default="fifo,priority,edf,critical_path")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    strategies = args.strategies.split(",")
    result: dict = {
        "benchmark": "dag_speed",
        "machine": machine(),
        "code": code_state(),
        "tasks": args.tasks,
        "workers": args.workers,
    }
    with tempfile.TemporaryDirectory(prefix="ym-dagspeed-") as tmp:
        files = {"dag": Path(tmp) / "dag.jsonl", "independent": Path(tmp) / "mixed.jsonl"}
        progress(f"generating {args.tasks} tasks twice (dag, mixed) for {args.workers} workers")
        result["workload_commands"] = {
            "dag": generate("dag", args.tasks, args.workers, args.seed, files["dag"]),
            "independent": generate(
                "mixed", args.tasks, args.workers, args.seed, files["independent"]
            ),
        }
        result["file_bytes"] = {key: path.stat().st_size for key, path in files.items()}
        per_strategy = {}
        for name in strategies:
            walls: dict[str, list[float]] = {"dag": [], "independent": []}
            cpus: dict[str, list[float]] = {"dag": [], "independent": []}
            for _ in range(args.rounds):
                for key, path in files.items():
                    wall, cpu, stdout = timed(simulate_command(path, args.workers, name))
                    walls[key].append(wall)
                    cpus[key].append(cpu)
                    assert json.loads(stdout)[name]["tasks"] == args.tasks
            row = {
                key: {
                    "seconds": round(min(walls[key]), 3),
                    "all_seconds": [round(w, 3) for w in walls[key]],
                    "tasks_per_s": round(args.tasks / min(walls[key])),
                    "cpu_seconds": round(min(cpus[key]), 3),
                }
                for key in files
            }
            row["ratio_wall"] = round(min(walls["dag"]) / min(walls["independent"]), 2)
            row["ratio_cpu"] = round(min(cpus["dag"]) / min(cpus["independent"]), 2)
            per_strategy[name] = row
            progress(
                f"  {name:<14} dag {row['dag']['tasks_per_s']:>7} tasks/s "
                f"({row['dag']['seconds']:.2f} s), independent "
                f"{row['independent']['tasks_per_s']:>7} tasks/s "
                f"({row['independent']['seconds']:.2f} s): {row['ratio_wall']:.2f}x wall, "
                f"{row['ratio_cpu']:.2f}x CPU"
            )
        result["strategies"] = per_strategy
        progress("in process, the DAG (CPU seconds, best of the rounds)")
        result["dag_in_process"] = in_process(files["dag"], args.workers, strategies, args.rounds)
        progress(json.dumps(result["dag_in_process"]))
        result["machine"]["loadavg_end"] = list(os.getloadavg())
        result["command"] = " ".join(simulate_command(Path("FILE"), args.workers, "NAME")[1:])
    emit(result, args.json_out)


if __name__ == "__main__":
    main()
