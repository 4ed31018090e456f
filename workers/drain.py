"""Graceful shutdown of ``yardmaster worker``: drain, then hand back the rest.

On SIGTERM Celery starts a warm shutdown: it stops consuming and waits for
the running tasks, however long they take. yardmaster bounds that wait. When
the shutdown begins, the worker's slot count drops to 0 in Redis, so neither
the dispatcher nor a finishing worker's hand-off gives it another task. If
tasks still run after ``YM_DRAIN_TIMEOUT`` seconds, the worker escalates to
Celery's cold shutdown (SIGQUIT to itself), which stops them; the
``worker_shutdown`` hook then deregisters the worker and its unfinished tasks
return to pending, to run again elsewhere (the next attempt).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from celery import Celery

from broker_config.celery_app import app_settings
from workers.hooks import store_for, worker_info

log = logging.getLogger("yardmaster.worker")


def on_shutting_down(sig: str = "", how: str = "", exitcode: int = 0, **_: Any) -> None:
    """Celery's ``worker_shutting_down`` (main process): close the slots, arm the drain timer."""
    info = worker_info()
    app: Celery | None = info.get("app")
    if app is None or how != "Warm" or info.get("draining"):
        return
    info["draining"] = True
    name = str(info["name"])
    try:
        store_for(app).workers.close(name)
    except Exception:
        log.exception("could not close the slots of %s; the dispatcher may still send work", name)
    timeout = app_settings(app).drain_timeout
    log.info("worker %s draining (%s): no new work; running tasks get %gs", name, sig, timeout)
    timer = threading.Timer(timeout, _cut_short, args=(app, name, timeout))
    timer.daemon = True
    timer.start()


def _cut_short(app: Celery, name: str, timeout: float) -> None:
    """Hand the unfinished tasks back first, then stop them.

    Deregistering before the pool is stopped makes the interrupted runs'
    reports stale (their attempt is no longer this worker's), so a body
    stopped by the shutdown is handed back, not recorded as a failure.
    """
    stop = worker_info().get("stop")
    if isinstance(stop, threading.Event):
        stop.set()  # no heartbeat may register the worker again
    try:
        returned = store_for(app).workers.deregister(name)
    except Exception:
        log.exception("could not hand back the tasks of %s; they return when it is reaped", name)
        returned = -1
    log.warning(
        "worker %s: tasks still running after the %gs drain; %d handed back, stopping them",
        name,
        timeout,
        returned,
    )
    os.kill(os.getpid(), signal.SIGQUIT)  # Celery's cold shutdown
