"""``yardmaster worker``: a Celery worker with yardmaster's hooks, consuming only its own queue."""

from __future__ import annotations

import os
import socket
from typing import Annotated

import typer

from broker_config.celery_app import app_settings
from scheduler.cli.base import app
from scheduler.embedded import resolve_redis_url
from scheduler.settings import load_settings


@app.command()
def worker(
    slots: Annotated[int | None, typer.Option(help="Concurrent tasks; default YM_SLOTS.")] = None,
    name: Annotated[str | None, typer.Option(help="Worker name (Celery hostname).")] = None,
    pool: Annotated[str, typer.Option(help="Celery pool: prefork, threads or solo.")] = "prefork",
    events: Annotated[bool, typer.Option(help="Send Celery task events (for Flower).")] = False,
    loglevel: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
    app_module: Annotated[
        str | None,
        typer.Option(
            "--app",
            "-A",
            help="Run this Celery app (a module, module:attr, or a package with celery.py, "
            "as `celery -A` reads it), made by workers.app.create_app().",
        ),
    ] = None,
    resources: Annotated[
        str | None,
        typer.Option(
            help="Capacities, e.g. gpu=2,mem=16G (K/M/G/T: powers of 1024); "
            "default YM_WORKER_RESOURCES."
        ),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(help="A label key=value (repeatable); default YM_WORKER_LABELS."),
    ] = None,
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues",
            "-Q",
            help="Celery queues it consumes, e.g. q1,q2: tasks routed to one of them "
            "(queue=, task_routes) run only on workers consuming it; default YM_WORKER_QUEUES.",
        ),
    ] = None,
) -> None:
    """Run a Celery worker with yardmaster's hooks; it consumes only its own queue."""
    from workers.app import create_app
    from workers.loading import load_app

    overrides: dict[str, object] = {"slots": slots} if slots is not None else {}
    if resources is not None:
        overrides["worker_resources"] = resources
    if label:
        overrides["worker_labels"] = ",".join(label)
    if queues is not None:
        overrides["worker_queues"] = queues
    settings = load_settings(**overrides)
    if app_module:
        celery_app = load_app(app_module, overrides)
        settings = app_settings(celery_app)
    else:
        celery_app = create_app(settings, resolve_redis_url(settings))
    hostname = name or f"w{os.getpid()}@{socket.gethostname()}"
    argv = [
        "worker",
        f"--concurrency={settings.slots}",
        f"--hostname={hostname}",
        f"--pool={pool}",
        f"--loglevel={loglevel}",
        "--without-gossip",
        "--without-mingle",
    ]
    if events:
        argv.append("--task-events")
    celery_app.worker_main(argv)
