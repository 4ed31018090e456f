"""``yardmaster api``: the HTTP API under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from scheduler.cli.base import app

err = Console(stderr=True)


@app.command()
def api(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on; default YM_API_HOST.")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="TCP port; default YM_API_PORT.")
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO",
) -> None:
    """Serve the HTTP API (submit, inspect, cancel, steer; OpenAPI at /docs)."""
    import uvicorn

    from scheduler.api import create_app
    from scheduler.cli.connect import open_store
    from scheduler.logs import configure as configure_logs
    from scheduler.monitor import Monitor
    from scheduler.monitor.web import build_router
    from scheduler.settings import API_AUTH_OFF_WARNING, load_settings

    settings = load_settings()
    configure_logs(settings.log_format, loglevel, "api")
    store = open_store(settings)
    # The monitor's pages and /metrics, behind the read scope; its snapshot is taken
    # on request (at most once per YM_MONITOR_INTERVAL): the history is the job of
    # `yardmaster monitor`, so the API starts no poller of its own.
    monitor = build_router(Monitor(store), api_base="")
    web = create_app(settings, store=store, read_routers=[monitor])
    store.server_time()  # fail now, not at the first request, when Redis cannot be reached
    if not settings.api_auth:
        err.print(f"[bold red]WARNING[/] {API_AUTH_OFF_WARNING}", highlight=False)
    uvicorn.run(
        web,
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level=loglevel.lower(),
        # JSON logs: uvicorn's loggers go through the root's handler, not its own text ones
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        # Paths and statuses only; headers (tokens) are never logged.
        access_log=loglevel.upper() == "DEBUG",
        server_header=False,
    )
