"""Celery signal hooks that report to yardmaster's state store.

Connected once per process by :func:`install`. The worker's main process
registers the worker with its slots, keeps a heartbeat and deregisters on
shutdown; pool processes report each delivery's start and finish, which
frees the slot, updates the duration EMA and affinity score, and wakes the
dispatcher.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from celery import Celery, signals
from celery.exceptions import Retry
from kombu import Queue
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from broker_config.celery_app import app_settings
from scheduler.keys import Keys
from scheduler.store import ReportLine, StateStore, connect
from scheduler.store.guard import Finished, Guard

log = logging.getLogger("yardmaster.worker")
T = TypeVar("T")


@dataclass(slots=True)
class _Delivery:
    attempt: int
    run: bool
    started: float
    duration_key: str
    affinity_key: str
    guard: Guard | None = None
    finished: Finished | None = None  # the body already ran: report this instead


_stores: dict[tuple[int, int], StateStore] = {}
_lines: dict[tuple[int, int, str], ReportLine] = {}
_deliveries: dict[str, _Delivery] = {}
_worker: dict[str, Any] = {}
_installed: set[int] = set()
_exit_loaded: set[Celery] = set()


def store_for(app: Celery) -> StateStore:
    """This process's store for ``app`` (made anew after a fork)."""
    key = (os.getpid(), id(app))
    store = _stores.get(key)
    if store is None:
        store = _stores[key] = StateStore(connect(str(app.conf.broker_url)), app_settings(app))
    return store


def line_for(app: Celery, worker: str) -> ReportLine:
    """This process's report line for ``worker`` (made anew after a fork)."""
    key = (os.getpid(), id(app), worker)
    line = _lines.get(key)
    if line is None:
        line = _lines[key] = ReportLine(store_for(app), worker)
    return line


def close_lines() -> None:
    """Confirm this process's outstanding reports and drop its report lines."""
    pid = os.getpid()
    for key in [k for k in _lines if k[0] == pid]:
        _lines.pop(key).close()


def is_skipped(task_id: str | None) -> bool:
    """Whether the current delivery of ``task_id`` must not run its body."""
    delivery = _deliveries.get(task_id or "")
    return delivery is not None and not delivery.run


def affinity_key_of(task_id: str | None) -> str:
    """The affinity key the current delivery of ``task_id`` was submitted with ('' if none)."""
    delivery = _deliveries.get(task_id or "")
    return delivery.affinity_key if delivery is not None else ""


def install(app: Celery) -> None:
    """Connect the hooks for ``app`` (idempotent)."""
    if id(app) in _installed:
        return
    _installed.add(id(app))
    signals.celeryd_after_setup.connect(_after_setup, weak=False)
    signals.worker_ready.connect(_ready, weak=False)
    signals.worker_shutdown.connect(_shutdown, weak=False)
    signals.task_prerun.connect(_prerun, weak=False)
    signals.task_postrun.connect(_postrun, weak=False)
    signals.worker_process_shutdown.connect(_process_shutdown, weak=False)


def _ours(app: Celery) -> bool:
    return id(app) in _installed


def _after_setup(sender: str, instance: Any, **_: Any) -> None:
    app: Celery = instance.app
    if not _ours(app):
        return
    queue = Keys(app_settings(app).namespace).worker_queue(sender)
    queues = app.amqp.queues
    queues.select_add(Queue(queue, routing_key=queue))
    default = app.conf.task_default_queue
    if default in queues.consume_from and default != queue:
        queues.deselect(default)
    _worker.update(name=sender, slots=int(instance.concurrency), app=app, queue=queue)


def _ready(sender: Any, **_: Any) -> None:
    app = _worker.get("app")
    if app is None:
        return
    store = store_for(app)
    names = sorted(n for n in app.tasks if not n.startswith("celery."))
    store.register_worker(
        _worker["name"], _worker["slots"], socket.gethostname(), os.getpid(), names
    )
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(store, stop, names), daemon=True)
    _worker.update(stop=stop, beat=beat)
    beat.start()
    log.info(
        "worker %s registered with %d slots on %s",
        _worker["name"],
        _worker["slots"],
        _worker["queue"],
    )


def _heartbeat(store: StateStore, stop: threading.Event, names: list[str]) -> None:
    name, slots = _worker["name"], _worker["slots"]
    while not stop.wait(store.settings.heartbeat_interval):
        try:
            if not store.heartbeat(name):
                log.warning("worker %s was declared dead; registering again", name)
                store.register_worker(name, slots, socket.gethostname(), os.getpid(), names)
        except Exception:
            log.exception("heartbeat of %s failed; retrying", name)


