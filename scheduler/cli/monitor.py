"""``yardmaster monitor``: /metrics, /dashboard and /monitor/* JSON over HTTP."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from scheduler.cli.base import app
from scheduler.cli.connect import open_monitor


@app.command()
def monitor(
    port: Annotated[int | None, typer.Option(help="Port; default YM_MONITOR_PORT.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    history: Annotated[
        str | None, typer.Option(help="JSON Lines history file; default YM_MONITOR_HISTORY.")
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Logging level.")] = "WARNING",
) -> None:
    """Serve /metrics (Prometheus), /dashboard and /monitor/* JSON from yardmaster's records."""
    import uvicorn

    from scheduler.monitor.web import build_app

    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    mon = open_monitor(history, check=True)
    bind = port or mon.settings.monitor_port
    uvicorn.run(build_app(mon), host=host, port=bind, log_level=loglevel.lower())
