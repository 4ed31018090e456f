"""``yardmaster ratelimit show|set|clear``: global rate limits per task name."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from scheduler.cli.base import app
from scheduler.cli.connect import open_client

console = Console()
rate_app = typer.Typer(
    help="Global rate limits per task name, enforced by the dispatcher.", no_args_is_help=True
)
app.add_typer(rate_app, name="ratelimit")


@rate_app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Every global rate limit."""
    limits = open_client().rate_limits()
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
    open_client().set_rate_limit(name, per_second)
    typer.echo(f"{name}: at most {per_second:g} tasks/s")


@rate_app.command("clear")
def clear_limit(name: Annotated[str, typer.Argument(help="Task name.")]) -> None:
    """Remove a task name's global rate limit."""
    open_client().set_rate_limit(name, None)
    typer.echo(f"{name}: no global rate limit")
