"""Throughput of yardmaster against plain Celery, measured side by side.

Usage::

    python benchmarks/throughput.py [--tasks N] [--rounds R] [--json-out FILE]

Two measurements, each repeated ``R`` times with the two systems interleaved
(the order alternates between rounds, so drift on a shared machine falls on
both sides):

end to end
    ``N`` noop tasks through one prefork worker with 2 processes, late acks,
    prefetch multiplier 1, JSON, on a private ``redis-server``.
    yardmaster: ``python -m scheduler.cli dispatcher`` plus
    ``python -m scheduler.cli worker --slots 2``; the clock runs from just
    before ``Client.submit_many`` until the ``stats`` counters show ``N``
    terminal tasks (polled every 5 ms); afterwards every record is checked.
    plain Celery: ``celery -A benchmarks.plain_app worker -c 2``; the clock
    runs from just before the first of ``N`` ``noop.apply_async()`` calls
    until, after all were published, the ``celery`` list and kombu's
    ``unacked`` hash are both empty (polled every 5 ms, read in one MULTI);
    afterwards ``inspect stats`` must report ``N`` tasks run.
    plain Celery on yardmaster's transport: the same, with the worker (and
    the producer) on ``broker_config.transport`` (kombu's Redis transport
    keeping one Redis client per channel), which yardmaster's workers use.
    The headline ratio is against plain Celery as it ships; the JSON's
    ``end_to_end.same_transport`` holds the ratio against this variant.

submission
    The producer alone, no worker or dispatcher running: one
    ``submit_many`` of ``N`` noop specs against ``N`` ``apply_async`` calls,
    each after one warm-up call (connection set-up and script loading are
    not counted).

Each system gets a fresh private ``redis-server`` for every measurement
(``scheduler.embedded.EmbeddedRedis``). Progress goes to stderr; one JSON
object with the medians, the ratios and every round's figures goes to stdout
(and to ``--json-out``). Besides the rates, each end-to-end round records the
CPU milliseconds per task of every process involved (via ``psutil``) and, for
yardmaster, the median duration of each leg of a task's trip, taken from the
task records (see :func:`stages`).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# Child processes (dispatcher, workers) import the same tree as this script,
# whatever the current directory and whichever tree is installed in the venv.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
)

import celery  # noqa: E402
import kombu  # noqa: E402
import redis  # noqa: E402
from redis import Redis  # noqa: E402

try:  # only for the CPU breakdown; the rates do not need it
    import psutil
except ImportError:  # pragma: no cover
    psutil = None

from benchmarks.common import code_state as shared_code_state  # noqa: E402
from benchmarks.plain_app import BROKER_ENV, QUEUE, TRANSPORT_ENV, make_app  # noqa: E402
from scheduler.client import Client  # noqa: E402
from scheduler.embedded import EmbeddedRedis  # noqa: E402
from scheduler.local_cluster import LocalCluster  # noqa: E402
from scheduler.settings import load_settings  # noqa: E402
from scheduler.store import StateStore, connect  # noqa: E402

CONCURRENCY = 2
POLL = 0.005
LOGLEVEL = "WARNING"
UNACKED = "unacked"  # kombu's Redis transport: messages delivered, not yet acked
TERMINAL = ("succeeded", "failed", "cancelled", "expired")
STALL = 20.0  # seconds without progress that abort a measurement
TARGET_END_TO_END = 0.9
TARGET_SUBMISSION = 3.0


def progress(message: str) -> None:
    """One progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def private_redis() -> Iterator[EmbeddedRedis]:
    """A fresh ``redis-server`` on a free loopback port, stopped on exit."""
    server = EmbeddedRedis().start()
    try:
        yield server
    finally:
        server.stop()


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


def _pid(server: EmbeddedRedis) -> int:
    proc = server._proc
    if proc is None:
        raise RuntimeError("the private redis-server is not running")
    return proc.pid


def _deadline_for(tasks: int) -> float:
    # Generous: 20 tasks/s would already be a broken run.
    return time.monotonic() + max(60.0, tasks / 20)


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


# -- yardmaster -------------------------------------------------------------------
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


