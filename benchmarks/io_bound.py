"""I/O-bound tasks on thread pools: yardmaster's strategies against plain Celery, as a share of ideal.

Usage::

    python -m benchmarks.io_bound [--shapes 1x8,1x32,4x8] [--strategies priority,sjf,load_balance]
        [--seconds 0.05] [--waves 40] [--rounds 3] [--json-out FILE]

Each shape ``WxS`` is ``W`` workers with a thread pool of ``S`` (``--pool
threads``). Every task sleeps ``--seconds`` (50 ms), so the ideal rate, every
slot always busy, is ``W * S / seconds`` tasks per second; a run moves
``waves * W * S`` tasks (each slot runs about ``waves`` of them), timed from
the first submission to the last finish exactly as the noop runs are
(``benchmarks/clusters.py``). Per round and shape, plain Celery (threads pool,
same concurrency, ``celery`` queue) runs once and yardmaster once under each
strategy, in an order that flips from round to round.

Reported per shape: the ideal rate; plain Celery's median rate and share of
the ideal; and per strategy yardmaster's median rate, share of the ideal, the
ratio of medians against plain Celery and the per-round (paired) ratios. The
target (issue #21) is a ratio of at least 1.0 for every strategy and shape.
``priority`` fills freed slots through the hand-off list; ``sjf`` and
``load_balance`` place tasks on particular workers, so the dispatcher fills
every slot.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tree this file belongs to
    sys.path.insert(0, str(ROOT))

from benchmarks.clusters import Shape, plain_run, timed, yardmaster_run  # noqa: E402
from benchmarks.common import code_state, emit, finish_machine, machine, progress, today  # noqa: E402

TARGET_RATIO = 1.0
SHAPES = "1x8,1x32,4x8"
STRATEGIES = "priority,sjf,load_balance"


def parse_shape(text: str, seconds: float) -> Shape:
    """``WxS`` as ``W`` thread-pool workers of ``S`` slots running ``seconds``-long sleeps."""
    workers, sep, slots = text.partition("x")
    if not sep or not workers.isdigit() or not slots.isdigit() or "0" in (workers, slots):
        raise SystemExit(f"--shapes: {text!r} is not WxS (e.g. 4x8: 4 workers of 8 threads)")
    return Shape(workers=int(workers), slots=int(slots), pool="threads", seconds=seconds)


def summarize_shape(
    shape: Shape, plain: list[dict[str, Any]], ym: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """The figures of one shape: rates, shares of the ideal, ratios against plain Celery."""
    ideal = shape.ideal_per_s or 0.0
    plain_rates = [r["tasks_per_s"] for r in plain]
    plain_median = statistics.median(plain_rates)
    out: dict[str, Any] = {
        "ideal_tasks_per_s": ideal,
        "plain_celery": {
            "median_tasks_per_s": plain_median,
            "share_of_ideal": plain_median / ideal,
            "rounds": plain,
        },
        "strategies": {},
    }
    for name, runs in ym.items():
        rates = [r["tasks_per_s"] for r in runs]
        median = statistics.median(rates)
        out["strategies"][name] = {
            "median_tasks_per_s": median,
            "share_of_ideal": median / ideal,
            "ratio": median / plain_median,
            "paired_ratios": [a / b for a, b in zip(rates, plain_rates, strict=True)],
            "meets_target": median / plain_median >= TARGET_RATIO,
            "rounds": runs,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the JSON report on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default=SHAPES, help="WxS,... thread-pool workers")
    parser.add_argument("--strategies", default=STRATEGIES)
    parser.add_argument("--seconds", type=float, default=0.05, help="each task's sleep")
    parser.add_argument("--waves", type=int, default=40, help="tasks per slot in a run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.waves < 1 or args.rounds < 1 or args.seconds <= 0:
        parser.error("--waves and --rounds must be at least 1, --seconds above 0")
    shapes = [parse_shape(s, args.seconds) for s in args.shapes.split(",")]
    strategies = args.strategies.split(",")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    info = machine()
    code = code_state(("scheduler", "workers", "broker_config"), (".py", ".lua"))
    started = time.perf_counter()
    log_root = Path(tempfile.mkdtemp(prefix="ym-bench-io-"))
    plain: dict[str, list[dict[str, Any]]] = {s.label: [] for s in shapes}
    ym: dict[str, dict[str, list[dict[str, Any]]]] = {
        s.label: {name: [] for name in strategies} for s in shapes
    }
    for rnd in range(args.rounds):
        progress(f"round {rnd + 1}/{args.rounds}")
        for shape in shapes:
            tasks = args.waves * shape.workers * shape.slots
            log_dir = log_root / f"round{rnd + 1}-{shape.label.replace(' ', '-')}"
            log_dir.mkdir()
            runs: list[tuple[str | None, Shape]] = [(None, shape)]
            runs += [(name, replace(shape, strategy=name)) for name in strategies]
            if rnd % 2:
                runs.reverse()
            for name, run_shape in runs:
                if name is None:
                    result = timed(
                        f"{shape.label}, plain Celery",
                        lambda s=run_shape, t=tasks, d=log_dir: plain_run(s, t, d),
                    )
                    plain[shape.label].append(result)
                else:
                    result = timed(
                        f"{shape.label}, yardmaster {name}",
                        lambda s=run_shape, t=tasks, d=log_dir: yardmaster_run(s, t, d),
                    )
                    ym[shape.label][name].append(result)
    figures = {s.label: summarize_shape(s, plain[s.label], ym[s.label]) for s in shapes}
    for label, fig in figures.items():
        line = ", ".join(
            f"{n} {v['share_of_ideal']:.0%} ({v['ratio']:.2f}x)"
            for n, v in fig["strategies"].items()
        )
        progress(f"{label}: plain {fig['plain_celery']['share_of_ideal']:.0%} of ideal; {line}")
    emit(
        {
            "benchmark": "io_bound",
            "command": " ".join(["python -m benchmarks.io_bound", *(argv or sys.argv[1:])]),
            "date": today(),
            "config": {
                "shapes": [s.label for s in shapes],
                "strategies": strategies,
                "seconds": args.seconds,
                "waves": args.waves,
                "rounds": args.rounds,
                "logs": str(log_root),
            },
            "target_ratio": TARGET_RATIO,
            "shapes": figures,
            "code": code,
            "machine": finish_machine(info),
            "wall_seconds": time.perf_counter() - started,
        },
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
