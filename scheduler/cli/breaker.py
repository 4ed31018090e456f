"""``yardmaster breaker``: circuit breakers per task name and their latest transitions."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from scheduler.cli.base import app
from scheduler.cli.connect import open_store
from scheduler.client import Client

console = Console()


@app.command()
def breaker(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    limit: Annotated[int, typer.Option(help="Transitions to show, newest first.")] = 20,
) -> None:
    """Circuit breakers per task name (closed, open, half_open) and their latest transitions."""
    client = Client(open_store())
    states = client.breakers()
    transitions = client.breaker_transitions(limit)
    if as_json:
        typer.echo(json.dumps({"breakers": states, "transitions": transitions}, indent=2))
        return
    table = Table(title="circuit breakers")
    for col in ("task name", "state", "mode", "since", "why"):
        table.add_column(col)
    for name, rec in states.items():
        since = time.strftime("%H:%M:%S", time.localtime(float(rec["since"])))
        table.add_row(name, rec["state"], rec["mode"], since, rec["reason"])
    console.print(table if states else "no breaker has tripped")
    for t in transitions:
        at = time.strftime("%H:%M:%S", time.localtime(float(t["at"])))
        console.print(f"{at} {t['name']}: {t['from']} -> {t['to']} ({t['reason']})")