def yardmaster_end_to_end(tasks: int, log_dir: Path) -> dict[str, Any]:
    """Run ``tasks`` noops through a dispatcher and one 2-slot worker."""
    with private_redis() as server:
        settings = load_settings(redis_url=server.url)
        stack = LocalCluster(settings, log_dir=log_dir)
        name = f"bench@{socket.gethostname()}"
        try:
            # The plain Celery worker runs at WARNING, so both do here (INFO logs
            # one line per task).
            stack.dispatcher(loglevel=LOGLEVEL, wait=False)
            stack.worker("w1", CONCURRENCY, hostname=name, loglevel=LOGLEVEL, wait=False)
            stack.wait_ready(1, 60.0)
            store = stack.store
            client = Client(store, known_tasks=["noop"])
            specs = [{"name": "noop"}] * tasks
            deadline = _deadline_for(tasks)
            meter = CpuMeter(
                {
                    "redis": _pid(server),
                    "dispatcher": stack.procs["dispatcher"].pid,
                    "worker": stack.procs["w1"].pid,
                }
            )

            guard = StallGuard("yardmaster")

            t0 = time.perf_counter()
            handles = client.submit_many(specs)
            t_submitted = time.perf_counter()
            while True:
                counters = store.counters()
                if sum(counters.get(state, 0) for state in TERMINAL) >= tasks:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"yardmaster: only {counters} after the deadline")
                guard.check(counters)
                time.sleep(POLL)
            t_done = time.perf_counter()
            cpu = meter.stop(tasks)

            records = client.wait(handles, timeout=30)
            states: dict[str, int] = {}
            for rec in records:
                states[str(rec.state)] = states.get(str(rec.state), 0) + 1
            if states != {"succeeded": tasks}:
                raise RuntimeError(f"yardmaster: task states {states}, expected all succeeded")
            elapsed = t_done - t0
            return {
                "tasks": tasks,
                "seconds": elapsed,
                "tasks_per_s": tasks / elapsed,
                "submit_seconds": t_submitted - t0,
                "cpu_ms_per_task": cpu,
                "median_ms": stages(records, CONCURRENCY),
                "counters": store.counters(),
            }
        finally:
            stack.stop()


def yardmaster_submission(tasks: int) -> dict[str, Any]:
    """Rate of one ``submit_many`` of ``tasks`` noop specs, with nothing consuming."""
    with private_redis() as server:
        settings = load_settings(redis_url=server.url)
        store = StateStore(connect(server.url), settings)
        client = Client(store, known_tasks=["noop"])
        client.submit_many([{"name": "noop"}])  # warm-up: connection, SCRIPT LOAD
        specs = [{"name": "noop"}] * tasks
        t0 = time.perf_counter()
        handles = client.submit_many(specs)
        elapsed = time.perf_counter() - t0
        submitted = store.counters().get("submitted", 0)
        if len(handles) != tasks or submitted != tasks + 1:
            raise RuntimeError(f"yardmaster: {submitted} submitted, expected {tasks + 1}")
        store.redis.close()
        return {"tasks": tasks, "seconds": elapsed, "tasks_per_s": tasks / elapsed}


# -- plain Celery -----------------------------------------------------------------
def _wait_ping(app: Any, node: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"plain worker exited with {proc.returncode}; see {log}")
        with contextlib.suppress(Exception):
            if app.control.ping(destination=[node], timeout=0.5):
                return
    raise RuntimeError(f"plain worker did not answer ping within 60 s; see {log}")


def _tasks_run(app: Any, node: str) -> int:
    for _ in range(5):
        stats = app.control.inspect(destination=[node], timeout=2).stats() or {}
        if node in stats:
            return int(sum(stats[node].get("total", {}).values()))
    raise RuntimeError("plain worker did not answer inspect stats")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def plain_end_to_end(tasks: int, log_dir: Path, transport: str = "") -> dict[str, Any]:
    """Run ``tasks`` noops through one plain Celery prefork worker (``-c 2``).

    ``transport="ymredis"``: the worker uses yardmaster's broker transport.
    """
    with private_redis() as server:
        app = make_app(server.url, transport)
        node = f"plain{transport}@{socket.gethostname()}"
        cmd = [sys.executable, "-m", "celery", "-A", "benchmarks.plain_app", "worker"]
        cmd += ["-c", str(CONCURRENCY), "--pool", "prefork", "--without-gossip"]
        cmd += ["--without-mingle", "-l", LOGLEVEL, "-n", node]
        log_path = log_dir / f"plain{transport}-worker.log"
        env = dict(os.environ, **{BROKER_ENV: server.url, TRANSPORT_ENV: transport})
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_ping(app, node, proc, log_path)
            noop = app.tasks["noop"]
            watch = Redis.from_url(server.url)
            deadline = _deadline_for(tasks)
            meter = CpuMeter({"redis": _pid(server), "worker": proc.pid})
            guard = StallGuard("plain Celery")

            t0 = time.perf_counter()
            for _ in range(tasks):
                noop.apply_async()
            t_published = time.perf_counter()
            while True:
                with watch.pipeline(transaction=True) as pipe:
                    queued, unacked = pipe.llen(QUEUE).hlen(UNACKED).execute()
                t_seen = time.perf_counter()
                if queued == 0 and unacked == 0:
                    cpu = meter.stop(tasks)
                    # Between kombu's BRPOP and its HSET into ``unacked`` a
                    # message is in neither place; the worker's count settles it.
                    if _tasks_run(app, node) >= tasks:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"plain: {queued} queued, {unacked} unacked at deadline")
                guard.check((queued, unacked))
                time.sleep(POLL)
            ran = _tasks_run(app, node)
            if ran != tasks:
                raise RuntimeError(f"plain: the worker ran {ran} tasks, expected {tasks}")
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
            _stop(proc)
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


