"""``yardmaster cache stats|clear`` and ``yardmaster ratelimit show|set|clear``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from scheduler.cli.base import app
from scheduler.cli.ops import BUILTIN_TASKS, _store
from scheduler.client import Client

console = Console()
cache_app = typer.Typer(
    help="The solution cache: counters, entries, clearing.", no_args_is_help=True
)
app.add_typer(cache_app, name="cache")
rate_app = typer.Typer(
    help="Global rate limits per task name, enforced by the dispatcher.", no_args_is_help=True
)
app.add_typer(rate_app, name="ratelimit")

TaskOption = Annotated[str | None, typer.Option("--task", help="Only this task name.")]


@cache_app.command("stats")
def stats(
    task: TaskOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Hits, misses, hit rate and live entries (coalesced, idempotent, evicted: all tasks)."""
    figures = _store().cache.stats(task).as_dict()
    if as_json:
        typer.echo(json.dumps(figures))
        return
    for name, value in figures.items():
        console.print(f"{name}: {value if value is not None else 'all tasks'}")


@cache_app.command("clear")
def clear(task: TaskOption = None) -> None:
    """Remove cached results (every task's, or one task name's); the counters stay."""
    removed = _store().cache.clear(task)
    plural = "" if removed == 1 else "s"
    typer.echo(f"removed {removed} cached result{plural}" + (f" of {task}" if task else ""))


def _client() -> Client:
    return Client(_store(), known_tasks=BUILTIN_TASKS)


@rate_app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Every global rate limit."""
    limits = _client().rate_limits()
    if as_json:
        typer.echo(json.dumps(limits))
        return
    for name, rate in sorted(limits.items()):
        console.print(f"{name}: {rate:g}/s")
    if not limits:
        console.print("no global rate limits")


@rate_app.command("set")
def set_limit(
    name: Annotated[str, typer.Argument(help="Registered task name.")],
    per_second: Annotated[float, typer.Argument(help="Tasks per second across the cluster.")],
) -> None:
    """Limit how many tasks of one name start per second across all workers."""
    _client().set_rate_limit(name, per_second)
    typer.echo(f"{name}: at most {per_second:g} tasks/s")


@rate_app.command("clear")
def clear_limit(name: Annotated[str, typer.Argument(help="Task name.")]) -> None:
    """Remove a task name's global rate limit."""
    _client().set_rate_limit(name, None)
    typer.echo(f"{name}: no global rate limit")
