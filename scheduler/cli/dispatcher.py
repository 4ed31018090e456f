"""``yardmaster dispatcher``: fills free worker slots in the strategy's order (one leads, others stand by)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from broker_config import CeleryPublisher, make_celery
from scheduler.adaptive import build_strategy
from scheduler.cli.base import app
from scheduler.dispatcher import Dispatcher
from scheduler.embedded import resolve_redis_url
from scheduler.errors import StoreError
from scheduler.logs import configure as configure_logs
from scheduler.redaction import redact_url
from scheduler.settings import load_settings
from scheduler.store import Store


@app.command()
def dispatcher(
    strategy: Annotated[
        str | None, typer.Option(help="Strategy name; default YM_STRATEGY.")
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
) -> None:
    """Run a dispatcher: it fills free worker slots in the strategy's order (one active, others stand by)."""
    overrides = {"strategy": strategy} if strategy else {}
    settings = load_settings(**overrides)
    configure_logs(settings.log_format, loglevel, "dispatcher")
    url = resolve_redis_url(settings)
    store = Store.from_url(url, settings)
    publisher = CeleryPublisher(make_celery(settings, url), store)
    loop = Dispatcher(store, build_strategy(settings.strategy, settings), publisher)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log = logging.getLogger("yardmaster.dispatcher")
    log.info("dispatcher starting: strategy %s, Redis %s", settings.strategy, redact_url(url))
    try:
        warning = store.eviction_warning()
    except StoreError:
        warning = None  # not reachable yet: the loop waits for it and says so
    if warning:
        log.warning(warning)
    loop.run(stop)