# -- driver -----------------------------------------------------------------------
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


def code_state() -> dict[str, Any]:
    """Which project code is measured: git commit and dirty files, and a hash of the sources."""
    dirs = ("scheduler", "workers", "broker_config")
    return {"root": str(ROOT), **shared_code_state(dirs, (".py", ".lua"), short=False)}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    with private_redis() as server:
        redis_version = Redis.from_url(server.url).info("server")["redis_version"]
    return {
        "nproc": os.cpu_count(),
        "sched_affinity": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "celery": celery.__version__,
        "kombu": kombu.__version__,
        "redis_py": redis.__version__,
        "redis_server": redis_version,
        "loadavg_start": list(os.getloadavg()),
    }


def _timed(label: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    result = run()
    progress(f"  {label:<26} {result['tasks_per_s']:9.1f} tasks/s ({result['seconds']:.2f} s)")
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the JSON report on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=5000, help="tasks per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each measurement")
    parser.add_argument("--json-out", type=Path, help="also write the JSON report here")
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.rounds < 1:
        parser.error("--tasks and --rounds must be at least 1")

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
    e2e: dict[str, list[dict[str, Any]]] = {
        "yardmaster": [],
        "plain_celery": [],
        "plain_celery_ym_transport": [],
    }
    sub: dict[str, list[dict[str, Any]]] = {"yardmaster": [], "plain_celery": []}
    for rnd in range(args.rounds):
        progress(f"round {rnd + 1}/{args.rounds}")
        log_dir = log_root / f"round{rnd + 1}"
        log_dir.mkdir()
        n = args.tasks
        e2e_runs: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("yardmaster", partial(yardmaster_end_to_end, n, log_dir)),
            ("plain_celery", partial(plain_end_to_end, n, log_dir)),
            ("plain_celery_ym_transport", partial(plain_end_to_end, n, log_dir, "ymredis")),
        ]
        sub_runs: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("yardmaster", partial(yardmaster_submission, n)),
            ("plain_celery", partial(plain_submission, n)),
        ]
        if rnd % 2:
            e2e_runs.reverse()
            sub_runs.reverse()
        for system, run in e2e_runs:
            e2e[system].append(_timed(f"end to end, {system}", run))
        for system, run in sub_runs:
            sub[system].append(_timed(f"submission, {system}", run))

    end_to_end = summarize(e2e["yardmaster"], e2e["plain_celery"])
    # The same comparison against plain Celery given yardmaster's transport:
    # what yardmaster's scheduling costs, apart from what its transport saves.
    same = summarize(e2e["yardmaster"], e2e["plain_celery_ym_transport"])
    end_to_end["same_transport"] = {
        "median_tasks_per_s": same["median_tasks_per_s"]["plain_celery"],
        "ratio": same["ratio"],
        "paired_ratios": same["paired_ratios"],
        "median_paired_ratio": same["median_paired_ratio"],
        "rounds": e2e["plain_celery_ym_transport"],
    }
    submission = summarize(sub["yardmaster"], sub["plain_celery"])
    info["loadavg_end"] = list(os.getloadavg())
    code_end = code_state()
    if code_end["sources_sha256"] != code["sources_sha256"]:
        code["changed_during_run"] = code_end
        progress("WARNING: the project sources changed during the run; figures are mixed")
    report = {
        "benchmark": "throughput",
        "command": " ".join(["python", "benchmarks/throughput.py", *shown_args]),
        "config": {
            "tasks": args.tasks,
            "rounds": args.rounds,
            "worker": "1 prefork worker, concurrency 2, acks_late, prefetch multiplier 1, JSON",
            "loglevel": LOGLEVEL,
            "poll_seconds": POLL,
            "logs": str(log_root),
        },
        "code": code,
        "machine": info,
        "end_to_end": end_to_end,
        "submission": submission,
        "targets": {
            "end_to_end_ratio": TARGET_END_TO_END,
            "end_to_end_met": end_to_end["ratio"] >= TARGET_END_TO_END,
            "submission_ratio": TARGET_SUBMISSION,
            "submission_met": submission["ratio"] >= TARGET_SUBMISSION,
        },
        "wall_seconds": time.perf_counter() - started,
    }
    progress(
        f"end to end: yardmaster/plain = {end_to_end['ratio']:.2f} (target {TARGET_END_TO_END}; "
        f"{end_to_end['same_transport']['ratio']:.2f} against plain Celery on yardmaster's "
        "transport); "
        f"submission: submit_many/apply_async = {submission['ratio']:.2f} "
        f"(target {TARGET_SUBMISSION}); {report['wall_seconds']:.0f} s"
    )
    text = json.dumps(report, indent=2)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
