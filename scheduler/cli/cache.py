"""``yardmaster cache stats|clear``: the solution cache's counters and entries."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from scheduler.cli.base import app
from scheduler.cli.connect import open_store

console = Console()
cache_app = typer.Typer(
    help="The solution cache: counters, entries, clearing.", no_args_is_help=True
)
app.add_typer(cache_app, name="cache")

TaskOption = Annotated[str | None, typer.Option("--task", help="Only this task name.")]


@cache_app.command("stats")
def stats(
    task: TaskOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Hits, misses, hit rate and live entries (coalesced, idempotent, evicted: all tasks)."""
    figures = open_store().cache.stats(task).as_dict()
    if as_json:
        typer.echo(json.dumps(figures))
        return
    for name, value in figures.items():
        console.print(f"{name}: {value if value is not None else 'all tasks'}")


@cache_app.command("clear")
def clear(task: TaskOption = None) -> None:
    """Remove cached results (every task's, or one task name's); the counters stay."""
    removed = open_store().cache.clear(task)
    plural = "" if removed == 1 else "s"
    typer.echo(f"removed {removed} cached result{plural}" + (f" of {task}" if task else ""))
