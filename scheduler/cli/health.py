"""``yardmaster health``: the health score and its components; exit 1 when unhealthy (a probe)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console

from scheduler.cli.base import app
from scheduler.cli.connect import open_monitor

console = Console()


@app.command()
def health(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    sample: Annotated[
        float,
        typer.Option(help="Seconds between the two reads that measure the backlog trend."),
    ] = 1.0,
) -> None:
    """Print the health score; exit 1 when the cluster is unhealthy (usable as a probe)."""
    mon = open_monitor()
    mon.poll()
    time.sleep(max(0.0, sample))
    snap = mon.poll()
    h = snap.health
    if as_json:
        data = snap.as_dict()
        typer.echo(json.dumps({**data["health"], "anomalies": data["anomalies"]}, indent=2))
    else:
        style = {"healthy": "green", "degraded": "yellow", "unhealthy": "bold red"}[h.status]
        console.print(f"health [{style}]{h.score:.0f} {h.status}[/]")
        for name, value in h.components.items():
            console.print(f"  {name:<11} {value:5.0f}")
        for reason in h.reasons:
            console.print(f"  - {reason}", highlight=False)
    if h.status == "unhealthy":
        raise typer.Exit(1)
