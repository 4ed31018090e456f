"""``yardmaster breaker`` (circuit breakers and their transitions) and ``yardmaster cancel``."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from scheduler.cli.base import app
from scheduler.cli.ops import _store
from scheduler.client import Client

console = Console()


@app.command()
def breaker(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    limit: Annotated[int, typer.Option(help="Transitions to show, newest first.")] = 20,
) -> None:
    """Circuit breakers per task name (closed, open, half_open) and their latest transitions."""
    client = Client(_store())
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


@app.command()
def cancel(
    task_id: Annotated[str, typer.Argument(help="The task's id.")],
    terminate: Annotated[
        bool | None,
        typer.Option(
            "--terminate/--flag",
            help="Kill a running task (default: YM_CANCEL_RUNNING), or only flag it.",
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a terminated run.")] = 30.0,
) -> None:
    """Cancel a task: pending or dispatched at once; running by flag or by terminating it."""
    client = Client(_store())
    handle = client.handle(task_id)
    done = handle.cancel(terminate, timeout=timeout)
    record = handle.record()
    reason = f" ({record.reason})" if record.reason else ""
    typer.echo(f"{task_id} {record.state}{reason}")
    if not done:
        raise typer.Exit(1)
