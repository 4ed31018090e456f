"""One measured run of a real cluster: yardmaster or plain Celery, in a given shape.

The end-to-end benchmarks (``throughput``, ``io_bound``, ``scaling``,
``monitoring``, ``env_ab``) all time the same thing: ``N`` tasks from just
before the first is submitted until the last has finished, through real
``celery worker`` processes on a fresh private ``redis-server``. They differ
only in the cluster's shape (workers, slots, pool, strategy) and the task
(a ``noop``, or a ``sleep`` of fixed length), which :class:`Shape` names.

yardmaster: ``python -m scheduler.cli dispatcher`` plus one
``python -m scheduler.cli worker`` per worker, started through
``scheduler.local_cluster.LocalCluster`` at WARNING; the clock stops when the ``stats``
counters show ``N`` terminal tasks (polled every 5 ms), and every record is
then checked to be ``succeeded``.

plain Celery: ``celery -A benchmarks.plain_app worker`` per worker, same pool
and concurrency; the clock stops at the first poll that finds the ``celery``
list and kombu's ``unacked`` hash both empty (read in one MULTI) once all
``N`` were published, and ``inspect stats`` must then count ``N`` tasks run.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import Redis

from benchmarks.common import ROOT, progress
from benchmarks.plain_app import BROKER_ENV, QUEUE, TRANSPORT_ENV, make_app
from scheduler.client import Client
from scheduler.embedded import EmbeddedRedis
from scheduler.local_cluster import LocalCluster
from scheduler.settings import load_settings

try:  # only for the CPU breakdown; the rates do not need it
    import psutil
except ImportError:  # pragma: no cover
    psutil = None

CONCURRENCY = 2
POLL = 0.005
LOGLEVEL = "WARNING"
UNACKED = "unacked"  # kombu's Redis transport: messages delivered, not yet acked
TERMINAL = ("succeeded", "failed", "cancelled", "expired")
STALL = 20.0  # seconds without progress that abort a measurement


@dataclass(frozen=True)
class Shape:
    """What one end-to-end run measures.

    Attributes:
        workers: Worker processes.
        slots: Concurrency of each (yardmaster's slots, Celery's ``-c``).
        pool: Celery pool: ``prefork`` or ``threads``.
        seconds: 0 for ``noop`` tasks, else each task is a ``sleep`` of this long.
        strategy: yardmaster's strategy (None: the settings' default); plain Celery has none.
    """

    workers: int = 1
    slots: int = CONCURRENCY
    pool: str = "prefork"
    seconds: float = 0.0
    strategy: str | None = None

    @property
    def label(self) -> str:
        """``WxS`` with the pool when it is not prefork, e.g. ``4x8 threads``."""
        pool = "" if self.pool == "prefork" else f" {self.pool}"
        return f"{self.workers}x{self.slots}{pool}"

    @property
    def ideal_per_s(self) -> float | None:
        """Tasks per second if every slot were always busy (sleep tasks only)."""
        return self.workers * self.slots / self.seconds if self.seconds else None

    def spec(self) -> dict[str, Any]:
        """The task each run submits, as a ``submit_many`` spec."""
        return {"name": "sleep", "args": [self.seconds]} if self.seconds else {"name": "noop"}


@contextlib.contextmanager
def private_redis() -> Iterator[EmbeddedRedis]:
    """A fresh ``redis-server`` on a free loopback port, stopped on exit."""
    server = EmbeddedRedis().start()
    try:
        yield server
    finally:
        server.stop()


def pid_of(server: EmbeddedRedis) -> int:
    """The process id of a private ``redis-server``."""
    proc = server._proc
    if proc is None:
        raise RuntimeError("the private redis-server is not running")
    return proc.pid


class CpuMeter:
    """CPU seconds (user + system) spent by named processes between two readings.

    A process's pool children are counted with it under ``<name>.children``;
    ``producer`` is this benchmark process (submitting, then polling).
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self._procs = {} if psutil is None else {n: psutil.Process(p) for n, p in pids.items()}
        self._start = self._read()

    def _read(self) -> dict[str, float]:
        out: dict[str, float] = {"producer": time.process_time()}
        for name, proc in self._procs.items():
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                out[name] = t.user + t.system
                kids = proc.children(recursive=True)
                if kids:
                    out[f"{name}.children"] = sum(
                        k.cpu_times().user + k.cpu_times().system for k in kids
                    )
        return out

    def stop(self, tasks: int) -> dict[str, float]:
        """CPU milliseconds per task of each process since the meter was made."""
        end = self._read()
        return {
            name: round(1000 * (end[name] - self._start.get(name, 0.0)) / tasks, 4) for name in end
        }


def deadline_for(tasks: int, shape: Shape | None = None) -> float:
    """A generous end for a run: 20 tasks/s, or a tenth of the ideal rate, would be broken."""
    floor = 20.0
    if shape is not None and shape.ideal_per_s:
        floor = min(floor, shape.ideal_per_s / 10)
    return time.monotonic() + max(60.0, tasks / floor)


