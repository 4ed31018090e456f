"""``yardmaster status``: workers, slots, pending tasks, throughput (live with ``--watch``);
``yardmaster status ID``: one task, with the progress it reported."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scheduler.cli.base import app
from scheduler.cli.connect import open_store
from scheduler.client import Client
from scheduler.models import TaskRecord
from scheduler.status import cluster_status

console = Console()


@app.command()
def status(
    task_id: Annotated[
        str | None,
        typer.Argument(help="A task's id: show that task (state, worker, attempt, progress)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Live view: workers, backlog, latency, anomalies.")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between redraws with --watch.")] = 1.0,
    count: Annotated[int, typer.Option(help="Stop after this many redraws (0: Ctrl-C).")] = 0,
) -> None:
    """Workers, slots, pending tasks by priority, and recent throughput (live with --watch);
    with a task id, that task."""
    if task_id is not None:
        show_task(Client(open_store()).handle(task_id).record(), as_json)
        return
    if watch:
        from scheduler.monitor import Monitor
        from scheduler.monitor.live import watch as live_watch

        with contextlib.suppress(KeyboardInterrupt):
            live_watch(Monitor(open_store()), interval=interval, count=count, console=console)
        return
    snap = cluster_status(open_store())
    if as_json:
        typer.echo(json.dumps(snap, indent=2))
        return
    table = Table(title="workers")
    cols = ("name", "slots", "in flight", "heartbeat age", "succeeded", "failed", "offers", "tasks")
    for col in cols:
        table.add_column(col)
    for w in snap["workers"]:
        offers = [f"{k}={v:g}" for k, v in w["resources"].items()]
        offers += [f"{k}={v}" for k, v in w["labels"].items()]
        offers += [f"-Q {q}" for q in w["queues"]]
        names = w["task_names"]
        table.add_row(
            w["name"], str(w["slots"]), str(w["in_flight"]), f"{w['heartbeat_age']:.1f}s",
            str(w["succeeded"]), str(w["failed"]), ", ".join(offers) or "-",
            "any" if names is None else str(len(names)),
        )  # fmt: skip
    console.print(table)
    pending = snap["pending"]
    by_pri = ", ".join(f"p{p}: {n}" for p, n in pending["by_priority"].items()) or "none"
    leader = "active" if snap["dispatcher"]["leader"] else "[red]none[/]"
    console.print(f"dispatcher: {leader}")
    console.print(f"slots: {snap['slots']['in_flight']}/{snap['slots']['total']} in use")
    console.print(f"pending: {pending['total']} ({by_pri})")
    console.print(f"waiting on parents: {snap['waiting']}")
    flows = snap["workflows"]
    if flows:
        table = Table(title="live workflows")
        for col in ("workflow", "done", "total", "progress", "by state"):
            table.add_column(col)
        for wf in flows:
            share = wf["done"] / wf["total"] if wf["total"] else 1.0
            states = ", ".join(f"{k}={v}" for k, v in sorted(wf["counts"].items()))
            table.add_row(
                wf["id"], str(wf["done"]), str(wf["total"]),
                escape(f"[{'#' * round(share * 20):<20}] {share:.0%}"), states,
            )  # fmt: skip
        console.print(table)
    if snap["retrying"]:
        console.print(f"waiting out a retry backoff: {snap['retrying']}")
    stuck = snap["unschedulable"]
    if stuck:
        console.print(f"[red]unschedulable:[/] {len(stuck)} tasks no live worker can run")
        for task_id, why in sorted(stuck.items())[:10]:
            console.print(f"  {task_id}: {why}", markup=False)
    tripped = {n: st for n, st in snap["breakers"].items() if st != "closed"}
    if tripped:
        shown = ", ".join(f"{n}: {st}" for n, st in tripped.items())
        console.print(f"[red]circuit breakers:[/] {shown} (see `yardmaster breaker`)")
    thr = snap["throughput"]
    console.print(f"throughput: {thr['per_s']:.2f} tasks/s over the last {thr['window_s']:.0f}s")
    console.print("counters: " + ", ".join(f"{k}={v}" for k, v in sorted(snap["counters"].items())))


def show_task(rec: TaskRecord, as_json: bool) -> None:
    """One task's record, its progress as a bar (``--json``: the record as one object)."""
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(rec), indent=2, default=str))
        return
    console.print(
        f"[bold]{rec.id}[/] {rec.name}: {rec.state}" + (f" ({rec.reason})" if rec.reason else "")
    )
    console.print(f"priority {rec.priority}, attempt {rec.attempt}, worker {rec.worker or '-'}")
    for label, at in (
        ("submitted", rec.submitted_at),
        ("dispatched", rec.dispatched_at),
        ("started", rec.started_at),
        ("finished", rec.finished_at),
    ):
        if at is not None:
            console.print(
                f"{label:>10}: {datetime.fromtimestamp(at, UTC):%Y-%m-%d %H:%M:%S.%f} UTC"
            )
    p = rec.progress
    if p is None:
        console.print("  progress: none reported")
    else:
        of = "" if p.total is None else f" / {p.total:g}"
        bar = (
            "" if p.fraction is None else f" [{'#' * round(p.fraction * 20):<20}] {p.fraction:.0%}"
        )
        note = f"  {p.note}" if p.note else ""
        console.print(f"  progress: {p.done:g}{of}{bar}{note}", markup=False)
    if rec.error:
        console.print(f"     error: {rec.error}", markup=False)
