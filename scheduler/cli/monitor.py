"""``yardmaster monitor`` (the HTTP monitor) and ``yardmaster health`` (a probe)."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from scheduler.cli.base import app
from scheduler.embedded import resolve_redis_url
from scheduler.monitor import Monitor
from scheduler.settings import load_settings
from scheduler.store import StateStore, connect

if TYPE_CHECKING:
    from fastapi import FastAPI

console = Console()


def make_monitor(history: str | None = None) -> Monitor:
    """A monitor on the configured cluster (``YM_*`` settings)."""
    settings = load_settings()
    store = StateStore(connect(resolve_redis_url(settings)), settings)
    return Monitor.from_settings(store, history)


@app.command()
def monitor(
    port: Annotated[int | None, typer.Option(help="Port; default YM_MONITOR_PORT.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    history: Annotated[
        str | None, typer.Option(help="JSON Lines history file; default YM_MONITOR_HISTORY.")
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Logging level.")] = "WARNING",
    api: Annotated[
        bool,
        typer.Option(
            help="Also serve the HTTP API under /api (needs YM_API_TOKENS), so that the "
            "dashboard can roll the strategy back with an admin token."
        ),
    ] = True,
) -> None:
    """Serve /metrics (Prometheus), /dashboard and /monitor/* JSON from yardmaster's records."""
    import uvicorn

    from scheduler.monitor.web import build_app

    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    mon = make_monitor(history)
    bind = port or mon.settings.monitor_port
    web = build_app(mon, api=_api_app(mon) if api else None)
    uvicorn.run(web, host=host, port=bind, log_level=loglevel.lower())


def _api_app(mon: Monitor) -> FastAPI | None:
    """The HTTP API on the monitor's store, behind the same tokens as ``yardmaster api``;
    None (the dashboard stays read-only) when no token is configured."""
    from scheduler.api import create_app
    from scheduler.errors import SettingsError

    try:
        return create_app(mon.settings, store=mon.store)
    except SettingsError:
        logging.getLogger("yardmaster.monitor").warning(
            "no YM_API_TOKENS: the dashboard is read-only (no strategy rollback)"
        )
        return None


@app.command()
def health(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    sample: Annotated[
        float,
        typer.Option(help="Seconds between the two reads that measure the backlog trend."),
    ] = 1.0,
) -> None:
    """Print the health score; exit 1 when the cluster is unhealthy (usable as a probe)."""
    mon = make_monitor()
    mon.poll()
    time.sleep(max(0.0, sample))
    snap = mon.poll()
    h = snap["health"]
    if as_json:
        typer.echo(json.dumps({**h, "anomalies": snap["anomalies"]}, indent=2))
    else:
        style = {"healthy": "green", "degraded": "yellow", "unhealthy": "bold red"}[h["status"]]
        console.print(f"health [{style}]{h['score']:.0f} {h['status']}[/]")
        for name, value in h["components"].items():
            console.print(f"  {name:<11} {value:5.0f}")
        for reason in h["reasons"]:
            console.print(f"  - {reason}", highlight=False)
    if h["status"] == "unhealthy":
        raise typer.Exit(1)
