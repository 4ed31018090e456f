"""Built-in demo tasks: noop, sleep (with warm affinity), spin, fail, ledger and ledger_once.

``sleep`` models DESIGN.md's warm affinity: when the task's affinity key is
among the worker's most recently used keys, it takes ``seconds * warm_factor``.
The simulator models the same rule, so predictions and real runs compare.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from celery import shared_task

from broker_config.celery_app import app_settings
from workers.hooks import affinity_key_of, retrying, store_for
from workers.task import YardmasterTask


class DemoError(Exception):
    """Raised on purpose by the ``fail`` task (and by ``sleep`` with ``fails``)."""


@shared_task(name="noop", base=YardmasterTask)
def noop() -> None:
    """Do nothing: measures scheduling overhead."""


@shared_task(name="sleep", base=YardmasterTask, bind=True)
def sleep(
    self: YardmasterTask,
    seconds: float,
    affinity_key: str | None = None,
    warm_factor: float | None = None,
    fails: bool = False,
) -> dict[str, Any]:
    """Sleep ``seconds`` (less when the affinity key is warm here); optionally fail after.

    The affinity key is the one the task was submitted with, unless given here.
    """
    warm = False
    affinity_key = affinity_key or affinity_key_of(self.request.id)
    if affinity_key:
        warm = store_for(self.app).touch_warm(str(self.request.hostname), affinity_key)
    factor = app_settings(self.app).warm_factor if warm_factor is None else warm_factor
    slept = seconds * factor if warm else seconds
    time.sleep(slept)
    if fails:
        raise DemoError(f"sleep({seconds}) was asked to fail")
    return {"slept": slept, "warm": warm}


@shared_task(name="spin", base=YardmasterTask)
def spin(seconds: float) -> int:
    """Keep a CPU busy for ``seconds``; returns the loop count."""
    end = time.perf_counter() + seconds
    loops = 0
    while time.perf_counter() < end:
        loops += 1
    return loops


@shared_task(name="fail", base=YardmasterTask)
def fail(message: str = "asked to fail") -> None:
    """Always raise :class:`DemoError`."""
    raise DemoError(message)


@shared_task(name="ledger", base=YardmasterTask, bind=True)
def ledger(self: YardmasterTask, name: str, seconds: float = 0.0) -> None:
    """Sleep ``seconds``, then append ``<task id>:<attempt>:<worker>:<pid>`` to ledger ``name``.

    An audit trail of completed bodies: the reliability tests read it to prove
    that no delivery ran a body twice.
    """
    _record(self, name, seconds)


@shared_task(name="ledger_once", base=YardmasterTask, bind=True, on_orphan="fail")
def ledger_once(self: YardmasterTask, name: str, seconds: float = 0.0) -> None:
    """``ledger`` for a body that must not run twice: lost with its worker, it fails."""
    _record(self, name, seconds)


def _record(task: YardmasterTask, name: str, seconds: float) -> None:
    time.sleep(seconds)
    attempt = getattr(task.request, "ym_attempt", 0)
    entry = f"{task.request.id}:{attempt}:{task.request.hostname}:{os.getpid()}"
    nonce = uuid.uuid4().hex  # one per run: a resent append is not a second run
    store = store_for(task.app)
    retrying(lambda: store.append_ledger(name, entry, nonce), app_settings(task.app).redis_retry)
