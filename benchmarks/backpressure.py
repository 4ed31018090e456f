"""What admission control costs a producer: submission throughput with it on and off.

Usage::

    python -m benchmarks.backpressure [--tasks N] [--batch B] [--rounds R] [--json-out FILE]

Method: one private ``redis-server`` with ``maxmemory`` 1 GB and ``noeviction`` (so
the memory check runs: ``submit.lua`` reads ``INFO memory``), no dispatcher or
worker (the submission path alone). Per round, for each mode in turn, the
database is emptied and ``N`` noop tasks are submitted by one client, once one
task per call (``Client.submit``: the check runs for every task, the worst case)
and once in batches of ``B`` (``submit_many``). Modes: *off* (``YM_MAX_PENDING=0``,
``YM_MEMORY_HIGH_WATER=0``: the script checks nothing) and *on*
(``YM_MAX_PENDING`` far above ``N``, ``YM_MEMORY_HIGH_WATER=0.85``: both checks run
and pass). Tasks per second, median over ``R`` rounds; the modes take turns (each
first every other round), so a change in the machine's load touches both. Also Redis's own time per
``submit.lua`` call (``INFO commandstats``), which the machine's load moves far
less. Target (issue #23): *on* within 5 % of *off*.

One JSON object goes to stdout (and ``--json-out``); progress to stderr.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tree this file belongs to
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    code_state,
    emit,
    finish_machine,
    machine,
    progress,
    submission_rate,
    today,
)
from scheduler.client import Client  # noqa: E402
from scheduler.embedded import EmbeddedRedis  # noqa: E402
from scheduler.settings import load_settings  # noqa: E402
from scheduler.store import Store  # noqa: E402

MODES: dict[str, dict[str, Any]] = {
    "off": {"max_pending": 0, "memory_high_water": 0.0, "memory_low_water": 0.0},
    "on": {"max_pending": 1_000_000_000, "memory_high_water": 0.85, "memory_low_water": 0.75},
}
TARGET = 0.05
"""At most this much slower with admission control on."""


def measure(url: str, tasks: int, batch: int, rounds: int) -> dict[str, Any]:
    """Tasks per second in each mode and shape, every round, and the medians."""
    clients = {
        mode: Client(
            Store.from_url(url, load_settings(redis_url=url, **values)), known_tasks=["noop"]
        )
        for mode, values in MODES.items()
    }
    shapes = {"single": 1, f"batch_{batch}": batch}
    runs: dict[str, dict[str, list[float]]] = {s: {m: [] for m in MODES} for s in shapes}
    usec: dict[str, dict[str, list[float]]] = {s: {m: [] for m in MODES} for s in shapes}
    for r in range(rounds):
        for shape, size in shapes.items():
            order = list(clients.items())
            for mode, client in order if r % 2 == 0 else order[::-1]:  # neither always first
                redis = client.store.client
                redis.flushdb()
                redis.config_resetstat()
                runs[shape][mode].append(round(submission_rate(client, tasks, size), 1))
                stats = redis.info("commandstats")["cmdstat_evalsha"]
                usec[shape][mode].append(float(stats["usec_per_call"]))
        progress(
            f"round {r + 1}/{rounds}: "
            + "; ".join(f"{s} " + ", ".join(f"{m} {v[-1]:.0f}/s" for m, v in by.items())
                        for s, by in runs.items())
        )  # fmt: skip
    out: dict[str, Any] = {}
    for shape, by in runs.items():
        off, on = statistics.median(by["off"]), statistics.median(by["on"])
        us_off, us_on = statistics.median(usec[shape]["off"]), statistics.median(usec[shape]["on"])
        out[shape] = {
            "off_tasks_per_s": round(off, 1),
            "on_tasks_per_s": round(on, 1),
            "on_vs_off": round(on / off - 1, 4),
            "within_target": on >= off * (1 - TARGET),
            "redis_us_per_call_off": us_off,
            "redis_us_per_call_on": us_on,
            "rounds": by,
            "redis_us_rounds": usec[shape],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json-out", type=Path, default=None)
    opts = parser.parse_args()
    server = EmbeddedRedis(options=("--maxmemory", "1gb", "--maxmemory-policy", "noeviction"))
    server.start()
    try:
        info = machine()
        report = {
            "benchmark": "backpressure",
            "command": " ".join(["python -m benchmarks.backpressure", *sys.argv[1:]]),
            "date": today(),
            "code": code_state(("scheduler",), (".py", ".lua")),
            "machine": info,
            "tasks": opts.tasks,
            "batch": opts.batch,
            "rounds": opts.rounds,
            "target": TARGET,
            "shapes": measure(server.url, opts.tasks, opts.batch, opts.rounds),
        }
    finally:
        server.stop()
    finish_machine(info)
    emit(report, opts.json_out)


if __name__ == "__main__":
    main()
