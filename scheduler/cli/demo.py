"""``yardmaster demo``: the stack, a mixed workload with a progress bar, then a summary."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from scheduler.cli.base import app
from scheduler.cli.connect import BUILTIN_TASKS
from scheduler.client import Client, TaskHandle
from scheduler.local_cluster import LocalCluster
from scheduler.models import TaskRecord, TaskState
from scheduler.redaction import redact_url
from scheduler.settings import load_settings
from scheduler.stats import percentile

console = Console()


def demo_workload(n: int, seed: int, bursts: int = 5) -> list[list[dict[str, Any]]]:
    """A mixed workload in ``bursts`` waves: mostly ``sleep`` with affinity keys, some ``spin`` and ``fail``.

    Priorities are skewed low, so the high ones show what the scheduler does for them.
    """
    rng = random.Random(seed)
    waves: list[list[dict[str, Any]]] = [[] for _ in range(bursts)]
    for i in range(n):
        roll = rng.random()
        priority = rng.choices(range(10), weights=[6, 5, 5, 4, 4, 3, 2, 2, 1, 1])[0]
        if roll < 0.72:
            user = f"user-{rng.randrange(6)}"
            seconds = round(rng.uniform(0.02, 0.12), 3)
            task: dict[str, Any] = {
                "name": "sleep",
                "args": [seconds],
                "affinity_key": user,
                "expected_duration": seconds,
            }
        elif roll < 0.94:
            task = {"name": "spin", "args": [round(rng.uniform(0.005, 0.03), 3)]}
        else:
            task = {"name": "fail", "args": ["demo failure (expected)"]}
        task["priority"] = priority
        waves[i * bursts // n].append(task)
    return waves


@app.command()
def demo(
    tasks: Annotated[int, typer.Option(min=1, max=100_000, help="Tasks to submit.")] = 400,
    workers: Annotated[int, typer.Option(min=1, max=32, help="Worker processes.")] = 2,
    slots: Annotated[int, typer.Option(min=1, max=64, help="Slots per worker.")] = 2,
    strategy: Annotated[str, typer.Option(help="Strategy of the dispatcher.")] = "priority",
    seed: Annotated[int, typer.Option(help="Seed of the workload.")] = 7,
    flower: Annotated[bool, typer.Option(help="Also start Flower.")] = False,
) -> None:
    """Start the stack, run a mixed workload, print a summary, stop."""
    settings = load_settings(strategy=strategy)
    console.print(
        f"[bold]yardmaster demo[/]: {tasks} tasks, {workers} workers x {slots} slots, strategy {strategy}"
    )
    with LocalCluster(settings) as cluster:
        cluster.start(workers=workers, slots=slots, flower=flower)
        console.print(
            f"stack ready (Redis {redact_url(cluster.url)}{' embedded' if cluster.redis else ''}; logs {cluster.log_dir})"
        )
        client = Client(cluster.store, known_tasks=BUILTIN_TASKS)
        started = time.time()
        handles = _run(client, demo_workload(tasks, seed))
        records = client.wait(handles, timeout=600)
        _summary(records, time.time() - started)


def _run(client: Client, waves: list[list[dict[str, Any]]]) -> list[TaskHandle]:
    total = sum(len(w) for w in waves)
    handles: list[TaskHandle] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        sub = bar.add_task("submitted", total=total)
        done = bar.add_task("finished ", total=total)
        base = client.store.events.counters()
        terminal = ("succeeded", "failed", "cancelled", "expired")
        next_wave = time.monotonic()
        finished = 0
        while finished < total:
            if waves and time.monotonic() >= next_wave:
                handles += client.submit_many(waves.pop(0))
                bar.update(sub, completed=len(handles))
                next_wave = time.monotonic() + 1.0
            counts = client.store.events.counters()
            finished = sum(counts.get(k, 0) - base.get(k, 0) for k in terminal)
            bar.update(done, completed=finished)
            time.sleep(0.1)
    return handles


def _summary(records: list[TaskRecord], elapsed: float) -> None:
    ok = sum(r.state == TaskState.SUCCEEDED for r in records)
    failed = sum(r.state == TaskState.FAILED for r in records)
    first = min(r.submitted_at for r in records)
    last = max(r.finished_at or first for r in records)
    console.print(
        f"\n{len(records)} tasks in {last - first:.2f}s: [bold]{len(records) / max(last - first, 1e-9):.1f} tasks/s[/]"
        f"  (succeeded {ok}, failed {failed}: the `fail` tasks fail on purpose)"
    )
    by_pri: dict[int, list[TaskRecord]] = defaultdict(list)
    for r in records:
        by_pri[r.priority].append(r)
    table = Table(title="wait and flow per priority (seconds)")
    for col in ("priority", "tasks", "wait p50", "wait p95", "flow p50", "flow p95"):
        table.add_column(col, justify="right")
    for p in sorted(by_pri, reverse=True):
        waits = [r.wait for r in by_pri[p] if r.wait is not None]
        flows = [r.flow for r in by_pri[p] if r.flow is not None]
        table.add_row(
            str(p), str(len(by_pri[p])),
            *(f"{percentile(v, q):.3f}" for v, q in ((waits, 50), (waits, 95), (flows, 50), (flows, 95))),
        )  # fmt: skip
    console.print(table)
    console.print(f"demo finished in {elapsed:.1f}s")
