"""``yardmaster dispatcher`` and ``yardmaster worker``: the long-running processes."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from types import FrameType
from typing import Annotated

import typer

from broker_config import CeleryPublisher, make_celery
from scheduler.adaptive import build_strategy
from scheduler.cli.base import app
from scheduler.dispatcher import Dispatcher
from scheduler.embedded import resolve_redis_url
from scheduler.redaction import redact_url
from scheduler.settings import load_settings
from scheduler.store import StateStore, connect


@app.command()
def dispatcher(
    strategy: Annotated[
        str | None, typer.Option(help="Strategy name; default YM_STRATEGY.")
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
) -> None:
    """Run a dispatcher: it fills free worker slots in the strategy's order (one active, others stand by)."""
    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    overrides = {"strategy": strategy} if strategy else {}
    settings = load_settings(**overrides)
    url = resolve_redis_url(settings)
    store = StateStore(connect(url), settings)
    publisher = CeleryPublisher(make_celery(settings, url), store.redis)
    loop = Dispatcher(store, build_strategy(settings.strategy, settings), publisher)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    logging.getLogger("yardmaster.dispatcher").info(
        "dispatcher starting: strategy %s, Redis %s", settings.strategy, redact_url(url)
    )
    loop.run(stop)


@app.command()
def worker(
    slots: Annotated[int | None, typer.Option(help="Concurrent tasks; default YM_SLOTS.")] = None,
    name: Annotated[str | None, typer.Option(help="Worker name (Celery hostname).")] = None,
    pool: Annotated[str, typer.Option(help="Celery pool: prefork, threads or solo.")] = "prefork",
    events: Annotated[bool, typer.Option(help="Send Celery task events (for Flower).")] = False,
    loglevel: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
) -> None:
    """Run a Celery worker with yardmaster's hooks; it consumes only its own queue."""
    from workers.app import create_app

    overrides = {"slots": slots} if slots is not None else {}
    settings = load_settings(**overrides)
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
