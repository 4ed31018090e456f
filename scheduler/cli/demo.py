"""``yardmaster demo``: one workload under two strategies side by side, then a circuit
breaker opened on purpose, each explained in plain words."""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass
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
from scheduler.settings import STRATEGY_NAMES, load_settings
from scheduler.stats import percentile

console = Console()

HIGH = 7
"""Priorities from here up are the "high-priority tasks" of the comparison."""

WAVES = 4
WAVE_GAP = 0.5
"""The workload arrives in ``WAVES`` bursts ``WAVE_GAP`` seconds apart: more than the
slots can take, so a backlog forms and the strategy's order matters."""

OUTAGE_TASKS = 24
OUTAGE_FAILURES = 8
OUTAGE_SECONDS = 0.25
COOLDOWN = 1.5
BREAKER = {
    "enabled": True,
    "failure_rate": 0.5,
    "window": 30.0,
    "min_calls": OUTAGE_FAILURES,
    "cooldown": COOLDOWN,
    "probes": 1,
    "mode": "wait",
}
"""The demo's breaker for the ``flaky`` task: it opens once the outage's failing calls
are all in, and cools down quickly, so it is seen within seconds (the cluster default
waits for 20 calls and cools down for 30 s)."""


def demo_workload(
    n: int, seed: int, waves: int = WAVES, run: str = ""
) -> list[list[dict[str, Any]]]:
    """A mixed workload in ``waves`` bursts: mostly ``sleep`` with affinity keys, some ``spin``.

    Priorities are skewed low, so the few high ones show what a strategy does for them.
    The affinity keys are named after ``run``, so a second run of the same workload
    starts as cold as the first (a key warm from the first would halve its sleeps).
    """
    rng = random.Random(seed)
    out: list[list[dict[str, Any]]] = [[] for _ in range(waves)]
    for i in range(n):
        priority = rng.choices(range(10), weights=[6, 5, 5, 4, 4, 3, 2, 2, 1, 1])[0]
        if rng.random() < 0.8:
            user = f"{run}user-{rng.randrange(6)}"
            seconds = round(rng.uniform(0.02, 0.12), 3)
            task: dict[str, Any] = {
                "name": "sleep",
                "args": [seconds],
                "affinity_key": user,
                "expected_duration": seconds,
            }
        else:
            task = {"name": "spin", "args": [round(rng.uniform(0.005, 0.03), 3)]}
        task["priority"] = priority
        out[i * waves // n].append(task)
    return out


@dataclass(frozen=True)
class Run:
    """The records of one run of the workload under one strategy."""

    strategy: str
    records: list[TaskRecord]

    def wait_p95(self, low: int = 0, high: int = 9) -> float:
        """The 95th percentile of the wait of tasks with a priority in [low, high]."""
        waits = [r.wait for r in self.records if low <= r.priority <= high and r.wait is not None]
        return percentile(waits, 95)

    @property
    def makespan(self) -> float:
        first = min(r.submitted_at for r in self.records)
        return max(r.finished_at or first for r in self.records) - first

    @property
    def succeeded(self) -> int:
        return sum(r.state == TaskState.SUCCEEDED for r in self.records)


@app.command()
def demo(
    tasks: Annotated[int, typer.Option(min=1, max=100_000, help="Tasks per strategy.")] = 160,
    workers: Annotated[int, typer.Option(min=1, max=32, help="Worker processes.")] = 2,
    slots: Annotated[int, typer.Option(min=1, max=64, help="Slots per worker.")] = 2,
    baseline: Annotated[str, typer.Option(help="The strategy compared against.")] = "fifo",
    strategy: Annotated[str, typer.Option(help="The strategy shown.")] = "priority",
    seed: Annotated[int, typer.Option(help="Seed of the workload.")] = 7,
    breaker: Annotated[bool, typer.Option(help="Also show the circuit breaker.")] = True,
    flower: Annotated[bool, typer.Option(help="Also start Flower.")] = False,
) -> None:
    """Start the stack, run one workload under two strategies, open a breaker on purpose, stop."""
    for field, value in (("--baseline", baseline), ("--strategy", strategy)):
        if value not in STRATEGY_NAMES:
            raise typer.BadParameter(
                f"{value!r} is not a strategy; one of {', '.join(STRATEGY_NAMES)}",
                param_hint=field,
            )
    started = time.monotonic()
    settings = load_settings(strategy=baseline)
    console.print(
        f"[bold]yardmaster demo[/]: the same {tasks} tasks under {baseline}, then under "
        f"{strategy}, on {workers} workers x {slots} slots"
    )
    env = {"YM_BREAKER_OVERRIDES": json.dumps({"flaky": BREAKER})}
    with LocalCluster(settings, env=env) as cluster:
        cluster.start(workers=workers, slots=slots, flower=flower)
        console.print(
            f"stack ready (Redis {redact_url(cluster.url)}{' embedded' if cluster.redis else ''}; "
            f"logs {cluster.log_dir})"
        )
        client = Client(cluster.store, known_tasks=(*BUILTIN_TASKS, "flaky"))
        runs = [_run(client, baseline, tasks, seed)]
        version = client.set_strategy(strategy, who="yardmaster demo").version
        client.wait_strategy_active(version, timeout=30)
        runs.append(_run(client, strategy, tasks, seed))
        _compare(runs[0], runs[1])
        if breaker:
            _breaker(client)
    console.print(f"demo finished in {time.monotonic() - started:.1f}s")


def _run(client: Client, strategy: str, n: int, seed: int) -> Run:
    """Submit the workload in its waves under the active ``strategy``; wait for every task."""
    waves = demo_workload(n, seed, run=f"{strategy}-")
    handles: list[TaskHandle] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        done = bar.add_task(f"{strategy:>9}", total=n)
        base = client.store.events.counters()
        terminal = ("succeeded", "failed", "cancelled", "expired")
        next_wave = time.monotonic()
        finished = 0
        while finished < n:
            if waves and time.monotonic() >= next_wave:
                handles += client.submit_many(waves.pop(0))
                next_wave = time.monotonic() + WAVE_GAP
            counts = client.store.events.counters()
            finished = sum(counts.get(k, 0) - base.get(k, 0) for k in terminal)
            bar.update(done, completed=finished)
            time.sleep(0.05)
    return Run(strategy, client.wait(handles, timeout=600))


def _compare(base: Run, shown: Run) -> None:
    table = Table(title="the same workload, two strategies (seconds)")
    table.add_column("")
    table.add_column(base.strategy, justify="right")
    table.add_column(shown.strategy, justify="right")
    rows = (
        (f"wait p95, priority {HIGH}-9", base.wait_p95(HIGH), shown.wait_p95(HIGH)),
        (
            f"wait p95, priority 0-{HIGH - 1}",
            base.wait_p95(0, HIGH - 1),
            shown.wait_p95(0, HIGH - 1),
        ),
        ("wait p95, all tasks", base.wait_p95(), shown.wait_p95()),
        ("makespan", base.makespan, shown.makespan),
    )
    for label, a, b in rows:
        table.add_row(label, f"{a:.3f}", f"{b:.3f}")
    console.print(table)
    high = sum(r.priority >= HIGH for r in shown.records)
    before, after = base.wait_p95(HIGH), shown.wait_p95(HIGH)
    ratio = f"{before / after:.0f}x shorter" if after > 0 and before > after else "no shorter"
    console.print(
        f"The {high} high-priority tasks (priority {HIGH}-9) waited {before:.2f}s (p95) under "
        f"{base.strategy} and {after:.2f}s under {shown.strategy}: {ratio}. Every task waits in "
        "Redis until a worker has a free slot, and only then is the best one by the strategy "
        "sent to that worker's own queue, so the order is exact; plain Celery on Redis sorts "
        "priorities into a few buckets and runs prefetched messages first. " + _others(base, shown)
    )


def _others(base: Run, shown: Run) -> str:
    """What the other tasks and the whole batch saw, in a sentence."""
    low_before, low_after = base.wait_p95(0, HIGH - 1), shown.wait_p95(0, HIGH - 1)
    span = f"the whole batch took {base.makespan:.2f}s and {shown.makespan:.2f}s"
    if low_after > 1.1 * low_before:
        return (
            f"The other tasks pay for it (wait p95 {low_before:.2f}s -> {low_after:.2f}s); {span}."
        )
    return (
        f"The other tasks did not wait noticeably longer this time ({low_before:.2f}s, "
        f"{low_after:.2f}s); {span}."
    )


def _breaker(client: Client) -> None:
    """A dependency outage: the first runs of ``flaky`` fail and open its breaker; the
    tasks that arrive while it is open wait in Redis; after the cool-down a probe
    succeeds, the breaker closes and they run."""
    console.print(
        f"\n[bold]circuit breaker[/]: `flaky` tasks whose dependency fails their first "
        f"{OUTAGE_FAILURES} runs (an outage, on purpose)"
    )
    key = f"demo-outage-{uuid.uuid4().hex[:8]}"
    args = {"key": key, "failures": OUTAGE_FAILURES, "seconds": OUTAGE_SECONDS}
    task = {"name": "flaky", "kwargs": args, "priority": 5}
    handles = client.submit_many([task] * OUTAGE_FAILURES)
    opened = _breaker_state(client, "open", handles)
    later = client.submit_many([task] * (OUTAGE_TASKS - OUTAGE_FAILURES))
    if opened:
        _breaker_state(client, "closed", later)
    records = client.wait(handles + later, timeout=120)
    first = min(r.submitted_at for r in records)
    moves = [t for t in reversed(client.breaker_transitions()) if t["name"] == "flaky"]
    moves = [t for t in moves if t["at"] >= first]
    for move in moves:
        console.print(
            f"  {move['at'] - first:5.2f}s  breaker of flaky: {move['from']} -> {move['to']} "
            f"({move['reason']})"
        )
    failed = sum(r.state == TaskState.FAILED for r in records)
    ok = sum(r.state == TaskState.SUCCEEDED for r in records)
    open_at = next((t["at"] for t in moves if t["to"] == "open"), None)
    if open_at is None:
        console.print(f"The breaker did not open this time: {failed} failed, {ok} succeeded.")
        return
    held = sum(r.submitted_at >= open_at and r.dispatched_at is not None for r in records)
    console.print(
        f"The first {OUTAGE_FAILURES} calls failed, so the breaker of `flaky` opened (failures "
        f"past {BREAKER['failure_rate']:.0%} of at least {BREAKER['min_calls']} calls). The "
        f"{held} tasks submitted while it was open stayed pending in Redis (neither run nor "
        f"failed) instead of calling the failing dependency; after a {COOLDOWN}s "
        f"cool-down one probe went through, it succeeded, so the breaker closed and released "
        f"the rest: {failed} failed (the outage), {ok} succeeded. Other task names are not "
        "affected. The demo sets a short cool-down; a cluster's default is 30s "
        "(YM_BREAKER_COOLDOWN), and `yardmaster breaker` shows the breakers of a running "
        "cluster."
    )


def _breaker_state(client: Client, state: str, handles: list[TaskHandle]) -> bool:
    """Wait until the breaker of ``flaky`` is in ``state`` (True), or until ``handles``
    ended and a cool-down more passed without it (False)."""
    give_up: float | None = None
    while True:
        if client.breakers().get("flaky", {}).get("state") == state:
            return True
        if give_up is None and all(h.status().terminal for h in handles):
            give_up = time.monotonic() + COOLDOWN + 2.0
        if give_up is not None and time.monotonic() > give_up:
            return False
        time.sleep(0.05)
