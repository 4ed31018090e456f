"""Memory per pending task: Redis's bytes and the dispatcher's resident memory.

Usage::

    python -m benchmarks.memory [--sizes 100000,1000000] [--plain-max 100000] [--json-out FILE]

Method, for each size ``N`` (a fresh private ``redis-server`` each time):

1. Start ``python -m scheduler.cli dispatcher`` (default strategy) with no
   worker, wait until it holds the lease and its resident set size (RSS,
   ``psutil``) has settled; read Redis's ``INFO memory`` ``used_memory``.
2. Submit ``N`` noop tasks with ``Client.submit_many`` (chunks of 50,000).
   No worker exists, so every task stays pending: in Redis (its record, the
   pending index, the counters) and in the dispatcher's mirror.
3. Wait until the dispatcher has read the whole inbox and its RSS has
   settled (two readings 0.5 s apart within 0.5 %); read both figures again.

Redis bytes per pending task = ``used_memory`` delta / ``N``, with the inbox
drained as it is in a running cluster. Dispatcher bytes per pending task =
RSS delta / ``N``. Targets (issue #21): at most 400 B in Redis and 250 B in
the dispatcher per pending task.

For comparison, plain Celery's bytes per queued message: ``N`` noop
``apply_async()`` calls into a fresh ``redis-server`` with no worker,
``used_memory`` delta / ``N`` (only for sizes up to ``--plain-max``: the
calls run at about 2,500/s). Redis's allocator (``mem_allocator``) is
recorded: libc's malloc and jemalloc count differently.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tree this file belongs to
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from redis import Redis  # noqa: E402

from benchmarks.clusters import private_redis, stop_process  # noqa: E402
from benchmarks.common import code_state, emit, finish_machine, machine, progress, today  # noqa: E402
from benchmarks.plain_app import make_app  # noqa: E402
from scheduler.client import Client  # noqa: E402
from scheduler.settings import load_settings  # noqa: E402
from scheduler.store import Store, connect  # noqa: E402

TARGET_DISPATCHER_BYTES = 250
TARGET_REDIS_BYTES = 400
CHUNK = 50_000


def used_memory(client: Redis) -> tuple[int, str]:
    """Redis's ``used_memory`` in bytes and its allocator."""
    info = client.info("memory")
    return int(info["used_memory"]), str(info.get("mem_allocator", ""))


def settled_rss(proc: psutil.Process, timeout: float = 120.0) -> int:
    """The process's RSS once two readings 0.5 s apart differ by at most 0.5 %."""
    last = proc.memory_info().rss
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = proc.memory_info().rss
        if abs(now - last) <= 0.005 * last:
            return int(now)
        last = now
    raise RuntimeError(f"the dispatcher's RSS did not settle within {timeout:g} s")


def yardmaster(size: int) -> dict[str, Any]:
    """Redis bytes and dispatcher RSS per pending task, ``size`` tasks pending."""
    with private_redis() as server:
        settings = load_settings(redis_url=server.url)
        store = Store(connect(server.url), settings)
        env = dict(os.environ, YM_REDIS_URL=server.url, YM_NAMESPACE=settings.namespace)
        cmd = [sys.executable, "-m", "scheduler.cli", "dispatcher", "--loglevel", "WARNING"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while not store.client.exists(store.keys.leader):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the dispatcher did not take the lease")
                time.sleep(0.05)
            client = Client(store, known_tasks=["noop"])
            client.submit_many([{"name": "noop"}])  # loads the scripts; one task pending
            watched = psutil.Process(proc.pid)
            while store.client.llen(store.keys.inbox):
                time.sleep(0.05)
            rss_before = settled_rss(watched)
            redis_before, allocator = used_memory(store.client)
            t0 = time.perf_counter()
            for start in range(0, size, CHUNK):
                client.submit_many([{"name": "noop"}] * min(CHUNK, size - start))
            submit_seconds = time.perf_counter() - t0
            while store.client.llen(store.keys.inbox):
                if proc.poll() is not None:
                    raise RuntimeError(f"the dispatcher exited with {proc.returncode}")
                time.sleep(0.1)
            ingest_seconds = time.perf_counter() - t0
            rss_after = settled_rss(watched)
            redis_after, _ = used_memory(store.client)
            pending = int(store.client.zcard(store.keys.pending))
            if pending != size + 1:
                raise RuntimeError(f"{pending} tasks pending, expected {size + 1}")
            store.client.close()
            return {
                "pending": size,
                "redis_bytes_per_task": (redis_after - redis_before) / size,
                "dispatcher_bytes_per_task": (rss_after - rss_before) / size,
                "redis_used_memory": [redis_before, redis_after],
                "dispatcher_rss": [rss_before, rss_after],
                "mem_allocator": allocator,
                "submit_seconds": submit_seconds,
                "until_read_seconds": ingest_seconds,
            }
        finally:
            stop_process(proc)


def plain(size: int) -> dict[str, Any]:
    """Redis bytes per queued plain Celery message, ``size`` messages queued."""
    with private_redis() as server:
        app = make_app(server.url)
        watch = Redis.from_url(server.url)
        try:
            noop = app.tasks["noop"]
            noop.apply_async()  # connection, producer pool, the queue's first entry
            before, allocator = used_memory(watch)
            for _ in range(size):
                noop.apply_async()
            after, _ = used_memory(watch)
            return {
                "queued": size,
                "redis_bytes_per_message": (after - before) / size,
                "redis_used_memory": [before, after],
                "mem_allocator": allocator,
            }
        finally:
            watch.close()
            app.close()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the JSON report on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--plain-max", type=int, default=100_000)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    info = machine()
    code = code_state(("scheduler", "workers", "broker_config"), (".py", ".lua"))
    figures: dict[str, Any] = {}
    for size in sizes:
        progress(f"{size} pending ...")
        row: dict[str, Any] = {"yardmaster": yardmaster(size)}
        ym = row["yardmaster"]
        progress(
            f"  yardmaster: Redis {ym['redis_bytes_per_task']:.0f} B, dispatcher "
            f"{ym['dispatcher_bytes_per_task']:.0f} B per pending task"
        )
        if size <= args.plain_max:
            row["plain_celery"] = plain(size)
            progress(
                f"  plain Celery: Redis {row['plain_celery']['redis_bytes_per_message']:.0f} B "
                "per queued message"
            )
        ym["meets_target"] = {
            "redis": ym["redis_bytes_per_task"] <= TARGET_REDIS_BYTES,
            "dispatcher": ym["dispatcher_bytes_per_task"] <= TARGET_DISPATCHER_BYTES,
        }
        figures[str(size)] = row
    emit(
        {
            "benchmark": "memory",
            "command": " ".join(["python -m benchmarks.memory", *(argv or sys.argv[1:])]),
            "date": today(),
            "targets": {
                "redis_bytes_per_task": TARGET_REDIS_BYTES,
                "dispatcher_bytes_per_task": TARGET_DISPATCHER_BYTES,
            },
            "figures": figures,
            "code": code,
            "machine": finish_machine(info),
        },
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