def _shutdown(sender: Any, **_: Any) -> None:
    app = _worker.get("app")
    if app is None or "stop" not in _worker:
        return
    _worker["stop"].set()
    close_lines()  # the solo and threads pools report from this process
    returned = store_for(app).deregister_worker(_worker["name"])
    log.info(
        "worker %s deregistered; %d unfinished tasks back to pending", _worker["name"], returned
    )


def _process_shutdown(**_: Any) -> None:
    close_lines()


def _prerun(task_id: str, task: Any, **_: Any) -> None:
    attempt = getattr(task.request, "ym_attempt", None)
    if attempt is None or not _ours(task.app):
        return
    line = line_for(task.app, str(task.request.hostname))
    try:
        run, duration_key, affinity_key = _retrying(
            lambda: line.start(task_id, int(attempt)), app_settings(task.app).redis_retry
        )
    except RedisError:
        # Without a recorded start the body must not run; the delivery is
        # released when Redis answers again, or recovered with the worker.
        log.exception("could not record the start of %s; its body will not run", task_id)
        run, duration_key, affinity_key = False, "unrecorded", ""
    if not run:
        log.warning("skipping delivery %s of %s: the task is %s", attempt, task_id, duration_key)
    delivery = _Delivery(int(attempt), run, time.monotonic(), duration_key, affinity_key)
    if run:
        _enter_guard(task.app, task_id, delivery)
    _deliveries[task_id] = delivery


def _enter_guard(app: Celery, task_id: str, delivery: _Delivery) -> None:
    """Take the execution guard; a body that already finished is not run again."""
    guard = Guard(store_for(app), task_id, delivery.attempt)
    try:
        finished = _retrying(guard.enter, app_settings(app).redis_retry)
    except RedisError:
        log.exception("could not take the execution guard of %s; running it unguarded", task_id)
        return
    if finished is None:
        delivery.guard = guard
        if app not in _exit_loaded:  # guard_exit goes out on the report line, by EVALSHA
            guard.store.scripts.load("guard_exit")
            _exit_loaded.add(app)
        return
    log.warning(
        "delivery %s of %s: its body already finished (attempt %s, %s); not running it again",
        delivery.attempt,
        task_id,
        finished.attempt,
        finished.outcome,
    )
    delivery.run = False
    delivery.finished = finished


def _postrun(
    task_id: str, task: Any, retval: Any = None, state: str | None = None, **_: Any
) -> None:
    delivery = _deliveries.pop(task_id, None)
    if delivery is None:
        return
    runtime = time.monotonic() - delivery.started
    line = line_for(task.app, str(task.request.hostname))
    outcome, result, error = _outcome(state, retval) if delivery.run else ("skipped", "", "")
    if delivery.finished is not None:
        done = delivery.finished
        outcome, result, error = done.outcome, done.result, done.error
    elif delivery.guard is not None:
        # Goes out on the report line just before the finish, so it is recorded first.
        line.post("guard_exit", task_id, *delivery.guard.exit_call(outcome, result, error))

    line.finish(  # sent again until Redis confirms it; a repeat answers 'stale'
        task_id,
        delivery.attempt,
        outcome,
        result=result,
        error=error,
        runtime=runtime,
        duration_key=delivery.duration_key,
        affinity_key=delivery.affinity_key,
    )


def _retrying(call: Callable[[], T], window: float) -> T:
    """Run ``call``, retrying connection errors with backoff for up to ``window`` seconds."""
    deadline = time.monotonic() + window
    delay = 0.05
    while True:
        try:
            return call()
        except (RedisConnectionError, RedisTimeoutError):
            if time.monotonic() + delay > deadline:
                raise
            log.warning("Redis unreachable; retrying in %.2fs", delay)
            time.sleep(delay)
            delay = min(2.0, delay * 2)


def _outcome(state: str | None, retval: Any) -> tuple[str, str, str]:
    if state in ("SUCCESS", "IGNORED"):
        try:
            return "succeeded", json.dumps(None if state == "IGNORED" else retval), ""
        except (TypeError, ValueError) as exc:
            return "failed", "null", f"the result is not JSON: {exc}"
    if isinstance(retval, Retry):
        return (
            "failed",
            "null",
            "Celery's task.retry() is not used under yardmaster: " + str(retval),
        )
    if isinstance(retval, BaseException):
        return "failed", "null", f"{type(retval).__name__}: {retval}"
    return "failed", "null", f"ended in Celery state {state}"
