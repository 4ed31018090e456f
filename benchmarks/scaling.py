"""Scaling curve: throughput as workers are added, yardmaster against plain Celery, with a plot.

Usage::

    python -m benchmarks.scaling [--workers 1,2,4,8] [--slots 8] [--seconds 0.2] [--waves 15]
        [--rounds 3] [--img-dir docs/img] [--json-out FILE]

Each point is ``W`` workers with a thread pool of ``--slots`` each, running
I/O-bound tasks that sleep ``--seconds``; a run moves ``waves * W * slots``
tasks, so every point lasts about ``waves * seconds`` at the ideal rate
(``W * slots / seconds``), timed as every end-to-end run is
(``benchmarks/clusters.py``). Per round, every point runs once on each
system, the order flipping from round to round. Speedup is a point's median
rate over the median of the smallest count (1 worker) on the same system.

The defaults (8 threads, 200 ms) keep the ideal rate at 8 workers at 320
tasks/s, about a third of what this 2-core machine relays for noops
(yardmaster and plain Celery each reach about 1,000 noops/s on it), so the
curve shows what adding workers costs the coordination, not where the CPUs
run out; with 50 ms tasks 8 such workers would need 1,280 tasks/s, beyond
both systems on 2 cores, and the curve would flatten at the CPU's limit.

The plot (``scaling.svg`` in ``--img-dir``) shows both speedups against the
ideal line.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tree this file belongs to
    sys.path.insert(0, str(ROOT))

from benchmarks.clusters import Shape, plain_run, timed, yardmaster_run  # noqa: E402
from benchmarks.common import code_state, emit, finish_machine, machine, progress, today  # noqa: E402

SYSTEMS = ("yardmaster", "plain_celery")


def summarize(
    counts: list[int], runs: dict[str, dict[int, list[dict[str, Any]]]], ideal_one: float
) -> dict[str, Any]:
    """Per system and worker count: median rate, spread, share of ideal, and speedup over
    the smallest count (1 worker by default)."""
    out: dict[str, Any] = {}
    for system in SYSTEMS:
        base = statistics.median(r["tasks_per_s"] for r in runs[system][counts[0]])
        points = {}
        for n in counts:
            rates = [r["tasks_per_s"] for r in runs[system][n]]
            median = statistics.median(rates)
            points[str(n)] = {
                "median_tasks_per_s": median,
                "min_tasks_per_s": min(rates),
                "max_tasks_per_s": max(rates),
                "share_of_ideal": median / (ideal_one * n),
                "speedup": median / base,
                "rounds": runs[system][n],
            }
        out[system] = points
    return out


def plot(figures: dict[str, Any], counts: list[int], subtitle: str, path: Path) -> None:
    """Speedup against worker count for both systems and the ideal, as SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "yardmaster-scaling"  # stable ids: a diff shows data changes
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(counts, [n / counts[0] for n in counts], linestyle=":", color="#888888", label="ideal")
    styles = {"yardmaster": ("#4e79a7", "o"), "plain_celery": ("#f28e2b", "s")}
    for system in SYSTEMS:
        colour, marker = styles[system]
        ys = [figures[system][str(n)]["speedup"] for n in counts]
        label = "plain Celery" if system == "plain_celery" else system
        ax.plot(counts, ys, marker=marker, color=colour, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xticks(counts, [str(n) for n in counts])
    ax.set_yticks([n / counts[0] for n in counts], [f"{n / counts[0]:g}" for n in counts])
    ax.set_xlabel("workers")
    ax.set_ylabel(f"speedup over {counts[0]} worker" + ("s" if counts[0] > 1 else ""))
    ax.set_title(f"Scaling curve ({subtitle})", fontsize=10)
    ax.grid(True, which="major", color="#dddddd")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the JSON report on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="1,2,4,8", help="worker counts, ascending")
    parser.add_argument("--slots", type=int, default=8, help="threads per worker")
    parser.add_argument("--seconds", type=float, default=0.2, help="each task's sleep")
    parser.add_argument("--waves", type=int, default=15, help="tasks per slot in a run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--strategy", default=None, help="yardmaster's (default: YM_STRATEGY)")
    parser.add_argument("--img-dir", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    counts = sorted(int(n) for n in args.workers.split(","))
    if counts[0] < 1 or args.slots < 1 or args.waves < 1 or args.rounds < 1:
        parser.error("worker counts, --slots, --waves and --rounds must be at least 1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    info = machine()
    code = code_state(("scheduler", "workers", "broker_config"), (".py", ".lua"))
    started = time.perf_counter()
    log_root = Path(tempfile.mkdtemp(prefix="ym-bench-scaling-"))
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {s: {n: [] for n in counts} for s in SYSTEMS}
    for rnd in range(args.rounds):
        progress(f"round {rnd + 1}/{args.rounds}")
        order = [(n, s) for n in counts for s in SYSTEMS]
        if rnd % 2:
            order.reverse()
        for n, system in order:
            shape = Shape(n, args.slots, "threads", args.seconds, args.strategy)
            tasks = args.waves * n * args.slots
            log_dir = log_root / f"round{rnd + 1}-{n}-{system}"
            log_dir.mkdir()
            run = yardmaster_run if system == "yardmaster" else plain_run
            runs[system][n].append(
                timed(
                    f"{n} workers, {system}", lambda r=run, s=shape, t=tasks, d=log_dir: r(s, t, d)
                )
            )
    ideal_one = args.slots / args.seconds
    figures = summarize(counts, runs, ideal_one)
    subtitle = f"{args.slots} threads per worker, {args.seconds * 1000:g} ms tasks"
    image = args.img_dir / "scaling.svg"
    plot(figures, counts, subtitle, image)
    for system in SYSTEMS:
        shown = ", ".join(f"{n}: {figures[system][str(n)]['speedup']:.2f}" for n in counts)
        progress(f"{system} speedup {shown}")
    emit(
        {
            "benchmark": "scaling",
            "command": " ".join(["python -m benchmarks.scaling", *(argv or sys.argv[1:])]),
            "date": today(),
            "config": {
                "workers": counts,
                "slots": args.slots,
                "pool": "threads",
                "seconds": args.seconds,
                "waves": args.waves,
                "rounds": args.rounds,
                "strategy": args.strategy,
                "logs": str(log_root),
            },
            "ideal_tasks_per_s_per_worker": ideal_one,
            "figures": figures,
            "image": str(image),
            "code": code,
            "machine": finish_machine(info),
            "wall_seconds": time.perf_counter() - started,
        },
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
