"""What the solution cache buys, and what deduplication costs at submission.

Usage::

    python -m benchmarks.cache [--samples N] [--tasks M] [--rounds R] [--json-out FILE]

Two measurements on a private ``redis-server`` (``scheduler.embedded``):

cache-hit latency
    A local cluster (``LocalCluster``: one dispatcher, one worker with 2 slots).
    Each round times ``N`` sequential submit-to-result trips of a dispatched
    ``noop`` and ``N`` of a cache hit (``noop`` with ``cache_ttl``, after one
    run filled the entry), interleaved one by one: ``Client.submit`` then
    ``TaskHandle.result``. Medians and p95 per kind, and their ratio.

submit_many throughput
    The producer alone (no dispatcher, no worker): one ``submit_many`` of
    ``M`` ``noop`` specs with distinct arguments, plain and with each
    deduplication option (``idempotency_key`` unique per task, ``coalesce``,
    ``cache_ttl``: every one a miss, so every task is still written), on a
    fresh namespace each time, the kinds in a rotating order per round. Tasks
    per second (median over rounds) and each option's ratio to plain.

execution guard
    The price every task pays for the guard: ``N`` x 10 sequential
    ``Guard.enter()`` calls, then as many ``Guard.exit()`` calls, each waited
    for, against as many ``PING`` round trips on the same connection. In a
    worker the guard is taken inside the start report (``start.lua``), so the
    start is timed too, on a worker's report line, for ``N`` x 10 dispatched
    tasks without the guard and as many with it (``ReportLine.start`` against
    ``ReportLine.start_guarded``, the order alternating per round); ``exit``
    is sent on the report line with the finish and not waited for.

One JSON object goes to stdout (and ``--json-out``); progress to stderr.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tree this file belongs to
    sys.path.insert(0, str(ROOT))

from benchmarks.common import code_state, emit, finish_machine, machine, progress, today  # noqa: E402
from scheduler.client import Client  # noqa: E402
from scheduler.embedded import EmbeddedRedis  # noqa: E402
from scheduler.local_cluster import LocalCluster  # noqa: E402
from scheduler.settings import load_settings  # noqa: E402
from scheduler.store import ReportLine, Store, connect  # noqa: E402

BUILTIN = ["noop", "sleep", "spin", "fail"]
KINDS = {
    "plain": lambda i: {},
    "idempotency_key": lambda i: {"idempotency_key": f"k{i}"},
    "coalesce": lambda i: {"coalesce": True},
    "cache_ttl": lambda i: {"cache_ttl": 600},
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(samples: int, rounds: int) -> dict[str, Any]:
    settings = load_settings({}, namespace="bench" + uuid.uuid4().hex[:6])
    per_round = []
    with LocalCluster(settings) as stack:
        stack.start(workers=1, slots=2)
        client = Client(stack.store, known_tasks=BUILTIN)
        client.submit("noop", cache_ttl=600).result(timeout=30)  # fills the entry
        for _ in range(20):  # warm-up of both paths
            client.submit("noop").result(timeout=30)
            client.submit("noop", cache_ttl=600).result(timeout=30)
        for r in range(rounds):
            times: dict[str, list[float]] = {"dispatched": [], "cache_hit": []}
            for _ in range(samples):
                for kind, opts in (("dispatched", {}), ("cache_hit", {"cache_ttl": 600})):
                    t = time.perf_counter()
                    handle = client.submit("noop", **opts)
                    handle.result(timeout=30)
                    times[kind].append(time.perf_counter() - t)
                    if kind == "cache_hit":
                        assert handle.answered_by == "cached"
            row = {
                kind: {"median_ms": statistics.median(v) * 1e3, "p95_ms": pct(v, 0.95) * 1e3}
                for kind, v in times.items()
            }
            row["ratio"] = row["dispatched"]["median_ms"] / row["cache_hit"]["median_ms"]
            per_round.append(row)
            progress(
                f"latency round {r + 1}: dispatched {row['dispatched']['median_ms']:.2f} ms, "
                f"cache hit {row['cache_hit']['median_ms']:.3f} ms, {row['ratio']:.1f}x"
            )
    return {
        "samples_per_round": samples,
        "rounds": per_round,
        "median_ratio": statistics.median(r["ratio"] for r in per_round),
        "dispatched_median_ms": statistics.median(r["dispatched"]["median_ms"] for r in per_round),
        "cache_hit_median_ms": statistics.median(r["cache_hit"]["median_ms"] for r in per_round),
    }


def submission(tasks: int, rounds: int) -> dict[str, Any]:
    server = EmbeddedRedis().start()
    try:
        rates: dict[str, list[float]] = {kind: [] for kind in KINDS}
        names = list(KINDS)
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for kind in order:
                settings = load_settings({}, namespace="sub" + uuid.uuid4().hex[:6])
                store = Store(connect(server.url), settings)
                client = Client(store, known_tasks=BUILTIN)
                client.submit_many([{"name": "noop", **KINDS[kind](-1)}])  # loads the script
                specs = [{"name": "noop", "args": [i], **KINDS[kind](i)} for i in range(tasks)]
                t = time.perf_counter()
                handles = client.submit_many(specs)
                elapsed = time.perf_counter() - t
                assert len({h.id for h in handles}) == tasks, "every task must be new"
                rates[kind].append(tasks / elapsed)
                store.client.flushdb()
            progress(
                f"submit_many round {r + 1}: "
                + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in rates.items())
            )
        medians = {kind: statistics.median(v) for kind, v in rates.items()}
        return {
            "tasks": tasks,
            "per_round": rates,
            "median_per_s": medians,
            "ratio_to_plain": {k: v / medians["plain"] for k, v in medians.items()},
        }
    finally:
        server.stop()


def guard_cost(pairs: int, rounds: int) -> dict[str, Any]:
    server = EmbeddedRedis().start()
    try:
        store = Store(connect(server.url), load_settings({}, namespace="guardbench"))
        store.client.ping()
        per_round = []
        for r in range(rounds):
            t = time.perf_counter()
            for _ in range(pairs):
                store.client.ping()
            ping_us = (time.perf_counter() - t) / pairs * 1e6
            guards = [store.guards.for_delivery(f"r{r}-{i}", 1) for i in range(pairs)]
            t = time.perf_counter()
            for guard in guards:
                assert guard.enter() is None
            enter_us = (time.perf_counter() - t) / pairs * 1e6
            t = time.perf_counter()
            for guard in guards:
                guard.exit("succeeded", "null", "")
            exit_us = (time.perf_counter() - t) / pairs * 1e6
            starts = start_cost(store, r, pairs)
            per_round.append(
                {"enter_us": enter_us, "exit_us": exit_us, "ping_us": ping_us, **starts}
            )
            progress(
                f"guard round {r + 1}: enter {enter_us:.0f} us, exit {exit_us:.0f} us "
                f"(waited for here; pipelined with the finish in a worker), PING {ping_us:.0f} us; "
                f"start {starts['start_us']:.0f} us, start taking the guard "
                f"{starts['start_guarded_us']:.0f} us"
            )
        return {
            "pairs_per_round": pairs,
            "rounds": per_round,
            **{
                f"{name}_median_us": statistics.median(x[f"{name}_us"] for x in per_round)
                for name in ("enter", "exit", "ping", "start", "start_guarded")
            },
        }
    finally:
        server.stop()


def start_cost(store: Store, r: int, pairs: int) -> dict[str, float]:
    """Per-task time of the start report on a report line, without and with the guard."""
    worker = f"bench{r}@guard"
    store.workers.register(worker, 2 * pairs, "host", 1, ["noop"])
    client = Client(store, known_tasks=["noop"])
    ids = [h.id for h in client.submit_many([{"name": "noop"}] * (2 * pairs))]
    for i in range(0, len(ids), 1000):
        claims = store.pending.claim([(task_id, worker) for task_id in ids[i : i + 1000]])
        assert all(c.status == "ok" for c in claims)
    line = ReportLine(store, worker)
    line.start(ids[0], 1, "warm")  # loads start.lua into the script cache
    plain, guarded = ids[1 : pairs + 1], ids[pairs + 1 :]
    out: dict[str, float] = {}
    for kind in ("start", "start_guarded") if r % 2 == 0 else ("start_guarded", "start"):
        todo = plain if kind == "start" else guarded
        t = time.perf_counter()
        for task_id in todo:
            if kind == "start":
                assert line.start(task_id, 1, "n")[0]
            else:
                guard = store.guards.for_delivery(task_id, 1)
                run, _, _, answer, detail = line.start_guarded(task_id, 1, "n", guard)
                assert run
                assert guard.settle(answer, detail) is None
        out[f"{kind}_us"] = (time.perf_counter() - t) / len(todo) * 1e6
    line.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument(
        "--only-guard", action="store_true", help="measure the execution guard alone"
    )
    args = parser.parse_args()
    info = machine()
    if args.only_guard:
        emit(
            {
                "benchmark": "cache-guard",
                "command": " ".join(["python -m benchmarks.cache", *sys.argv[1:]]),
                "date": today(),
                "code": code_state(("scheduler", "workers", "broker_config"), (".py", ".lua")),
                "machine": info,
                "guard": guard_cost(args.samples * 10, args.rounds),
            },
            args.json_out,
        )
        return
    out = {
        "benchmark": "cache",
        "command": " ".join(["python -m benchmarks.cache", *sys.argv[1:]]),
        "date": today(),
        "code": code_state(("scheduler", "workers", "broker_config"), (".py", ".lua")),
        "machine": info,
        "latency": latency(args.samples, args.rounds),
        "submit_many": submission(args.tasks, args.rounds),
        "guard": guard_cost(args.samples * 10, args.rounds),
    }
    finish_machine(info)
    emit(out, args.json_out)


if __name__ == "__main__":
    main()
