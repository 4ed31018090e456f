"""A worker's logs in ``YM_LOG_FORMAT``, every line about a task with its fields.

Celery sets the worker's handlers up; :func:`install` connects receivers that
give them :mod:`scheduler.logs`' formatter and filter (main process; the pool
processes fork with them). In a pool process each run is a task context from
``task_prerun`` to ``task_postrun`` (so the body's own lines and Celery's
``succeeded``/``raised`` lines carry the task id, attempt and worker); at DEBUG
a ``started`` (or ``skipped``) line follows the hooks' start and a ``finished``
line their finish report, and the main process logs ``received`` with the
attempt from the message (Celery's own INFO ``received`` line gets the id and
the worker).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery, signals

from broker_config.celery_app import app_settings
from scheduler.logs import adopt, enter_task, leave_task, task_fields
from workers import hooks

log = logging.getLogger("yardmaster.worker")

_defaults: dict[str, Any] = {}  # the worker's name, once known (main-process lines)
_skipped: set[tuple[str, int]] = set()
_connected: list[Celery] = []


def install_first(app: Celery) -> None:
    """Connect what must run before the hooks (idempotent per process)."""
    _connected.append(app)
    if len(_connected) > 1:
        return
    signals.after_setup_logger.connect(_setup, weak=False)
    signals.after_setup_task_logger.connect(_setup, weak=False)
    signals.celeryd_after_setup.connect(_named, weak=False)
    signals.task_received.connect(_received, weak=False)
    signals.task_prerun.connect(_enter, weak=False)


def install_last(app: Celery) -> None:
    """Connect what must run after the hooks (idempotent per process)."""
    if _connected and _connected[0] is not app:
        return
    signals.task_prerun.connect(_started, weak=False)
    signals.task_postrun.connect(_finished, weak=False)


def _format() -> str:
    for app in _connected:
        try:
            return app_settings(app).log_format
        except LookupError:
            continue
    return "text"


def _setup(logger: logging.Logger, **_: Any) -> None:
    adopt(logger, _format(), "worker", _defaults)


def _named(sender: str, **_: Any) -> None:
    _defaults["worker"] = sender


def _attempt(request: Any) -> int | None:
    attempt = getattr(request, "ym_attempt", None)
    if attempt is None:
        attempt = (getattr(request, "_request_dict", None) or {}).get("ym_attempt")
    return None if attempt is None else int(attempt)


def _received(request: Any = None, **_: Any) -> None:
    if request is None or not log.isEnabledFor(logging.DEBUG):
        return
    fields = task_fields(
        str(request.id), _attempt(request), str(request.hostname), event="received"
    )
    log.debug("task %s (%s) received", request.id, request.name, extra=fields)


def _enter(task_id: str, task: Any, **_: Any) -> None:
    enter_task(task_id=task_id, attempt=_attempt(task.request), worker=str(task.request.hostname))


def _started(task_id: str, task: Any, **_: Any) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    if hooks.is_skipped(task_id):
        _skipped.add((task_id, threading.get_ident()))
        log.debug(
            "task %s: this delivery does not run its body", task_id, extra={"event": "skipped"}
        )
        return
    log.debug("task %s (%s) started", task_id, task.name, extra={"event": "started"})


def _finished(task_id: str, task: Any, state: str | None = None, **_: Any) -> None:
    try:
        if (task_id, threading.get_ident()) in _skipped:
            _skipped.discard((task_id, threading.get_ident()))
        else:
            shown = (state or "interrupted").lower()
            log.debug(
                "task %s (%s) finished: %s", task_id, task.name, shown, extra={"event": "finished"}
            )
    finally:
        leave_task()
