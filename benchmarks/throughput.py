"""Throughput of yardmaster against plain Celery, measured side by side.

Usage::

    python -m benchmarks.throughput [--tasks N] [--rounds R] [--shapes 1x2,4x2] [--json-out FILE]

Two measurements, each repeated ``R`` times with the two systems interleaved
(the order alternates between rounds, so drift on a shared machine falls on
both sides):

end to end
    ``N`` noop tasks through each shape of ``--shapes`` (``WxS``: ``W`` prefork
    workers with ``S`` processes each; default one worker of 2, and four of
    2), late acks, prefetch multiplier 1, JSON, on a private ``redis-server``
    (the run itself: ``benchmarks/clusters.py``).
    yardmaster: ``python -m scheduler.cli dispatcher`` plus one
    ``python -m scheduler.cli worker --slots S`` per worker; the clock runs from just
    before ``Client.submit_many`` until the ``stats`` counters show ``N``
    terminal tasks (polled every 5 ms); afterwards every record is checked.
    plain Celery: ``celery -A benchmarks.plain_app worker -c S`` per worker; the clock
    runs from just before the first of ``N`` ``noop.apply_async()`` calls
    until, after all were published, the ``celery`` list and kombu's
    ``unacked`` hash are both empty (polled every 5 ms, read in one MULTI);
    afterwards ``inspect stats`` must report ``N`` tasks run.
    plain Celery on yardmaster's transport (first shape only): the same,
    with the worker (and the producer) on ``broker_config.transport``
    (kombu's Redis transport keeping one Redis client per channel), which
    yardmaster's workers use. The headline ratio is against plain Celery as
    it ships; the JSON's ``end_to_end[SHAPE].same_transport`` holds the ratio
    against this variant.

submission
    The producer alone, no worker or dispatcher running: one
    ``submit_many`` of ``N`` noop specs against ``N`` ``apply_async`` calls,
    each after one warm-up call (connection set-up and script loading are
    not counted). Also ``N`` ``noop.delay()`` calls on a ``create_app()``
    app (Celery's own call, one yardmaster submission each; docs/celery.md)
    against the same plain ``apply_async`` calls: the JSON's ``delay``.

Each system gets a fresh private ``redis-server`` for every measurement
(``scheduler.embedded.EmbeddedRedis``). Progress goes to stderr; one JSON
object with the medians, the ratios and every round's figures goes to stdout
(and to ``--json-out``). Besides the rates, each end-to-end round records the
CPU milliseconds per task of every process involved (via ``psutil``) and, for
yardmaster, the median duration of each leg of a task's trip, taken from the
task records (``benchmarks.clusters.stages``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tree this file belongs to
    sys.path.insert(0, str(ROOT))

from redis import Redis  # noqa: E402

from benchmarks.clusters import (  # noqa: E402
    Shape,
    plain_run,
    private_redis,
    summarize,
    timed,
    yardmaster_run,
)
from benchmarks.common import code_state as shared_code_state  # noqa: E402
from benchmarks.common import finish_machine, machine, progress, today  # noqa: E402
from benchmarks.plain_app import QUEUE, make_app  # noqa: E402
from scheduler.client import Client  # noqa: E402
from scheduler.settings import load_settings  # noqa: E402
from scheduler.store import Store, connect  # noqa: E402

TARGET_END_TO_END = 1.0
TARGET_SUBMISSION = 3.0
SHAPES = "1x2,4x2"


def parse_shape(text: str) -> Shape:
    """``WxS`` as W prefork workers with S processes each."""
    workers, sep, slots = text.partition("x")
    if not sep or not workers.isdigit() or not slots.isdigit() or "0" in (workers, slots):
        raise SystemExit(f"--shapes: {text!r} is not WxS (e.g. 4x2: 4 workers of 2 processes)")
    return Shape(workers=int(workers), slots=int(slots))


def yardmaster_submission(tasks: int) -> dict[str, Any]:
    """Rate of one ``submit_many`` of ``tasks`` noop specs, with nothing consuming."""
    with private_redis() as server:
        settings = load_settings(redis_url=server.url)
        store = Store(connect(server.url), settings)
        client = Client(store, known_tasks=["noop"])
        client.submit_many([{"name": "noop"}])  # warm-up: connection, SCRIPT LOAD
        specs = [{"name": "noop"}] * tasks
        t0 = time.perf_counter()
        handles = client.submit_many(specs)
        elapsed = time.perf_counter() - t0
        submitted = store.events.counters().get("submitted", 0)
        if len(handles) != tasks or submitted != tasks + 1:
            raise RuntimeError(f"yardmaster: {submitted} submitted, expected {tasks + 1}")
        store.client.close()
        return {"tasks": tasks, "seconds": elapsed, "tasks_per_s": tasks / elapsed}


def yardmaster_delay(tasks: int) -> dict[str, Any]:
    """Rate of ``tasks`` ``noop.delay()`` calls on a ``create_app()`` app (each one
    submission through ``workers.publishing``), with nothing consuming."""
    from workers.app import create_app

    with private_redis() as server:
        settings = load_settings(redis_url=server.url)
        app = create_app(settings, server.url)
        try:
            noop = app.tasks["noop"]
            noop.delay()  # warm-up: connection, SCRIPT LOAD
            t0 = time.perf_counter()
            for _ in range(tasks):
                noop.delay()
            elapsed = time.perf_counter() - t0
            store = Store(connect(server.url), settings)
            submitted = store.events.counters().get("submitted", 0)
            store.client.close()
            if submitted != tasks + 1:
                raise RuntimeError(f"delay: {submitted} submitted, expected {tasks + 1}")
            return {"tasks": tasks, "seconds": elapsed, "tasks_per_s": tasks / elapsed}
        finally:
            app.close()


def plain_submission(tasks: int) -> dict[str, Any]:
    """Rate of ``tasks`` ``noop.apply_async()`` calls, with no worker running."""
    with private_redis() as server:
        app = make_app(server.url)
        try:
            noop = app.tasks["noop"]
            noop.apply_async()  # warm-up: connection and producer pool
            t0 = time.perf_counter()
            for _ in range(tasks):
                noop.apply_async()
            elapsed = time.perf_counter() - t0
            queued = int(Redis.from_url(server.url).llen(QUEUE))
            if queued != tasks + 1:
                raise RuntimeError(f"plain: {queued} messages queued, expected {tasks + 1}")
            return {"tasks": tasks, "seconds": elapsed, "tasks_per_s": tasks / elapsed}
        finally:
            app.close()


def code_state() -> dict[str, Any]:
    """Which project code is measured: git commit and dirty files, and a hash of the sources."""
    dirs = ("scheduler", "workers", "broker_config")
    return {"root": str(ROOT), **shared_code_state(dirs, (".py", ".lua"), short=False)}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the JSON report on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=5000, help="tasks per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each measurement")
    parser.add_argument("--shapes", default=SHAPES, help="end-to-end shapes, WxS,... (prefork)")
    parser.add_argument("--json-out", type=Path, help="also write the JSON report here")
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.rounds < 1:
        parser.error("--tasks and --rounds must be at least 1")
    shapes = [parse_shape(s) for s in args.shapes.split(",")]

    # SIGTERM unwinds like Ctrl-C, so every finally block stops its processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    shown_args = sys.argv[1:] if argv is None else argv
    started = time.perf_counter()
    code = code_state()
    info = machine()
    progress(f"measuring {ROOT} (sources {code['sources_sha256']}, commit {code.get('commit')})")
    progress(
        f"{args.rounds} rounds of {args.tasks} tasks; {info['nproc']} CPUs, "
        f"Python {info['python']}, Celery {info['celery']}, redis-server {info['redis_server']}"
    )
    log_root = Path(tempfile.mkdtemp(prefix="ym-bench-"))
    e2e: dict[str, dict[str, list[dict[str, Any]]]] = {
        s.label: {"yardmaster": [], "plain_celery": []} for s in shapes
    }
    e2e[shapes[0].label]["plain_celery_ym_transport"] = []
    sub: dict[str, list[dict[str, Any]]] = {"yardmaster": [], "plain_celery": []}
    sub["yardmaster_delay"] = []
    for rnd in range(args.rounds):
        progress(f"round {rnd + 1}/{args.rounds}")
        log_dir = log_root / f"round{rnd + 1}"
        n = args.tasks
        e2e_runs: list[tuple[str, str, Callable[[], dict[str, Any]]]] = []
        for shape in shapes:
            shape_dir = log_dir / shape.label
            shape_dir.mkdir(parents=True)
            e2e_runs.append(
                (shape.label, "yardmaster", partial(yardmaster_run, shape, n, shape_dir))
            )
            e2e_runs.append((shape.label, "plain_celery", partial(plain_run, shape, n, shape_dir)))
            if shape == shapes[0]:
                run = partial(plain_run, shape, n, shape_dir, "ymredis")
                e2e_runs.append((shape.label, "plain_celery_ym_transport", run))
        sub_runs: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("yardmaster", partial(yardmaster_submission, n)),
            ("plain_celery", partial(plain_submission, n)),
            ("yardmaster_delay", partial(yardmaster_delay, n)),
        ]
        if rnd % 2:
            e2e_runs.reverse()
            sub_runs.reverse()
        for label, system, run in e2e_runs:
            e2e[label][system].append(timed(f"end to end {label}, {system}", run))
        for system, run in sub_runs:
            sub[system].append(timed(f"submission, {system}", run))

    end_to_end: dict[str, Any] = {}
    for label, runs in e2e.items():
        end_to_end[label] = summarize(runs["yardmaster"], runs["plain_celery"])
        if "plain_celery_ym_transport" in runs:
            # The same comparison against plain Celery given yardmaster's transport:
            # what yardmaster's scheduling costs, apart from what its transport saves.
            same = summarize(runs["yardmaster"], runs["plain_celery_ym_transport"])
            end_to_end[label]["same_transport"] = {
                "median_tasks_per_s": same["median_tasks_per_s"]["plain_celery"],
                "ratio": same["ratio"],
                "paired_ratios": same["paired_ratios"],
                "median_paired_ratio": same["median_paired_ratio"],
                "rounds": runs["plain_celery_ym_transport"],
            }
    submission = summarize(sub["yardmaster"], sub["plain_celery"])
    # Celery's own call on a yardmaster app, one submission per call, against apply_async.
    delay = summarize(sub["yardmaster_delay"], sub["plain_celery"])
    code_end = code_state()
    if code_end["sources_sha256"] != code["sources_sha256"]:
        code["changed_during_run"] = code_end
        progress("WARNING: the project sources changed during the run; figures are mixed")
    report = {
        "benchmark": "throughput",
        "command": " ".join(["python -m benchmarks.throughput", *shown_args]),
        "date": today(),
        "config": {
            "tasks": args.tasks,
            "rounds": args.rounds,
            "shapes": [s.label for s in shapes],
            "worker": "prefork, acks_late, prefetch multiplier 1, JSON, WARNING logs",
            "logs": str(log_root),
        },
        "code": code,
        "machine": finish_machine(info),
        "end_to_end": end_to_end,
        "submission": submission,
        "delay": delay,
        "targets": {
            "end_to_end_ratio": TARGET_END_TO_END,
            "end_to_end_met": {
                label: e["ratio"] >= TARGET_END_TO_END for label, e in end_to_end.items()
            },
            "submission_ratio": TARGET_SUBMISSION,
            "submission_met": submission["ratio"] >= TARGET_SUBMISSION,
        },
        "wall_seconds": time.perf_counter() - started,
    }
    shown = "; ".join(f"{label} {e['ratio']:.2f}" for label, e in end_to_end.items())
    progress(
        f"end to end, yardmaster/plain: {shown} (target {TARGET_END_TO_END}); "
        f"submission: submit_many/apply_async = {submission['ratio']:.2f} "
        f"(target {TARGET_SUBMISSION}); delay/apply_async = {delay['ratio']:.2f}; "
        f"{report['wall_seconds']:.0f} s"
    )
    text = json.dumps(report, indent=2)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
