"""``yardmaster monitor``: /metrics, /dashboard and /monitor/* JSON over HTTP, and the
HTTP API under /api when tokens are configured (the dashboard's strategy rollback).

The monitor process also carries tuning's companion: the rolling trace
(``YM_MONITOR_TRACE``), plans of the backlog against what happened, and the
guard of a guarded strategy rollout (docs/tuning.md)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from scheduler.cli.base import app
from scheduler.cli.connect import open_monitor

if TYPE_CHECKING:
    from fastapi import FastAPI

    from scheduler.monitor import Monitor


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

    from scheduler.logs import configure as configure_logs
    from scheduler.monitor.web import build_app

    mon = open_monitor(history, check=True, companion=True)
    log_format = mon.settings.log_format
    configure_logs(log_format, loglevel, "monitor")
    bind = port or mon.settings.monitor_port
    web = build_app(mon, api=_api_app(mon) if api else None)
    # JSON logs: uvicorn's loggers go through the root's handler, not its own text ones
    config = None if log_format == "json" else uvicorn.config.LOGGING_CONFIG
    uvicorn.run(web, host=host, port=bind, log_level=loglevel.lower(), log_config=config)


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