class StallGuard:
    """Fails a run whose progress figure has not moved for ``STALL`` seconds."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.last: Any = None
        self.since = time.monotonic()

    def check(self, progress_figure: Any) -> None:
        now = time.monotonic()
        if progress_figure != self.last:
            self.last, self.since = progress_figure, now
        elif now - self.since > STALL:
            raise RuntimeError(f"{self.what}: no progress for {STALL:g} s at {progress_figure}")


def stages(records: list[Any], slots: int) -> dict[str, float]:
    """Median milliseconds of each leg of a task's trip, from the task records.

    ``refill``: a slot freed (``finished_at`` of the latest task done before)
    until the dispatcher claimed the next task for it (``dispatched_at``);
    ``dispatch_to_start``: claim, publish, the worker's fetch and the hand-off
    to a pool process, until ``start.lua`` ran; ``start_to_finish``: the body
    and the hooks, until ``finish.lua`` ran. All three use Redis's clock.
    """
    finishes = sorted(r.finished_at for r in records)
    by_dispatch = sorted(records, key=lambda r: r.dispatched_at)
    refill = []
    for rec in by_dispatch[slots:]:
        i = bisect.bisect_right(finishes, rec.dispatched_at)
        if i:
            refill.append(rec.dispatched_at - finishes[i - 1])
    legs = {
        "refill": refill,
        "dispatch_to_start": [r.started_at - r.dispatched_at for r in records],
        "start_to_finish": [r.finished_at - r.started_at for r in records],
    }
    return {name: round(1000 * statistics.median(v), 3) for name, v in legs.items() if v}


def wait_terminal(store: Any, tasks: int, deadline: float, guard: StallGuard) -> None:
    """Poll the ``stats`` counters every ``POLL`` s until ``tasks`` tasks are terminal."""
    while True:
        counters = store.events.counters()
        if sum(counters.get(state, 0) for state in TERMINAL) >= tasks:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{guard.what}: only {counters} after the deadline")
        guard.check(counters)
        time.sleep(POLL)


def _worker_key(shape: Shape, i: int) -> str:
    # One worker keeps the name the CPU breakdown always had.
    return "worker" if shape.workers == 1 else f"worker{i}"


def yardmaster_run(shape: Shape, tasks: int, log_dir: Path) -> dict[str, Any]:
    """Run ``tasks`` tasks through a dispatcher and ``shape.workers`` workers."""
    with private_redis() as server:
        settings = load_settings(redis_url=server.url, **_strategy(shape))
        stack = LocalCluster(settings, log_dir=log_dir)
        host = socket.gethostname()
        try:
            # The plain Celery workers run at WARNING (INFO logs one line per
            # task), so yardmaster's do here too.
            stack.dispatcher(loglevel=LOGLEVEL, wait=False)
            for i in range(1, shape.workers + 1):
                stack.worker(
                    f"w{i}", shape.slots, shape.pool, hostname=f"bench{i}@{host}",
                    loglevel=LOGLEVEL, wait=False,
                )  # fmt: skip
            stack.wait_ready(shape.workers, 60.0 + 5 * shape.workers)
            store = stack.store
            client = Client(store, known_tasks=["noop", "sleep"])
            specs = [shape.spec()] * tasks
            deadline = deadline_for(tasks, shape)
            pids = {"redis": pid_of(server), "dispatcher": stack.procs["dispatcher"].pid}
            for i in range(1, shape.workers + 1):
                pids[_worker_key(shape, i)] = stack.procs[f"w{i}"].pid
            meter = CpuMeter(pids)
            guard = StallGuard("yardmaster")

            t0 = time.perf_counter()
            handles = client.submit_many(specs)
            t_submitted = time.perf_counter()
            wait_terminal(store, tasks, deadline, guard)
            t_done = time.perf_counter()
            cpu = meter.stop(tasks)

            records = client.wait(handles, timeout=30)
            states: dict[str, int] = {}
            for rec in records:
                states[str(rec.state)] = states.get(str(rec.state), 0) + 1
            if states != {"succeeded": tasks}:
                raise RuntimeError(f"yardmaster: task states {states}, expected all succeeded")
            elapsed = t_done - t0
            store.client.close()
            return {
                "tasks": tasks,
                "seconds": elapsed,
                "tasks_per_s": tasks / elapsed,
                "submit_seconds": t_submitted - t0,
                "cpu_ms_per_task": cpu,
                "median_ms": stages(records, shape.workers * shape.slots),
                "counters": store.events.counters(),
            }
        finally:
            stack.stop()


def _strategy(shape: Shape) -> dict[str, Any]:
    return {"strategy": shape.strategy} if shape.strategy else {}


def _wait_ping(
    app: Any, nodes: list[str], procs: list[subprocess.Popen[bytes]], logs: Path
) -> None:
    deadline = time.monotonic() + 60 + 5 * len(nodes)
    waiting = set(nodes)
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"a plain worker exited with {proc.returncode}; see {logs}")
        with contextlib.suppress(Exception):
            for reply in app.control.ping(destination=sorted(waiting), timeout=0.5) or []:
                waiting -= set(reply)
        if not waiting:
            return
    raise RuntimeError(f"plain workers {sorted(waiting)} did not answer ping; see {logs}")


def _tasks_run(app: Any, nodes: list[str]) -> int:
    """Tasks the plain workers accepted, by their own count (``inspect stats``)."""
    for _ in range(5):
        stats = app.control.inspect(destination=nodes, timeout=2).stats() or {}
        if all(node in stats for node in nodes):
            return int(sum(sum(stats[n].get("total", {}).values()) for n in nodes))
    raise RuntimeError("the plain workers did not all answer inspect stats")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 20 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def plain_run(shape: Shape, tasks: int, log_dir: Path, transport: str = "") -> dict[str, Any]:
    """Run ``tasks`` tasks through ``shape.workers`` plain Celery workers.

    ``transport="ymredis"``: the workers use yardmaster's broker transport.
    """
    with private_redis() as server:
        app = make_app(server.url, transport)
        host = socket.gethostname()
        nodes = [f"plain{transport}{i}@{host}" for i in range(1, shape.workers + 1)]
        env = dict(os.environ, **{BROKER_ENV: server.url, TRANSPORT_ENV: transport})
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for node in nodes:
                cmd = [sys.executable, "-m", "celery", "-A", "benchmarks.plain_app", "worker"]
                cmd += ["-c", str(shape.slots), "--pool", shape.pool, "--without-gossip"]
                cmd += ["--without-mingle", "-l", LOGLEVEL, "-n", node]
                log_path = log_dir / f"{node.split('@')[0]}-worker.log"
                with open(log_path, "wb") as log:
                    procs.append(
                        subprocess.Popen(
                            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                        )
                    )
            _wait_ping(app, nodes, procs, log_dir)
            task = app.tasks["sleep" if shape.seconds else "noop"]
            call_args = (shape.seconds,) if shape.seconds else ()
            watch = Redis.from_url(server.url)
            deadline = deadline_for(tasks, shape)
            pids = {"redis": pid_of(server)}
            for i, proc in enumerate(procs, 1):
                pids[_worker_key(shape, i)] = proc.pid
            meter = CpuMeter(pids)
            guard = StallGuard("plain Celery")

            t0 = time.perf_counter()
            for _ in range(tasks):
                task.apply_async(call_args)
            t_published = time.perf_counter()
            while True:
                with watch.pipeline(transaction=True) as pipe:
                    queued, unacked = pipe.llen(QUEUE).hlen(UNACKED).execute()
                t_seen = time.perf_counter()
                if queued == 0 and unacked == 0:
                    cpu = meter.stop(tasks)
                    # Between kombu's BRPOP and its HSET into ``unacked`` a
                    # message is in neither place; the workers' count settles it.
                    if _tasks_run(app, nodes) >= tasks:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"plain: {queued} queued, {unacked} unacked at deadline")
                guard.check((queued, unacked))
                time.sleep(POLL)
            ran = _tasks_run(app, nodes)
            if ran != tasks:
                raise RuntimeError(f"plain: the workers ran {ran} tasks, expected {tasks}")
            elapsed = t_seen - t0
            watch.close()
            return {
                "tasks": tasks,
                "seconds": elapsed,
                "tasks_per_s": tasks / elapsed,
                "submit_seconds": t_published - t0,
                "cpu_ms_per_task": cpu,
                "worker_total": ran,
            }
        finally:
            for proc in procs:
                stop_process(proc)
            app.close()


def summarize(ym: list[dict[str, Any]], plain: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians, the ratio of medians and the per-round (paired) ratios."""
    ym_rates = [r["tasks_per_s"] for r in ym]
    plain_rates = [r["tasks_per_s"] for r in plain]
    paired = [a / b for a, b in zip(ym_rates, plain_rates, strict=True)]
    return {
        "median_tasks_per_s": {
            "yardmaster": statistics.median(ym_rates),
            "plain_celery": statistics.median(plain_rates),
        },
        "ratio": statistics.median(ym_rates) / statistics.median(plain_rates),
        "paired_ratios": paired,
        "median_paired_ratio": statistics.median(paired),
        "rounds": {"yardmaster": ym, "plain_celery": plain},
    }


def timed(label: str, run: Any) -> dict[str, Any]:
    """Call ``run()`` and log its rate."""
    result: dict[str, Any] = run()
    progress(f"  {label:<34} {result['tasks_per_s']:9.1f} tasks/s ({result['seconds']:.2f} s)")
    return result
