"""``yardmaster submit`` and ``yardmaster status``."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from scheduler.cli.base import app
from scheduler.client import Client
from scheduler.embedded import resolve_redis_url
from scheduler.errors import InvalidInputError
from scheduler.settings import load_settings
from scheduler.status import cluster_status
from scheduler.store import StateStore, connect

console = Console()
BUILTIN_TASKS = ("noop", "sleep", "spin", "fail", "ledger", "ledger_once")


def _store() -> StateStore:
    settings = load_settings()
    return StateStore(connect(resolve_redis_url(settings)), settings)


def _json_arg(field: str, text: str, kind: type) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            field, text, f"JSON text of a {kind.__name__}", problem=str(exc)
        ) from None
    if not isinstance(value, kind):
        raise InvalidInputError(field, text, f"JSON text of a {kind.__name__}")
    return value


@app.command()
def submit(
    name: Annotated[str, typer.Argument(help="Registered task name, e.g. sleep.")],
    args: Annotated[
        list[str] | None, typer.Argument(help="Positional arguments, each parsed as JSON.")
    ] = None,
    kwargs: Annotated[str, typer.Option(help="Keyword arguments as a JSON object.")] = "{}",
    priority: Annotated[int, typer.Option(help="0..9, higher runs first.")] = 5,
    deadline_in: Annotated[float | None, typer.Option(help="Deadline, seconds from now.")] = None,
    expected_duration: Annotated[
        float | None, typer.Option(help="Run-time hint in seconds.")
    ] = None,
    affinity_key: Annotated[str | None, typer.Option(help="Affinity key.")] = None,
    cache_ttl: Annotated[
        float | None, typer.Option(help="Cache a successful result this many seconds.")
    ] = None,
    cache_version: Annotated[
        str | None, typer.Option(help="Version part of the cache key.")
    ] = None,
    coalesce: Annotated[bool, typer.Option(help="Attach to an identical task in flight.")] = False,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Return the task submitted with this key.")
    ] = None,
    concurrency_key: Annotated[
        str | None, typer.Option(help="Cap tasks of this key (with --max-concurrent).")
    ] = None,
    max_concurrent: Annotated[int | None, typer.Option(help="Cap for --concurrency-key.")] = None,
    retry: Annotated[
        str | None,
        typer.Option(help='Retry policy as JSON, e.g. \'{"max_attempts": 3, "backoff": 1}\'.'),
    ] = None,
    soft_time_limit: Annotated[float | None, typer.Option(help="Soft time limit, s.")] = None,
    time_limit: Annotated[float | None, typer.Option(help="Hard time limit, s.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the result and print it.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 60.0,
) -> None:
    """Submit one task; prints its id (and its result with --wait)."""
    parsed = [_json_arg(f"args[{i}]", text, object) for i, text in enumerate(args or [])]
    client = Client(_store(), known_tasks=BUILTIN_TASKS)
    handle = client.submit(
        name,
        parsed,
        _json_arg("kwargs", kwargs, dict),
        priority=priority,
        deadline=None if deadline_in is None else time.time() + deadline_in,
        expected_duration=expected_duration,
        affinity_key=affinity_key,
        cache_ttl=cache_ttl,
        cache_version=cache_version,
        coalesce=coalesce,
        idempotency_key=idempotency_key,
        concurrency_key=concurrency_key,
        max_concurrent=max_concurrent,
        retry=None if retry is None else _json_arg("retry", retry, dict),
        soft_time_limit=soft_time_limit,
        time_limit=time_limit,
    )
    typer.echo(handle.id)
    if wait:
        typer.echo(json.dumps(handle.result(timeout=timeout)))


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Live view: workers, backlog, latency, anomalies.")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between redraws with --watch.")] = 1.0,
    count: Annotated[int, typer.Option(help="Stop after this many redraws (0: Ctrl-C).")] = 0,
) -> None:
    """Workers, slots, pending tasks by priority, and recent throughput (live with --watch)."""
    if watch:
        from scheduler.monitor import Monitor
        from scheduler.monitor.live import watch as live_watch

        with contextlib.suppress(KeyboardInterrupt):
            live_watch(Monitor(_store()), interval=interval, count=count, console=console)
        return
    snap = cluster_status(_store())
    if as_json:
        typer.echo(json.dumps(snap, indent=2))
        return
    table = Table(title="workers")
    for col in ("name", "slots", "in flight", "heartbeat age", "succeeded", "failed"):
        table.add_column(col)
    for w in snap["workers"]:
        table.add_row(
            w["name"], str(w["slots"]), str(w["in_flight"]), f"{w['heartbeat_age']:.1f}s",
            str(w["succeeded"]), str(w["failed"]),
        )  # fmt: skip
    console.print(table)
    pending = snap["pending"]
    by_pri = ", ".join(f"p{p}: {n}" for p, n in pending["by_priority"].items()) or "none"
    leader = "active" if snap["dispatcher"]["leader"] else "[red]none[/]"
    console.print(f"dispatcher: {leader}")
    console.print(f"slots: {snap['slots']['in_flight']}/{snap['slots']['total']} in use")
    console.print(f"pending: {pending['total']} ({by_pri})")
    if snap["retrying"]:
        console.print(f"waiting out a retry backoff: {snap['retrying']}")
    tripped = {n: st for n, st in snap["breakers"].items() if st != "closed"}
    if tripped:
        shown = ", ".join(f"{n}: {st}" for n, st in tripped.items())
        console.print(f"[red]circuit breakers:[/] {shown} (see `yardmaster breaker`)")
    thr = snap["throughput"]
    console.print(f"throughput: {thr['per_s']:.2f} tasks/s over the last {thr['window_s']:.0f}s")
    console.print("counters: " + ", ".join(f"{k}={v}" for k, v in sorted(snap["counters"].items())))
