"""Notes a failed run's exception on its record, for Celery's ``AsyncResult``.

The record's ``error`` is text (``Type: message``). Celery re-raises a task's
original exception from its type's name and module and its arguments, so the
pool process writes those, with the traceback, beside it when a run raises
(Celery's ``task_failure`` signal, sent before the run's outcome is reported).
It costs a round trip per failed run only.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from celery import Celery, signals

from scheduler.errors import StoreError
from workers import hooks

log = logging.getLogger("yardmaster.worker")


def install(app: Celery) -> None:
    """Connect the note to ``app``'s failures (once per process)."""
    signals.task_failure.connect(_failed, weak=False, dispatch_uid="yardmaster-failure-note")


def exception_note(exc: BaseException) -> str:
    """Celery's JSON form of an exception: type name, module, arguments."""
    cls = type(exc)
    try:
        message: Any = json.loads(json.dumps(list(exc.args)))
    except (TypeError, ValueError):
        message = [str(exc)]
    note = {"exc_type": cls.__qualname__, "exc_module": cls.__module__, "exc_message": message}
    return json.dumps(note)


def _failed(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    einfo: Any = None,
    **_: Any,
) -> None:
    if sender is None or task_id is None or exception is None:
        return
    if getattr(sender.request, "ym_attempt", None) is None:
        return  # not a yardmaster delivery
    try:
        hooks.store_for(sender.app).tasks.note_failure(
            str(task_id), exception_note(exception), str(einfo or "")
        )
    except StoreError:
        log.exception("could not note the exception of %s", task_id)
