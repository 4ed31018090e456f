"""The dispatcher's ceiling: tasks per second when workers finish instantly.

Usage::

    python -m benchmarks.ceiling [--tasks N] [--workers W] [--slots S] [--rounds R]
        [--strategies fifo,priority,...] [--json-out FILE]

Only the dispatcher is real. This process plays ``W`` workers of ``S`` slots:
it registers them in the store (and keeps their heartbeats), reads each
worker's own queue (the Celery messages the dispatcher, or ``finish.lua``'s
hand-off, pushes there) and answers every delivery at once with the store's
``start.lua`` and ``finish.lua`` calls, pipelined, carrying the delivery's
nonce as a worker's held start does: no Celery, no pool, no task body.

Each measurement starts a private ``redis-server`` and one
``python -m scheduler.cli dispatcher``, submits ``N`` noop tasks (priorities
0..9, half with an affinity key out of 64, half with a deadline an hour
away) while no worker exists, waits until the dispatcher has read them all,
then registers the workers: the clock runs from there until the last
finish. Per strategy it runs with the hand-off list (``YM_HANDOFF=true``,
only for strategies that use it: ``fifo`` and ``priority``) and without it;
the order flips from round to round.

What saturates: the CPU seconds of the dispatcher, ``redis-server`` and this
harness during the window (``psutil``), each as a share of one core, and the
whole machine's busy cores (other sessions' work included). A process near
1.0 is the limit; when none is and the machine's cores are nearly all busy,
the cores are; else the rate is set by the round trips' latency. Targets (issue #21): at least 20,000 tasks/s
for ``fifo`` and ``priority``, 10,000 for the placement strategies.

Every store call the harness makes is in :class:`StoreCalls`, so a change of
the store's API touches that class only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tree this file belongs to
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from benchmarks.clusters import pid_of, private_redis, stop_process  # noqa: E402
from benchmarks.common import code_state, emit, finish_machine, machine, progress, today  # noqa: E402
from scheduler.adaptive import build_strategy  # noqa: E402
from scheduler.client import Client  # noqa: E402
from scheduler.settings import Settings, load_settings  # noqa: E402
from scheduler.store import Store, connect  # noqa: E402

STRATEGIES = "fifo,priority,sjf,edf,load_balance,weighted"
TARGETS = {"fifo": 20_000, "priority": 20_000}
TARGET_PLACEMENT = 10_000
STALL = 20.0


class StoreCalls:
    """The store operations a fake worker needs: the one place that knows the store's API."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.store = Store(connect(url), settings)
        self.redis = self.store.client
        self.store.scripts.load("start", "finish")
        self._start = self.store.scripts.sha("start")
        self._finish = self.store.scripts.sha("finish")

    def register(self, names: list[str], slots: int) -> None:
        """Register each worker with ``slots`` slots, serving ``noop``."""
        for name in names:
            self.store.workers.register(name, slots, "ceiling-harness", os.getpid(), ["noop"])

    def heartbeat(self, names: list[str]) -> None:
        for name in names:
            self.store.workers.heartbeat(name)

    def queue(self, name: str) -> str:
        """The Redis list holding worker ``name``'s Celery messages."""
        return self.store.keys.worker_queue(name)

    def answer(self, pipe: Any, task_id: str, worker: str, attempt: int) -> None:
        """Queue one delivery's start and its successful finish (a held start's pair) on ``pipe``."""
        nonce = f"{task_id}.{attempt}"
        keys, args = self.store.deliveries.start_call(task_id, worker, attempt, nonce)
        pipe.evalsha(self._start, len(keys), *keys, *args)
        keys, args = self.store.finish_call(task_id, worker, attempt, "succeeded", nonce=nonce)
        pipe.evalsha(self._finish, len(keys), *keys, *args)

    def inbox_length(self) -> int:
        return int(self.redis.llen(self.store.keys.inbox))

    def leader_present(self) -> bool:
        return bool(self.redis.exists(self.store.keys.leader))

    def counters(self) -> dict[str, int]:
        return self.store.events.counters()


