"""``yardmaster up``: the whole local cluster in the foreground until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from rich.console import Console

from scheduler.cli.base import app
from scheduler.errors import YardmasterError
from scheduler.local_cluster import LocalCluster
from scheduler.local_services import AUTH_OFF_WARNING
from scheduler.redaction import redact_url
from scheduler.sentinel_topology import SentinelRedis
from scheduler.settings import load_settings

console = Console()


@app.command()
def up(
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 2,
    slots: Annotated[int, typer.Option(min=1, max=512, help="Slots per worker.")] = 2,
    strategy: Annotated[str | None, typer.Option(help="Strategy; default YM_STRATEGY.")] = None,
    flower: Annotated[bool, typer.Option(help="Start Flower (workers then send events).")] = True,
    monitor: Annotated[
        bool, typer.Option(help="Start yardmaster's monitor (/metrics, /dashboard).")
    ] = True,
    monitor_port: Annotated[
        int | None, typer.Option(help="Port of the monitor; default YM_MONITOR_PORT.")
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Log level of the processes.")] = "WARNING",
    api: Annotated[bool, typer.Option(help="Start the HTTP API (yardmaster api).")] = True,
    api_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="HTTP API port; default YM_API_PORT.")
    ] = None,
    app_module: Annotated[
        str | None,
        typer.Option(
            "--app", "-A", help="The workers run this Celery app, as `celery -A` reads it."
        ),
    ] = None,
    ha: Annotated[
        bool,
        typer.Option(
            "--ha",
            help="With no YM_REDIS_URL: start a Redis primary, a replica and three "
            "Sentinels, and connect through the Sentinels.",
        ),
    ] = False,
) -> None:
    """Run the whole stack in the foreground until Ctrl-C."""
    settings = load_settings(**({"strategy": strategy} if strategy else {}))
    if ha and settings.redis_url:
        raise YardmasterError(
            "--ha starts its own Redis with Sentinels; unset YM_REDIS_URL "
            f"({redact_url(settings.redis_url)}) or leave out --ha"
        )
    port = (monitor_port or settings.monitor_port) if monitor else None
    cluster = LocalCluster(settings, ha=ha)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    console.print("[bold]yardmaster up[/]: starting ...")
    try:
        cluster.start(
            workers=workers,
            slots=slots,
            flower=flower,
            monitor_port=port,
            api=api,
            api_port=api_port,
            loglevel=loglevel.upper(),
            app_module=app_module,
        )
        shown = redact_url(cluster.url)
        if isinstance(cluster.redis, SentinelRedis):
            console.print(f"  Redis      {shown}  (master {cluster.redis.master!r}: a primary,")
            console.print("             a replica and 3 Sentinels, embedded)")
        else:
            console.print(f"  Redis      {shown}" + ("  (embedded)" if cluster.redis else ""))
        console.print(f"  dispatcher strategy {cluster.strategy}")
        console.print(f"  workers    {workers} x {slots} slots")
        if flower:
            console.print(f"  Flower     http://127.0.0.1:{settings.flower_port}/")
        if api:
            console.print(f"  HTTP API   {cluster.api_url}/docs")
            if cluster.api_token_file is not None:
                console.print(
                    f"             admin token in {cluster.api_token_file} (this run only)"
                )
            elif not settings.api_auth:
                console.print(f"  [bold red]WARNING[/] {AUTH_OFF_WARNING}", highlight=False)
        if port is not None:
            console.print(f"  monitor    http://127.0.0.1:{port}/dashboard  (and /metrics)")
        console.print(f"  logs       {cluster.log_dir}")
        console.print(
            "Ready. Try `yardmaster submit sleep 0.5` and `yardmaster status` in another shell; Ctrl-C stops."
        )
        while not stop.wait(1.0):
            for name, proc in cluster.procs.items():
                if proc.poll() is not None:
                    raise YardmasterError(
                        f"{name} exited with code {proc.returncode}; see {cluster.log_dir}/{name}.log"
                    )
    finally:
        console.print("stopping ...")
        cluster.stop()
        console.print("stopped.")