def submit(store: Store, tasks: int, seed: int) -> None:
    """``tasks`` noops with mixed priorities, affinity keys and deadlines."""
    rng = random.Random(seed)
    far = time.time() + 3600
    specs: list[dict[str, Any]] = []
    for _ in range(tasks):
        spec: dict[str, Any] = {"name": "noop", "priority": rng.randrange(10)}
        if rng.random() < 0.5:
            spec["affinity_key"] = f"key-{rng.randrange(64)}"
        if rng.random() < 0.5:
            spec["deadline"] = far + rng.uniform(0, 600)
        specs.append(spec)
    Client(store, known_tasks=["noop"]).submit_many(specs)


def wait_for(what: str, check: Any, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            raise RuntimeError(f"the dispatcher exited with {proc.returncode} while {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s while {what}")
        time.sleep(0.01)


def serve(calls: StoreCalls, names: list[str], tasks: int) -> tuple[int, int]:
    """Answer deliveries until ``tasks`` finishes counted; returns (finished, stale replies)."""
    queues = {calls.queue(n): n for n in names}
    redis = calls.redis
    finished = stale = 0
    beat = time.monotonic()
    moved = time.monotonic()
    while finished < tasks:
        with redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.rpop(queue, 1000)
            popped = pipe.execute()
        messages = [m for batch in popped if batch for m in batch]
        if not messages:
            got = redis.brpop(list(queues), timeout=0.05)
            if got is None:
                if time.monotonic() - moved > STALL:
                    raise RuntimeError(f"no delivery for {STALL:g} s at {finished} finished")
                continue
            messages = [got[1]]
        moved = time.monotonic()
        with redis.pipeline(transaction=False) as pipe:
            for raw in messages:
                headers = json.loads(raw)["headers"]
                calls.answer(pipe, headers["id"], headers["ym_worker"], int(headers["ym_attempt"]))
            replies = pipe.execute()
        for verdict in replies[1::2]:
            if verdict == "ok":
                finished += 1
            else:
                stale += 1
        if moved - beat > 1.0:
            calls.heartbeat(names)
            beat = moved
    return finished, stale


def measure(
    strategy: str, handoff: bool, tasks: int, workers: int, slots: int, seed: int, log_dir: Path
) -> dict[str, Any]:
    """One run: a dispatcher under ``strategy`` and ``tasks`` deliveries answered at once."""
    with private_redis() as server:
        settings = load_settings(redis_url=server.url, strategy=strategy, handoff=handoff)
        env = dict(os.environ, YM_REDIS_URL=server.url, YM_NAMESPACE=settings.namespace)
        env.update(YM_STRATEGY=strategy, YM_HANDOFF="true" if handoff else "false")
        cmd = [sys.executable, "-m", "scheduler.cli", "dispatcher", "--loglevel", "WARNING"]
        log_path = log_dir / f"dispatcher-{strategy}-{'handoff' if handoff else 'direct'}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            calls = StoreCalls(server.url, settings)
            wait_for("taking the lease", calls.leader_present, 60, proc)
            submit(calls.store, tasks, seed)
            wait_for("reading the submissions", lambda: calls.inbox_length() == 0, 120, proc)
            time.sleep(0.2)  # the last inbox read is applied to the mirror
            names = [f"fake{i}@ceiling" for i in range(1, workers + 1)]
            procs = {
                "dispatcher": psutil.Process(proc.pid),
                "redis": psutil.Process(pid_of(server)),
                "harness": psutil.Process(),
            }
            before = {k: p.cpu_times() for k, p in procs.items()}
            machine_before = psutil.cpu_times()
            t0 = time.perf_counter()
            calls.register(names, slots)
            finished, stale = serve(calls, names, tasks)
            elapsed = time.perf_counter() - t0
            after = {k: p.cpu_times() for k, p in procs.items()}
            machine_after = psutil.cpu_times()
            counters = calls.counters()
            if finished != tasks or counters.get("succeeded", 0) != tasks:
                raise RuntimeError(f"{strategy}: counters {counters}, expected {tasks} succeeded")
            busy = {
                k: round(
                    (after[k].user + after[k].system - before[k].user - before[k].system) / elapsed,
                    3,
                )
                for k in procs
            }
            busy["machine"] = round((_busy(machine_after) - _busy(machine_before)) / elapsed, 3)
            return {
                "tasks": tasks,
                "seconds": elapsed,
                "tasks_per_s": tasks / elapsed,
                "stale_replies": stale,
                "cores_busy": busy,
                "saturated": saturated(busy),
                "counters": counters,
            }
        finally:
            stop_process(proc)


def _busy(times: Any) -> float:
    """CPU seconds the whole machine spent on anything but idling."""
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def saturated(busy: dict[str, float]) -> str:
    """What limits the rate: a process near a whole core, else the machine's cores if they
    were nearly all busy (with other work too), else nothing: the rate is set by latency."""
    procs = {k: v for k, v in busy.items() if k != "machine"}
    top = max(procs, key=lambda k: procs[k])
    if procs[top] >= 0.85:
        return top
    cores = psutil.cpu_count() or 1
    return "cpu cores" if busy["machine"] >= 0.9 * cores else "none (latency)"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the JSON report on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=16, help="fake workers")
    parser.add_argument("--slots", type=int, default=16, help="slots of each fake worker")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--strategies", default=STRATEGIES)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    if min(args.tasks, args.workers, args.slots, args.rounds) < 1:
        parser.error("--tasks, --workers, --slots and --rounds must be at least 1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    info = machine()
    code = code_state(("scheduler", "workers", "broker_config"), (".py", ".lua"))
    started = time.perf_counter()
    log_dir = Path(tempfile.mkdtemp(prefix="ym-bench-ceiling-"))
    settings = load_settings({})
    variants = []
    for name in args.strategies.split(","):
        if build_strategy(name, settings).handoff:
            variants.append((name, True))
        variants.append((name, False))
    runs: dict[str, list[dict[str, Any]]] = {
        f"{n}/{'handoff' if h else 'direct'}": [] for n, h in variants
    }
    for rnd in range(args.rounds):
        progress(f"round {rnd + 1}/{args.rounds}")
        order = variants if rnd % 2 == 0 else variants[::-1]
        for name, handoff in order:
            key = f"{name}/{'handoff' if handoff else 'direct'}"
            out = measure(name, handoff, args.tasks, args.workers, args.slots, args.seed, log_dir)
            runs[key].append(out)
            progress(
                f"  {key:<22} {out['tasks_per_s']:9.0f} tasks/s; cores busy {out['cores_busy']}"
                f" -> {out['saturated']}"
            )
    figures: dict[str, Any] = {}
    for key, rs in runs.items():
        name = key.split("/")[0]
        rates = [r["tasks_per_s"] for r in rs]
        target = TARGETS.get(name, TARGET_PLACEMENT)
        figures[key] = {
            "median_tasks_per_s": statistics.median(rates),
            "min_tasks_per_s": min(rates),
            "max_tasks_per_s": max(rates),
            "target_tasks_per_s": target,
            "meets_target": statistics.median(rates) >= target,
            "median_cores_busy": {
                k: round(statistics.median(r["cores_busy"][k] for r in rs), 3)
                for k in rs[0]["cores_busy"]
            },
            "saturated": [r["saturated"] for r in rs],
            "rounds": rs,
        }
    emit(
        {
            "benchmark": "ceiling",
            "command": " ".join(["python -m benchmarks.ceiling", *(argv or sys.argv[1:])]),
            "date": today(),
            "config": {
                "tasks": args.tasks,
                "workers": args.workers,
                "slots": args.slots,
                "rounds": args.rounds,
                "logs": str(log_dir),
            },
            "figures": figures,
            "code": code,
            "machine": finish_machine(info),
            "wall_seconds": time.perf_counter() - started,
        },
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
