"""Built-in demo tasks: ``noop``, ``sleep`` (with warm affinity), ``spin`` and ``fail``;
for retries, timeouts and cancellation, ``flaky``, ``flaky_celery_retry``,
``marked_sleep`` and ``cooperative_sleep``; for the reliability tests, ``ledger`` and
``ledger_once``; for result passing in workflows, ``echo``.

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
from celery.exceptions import SoftTimeLimitExceeded

from broker_config.celery_app import app_settings
from workers.hooks import affinity_key_of, retrying, store_for
from workers.yardmaster_task import YardmasterTask


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
        warm = store_for(self.app).workers.touch_warm(str(self.request.hostname), affinity_key)
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


# -- demo tasks for retries, timeouts and cancellation ----------------------------
def _demo_note(task: YardmasterTask, key: str, what: str) -> None:
    """Append ``what@<Redis time>`` to the demo list ``key`` (the tests' timeline)."""
    store_for(task.app).demo.note(key, what)


@shared_task(name="flaky", base=YardmasterTask, bind=True)
def flaky(
    self: YardmasterTask, key: str, failures: int, error: str = "DemoError", seconds: float = 0.0
) -> int:
    """Fail the first ``failures`` runs for ``key`` (raising ``error``: DemoError,
    OSError or ValueError), then succeed; returns the run number. Each run first
    sleeps ``seconds`` (a call to a slow dependency, in ``yardmaster demo``)."""
    _demo_note(self, key, "start")
    run = store_for(self.app).demo.count_run(key)
    time.sleep(seconds)
    if run <= failures:
        kinds: dict[str, type[Exception]] = {
            "DemoError": DemoError,
            "OSError": OSError,
            "ValueError": ValueError,
        }
        raise kinds[error](f"{key}: run {run} of {failures} planned failures")
    return run


@shared_task(name="flaky_celery_retry", base=YardmasterTask, bind=True, max_retries=5)
def flaky_celery_retry(self: YardmasterTask, key: str, failures: int, countdown: float) -> int:
    """Like ``flaky``, but asks for its retries the Celery way: ``self.retry(countdown=...)``."""
    _demo_note(self, key, "start")
    run = store_for(self.app).demo.count_run(key)
    if run <= failures:
        raise self.retry(exc=DemoError(f"{key}: run {run}"), countdown=countdown)
    return run


@shared_task(name="echo", base=YardmasterTask)
def echo(*args: Any) -> list[Any]:
    """Return the arguments it was given (shows what result passing hands a child)."""
    return list(args)


@shared_task(name="marked_sleep", base=YardmasterTask, bind=True)
def marked_sleep(self: YardmasterTask, key: str, seconds: float) -> float:
    """Sleep, noting ``start`` and ``end`` (or ``soft_timeout`` when the soft time
    limit interrupts it) in the demo list ``key``."""
    _demo_note(self, key, "start")
    try:
        time.sleep(seconds)
    except SoftTimeLimitExceeded:
        _demo_note(self, key, "soft_timeout")
        raise
    _demo_note(self, key, "end")
    return seconds


@shared_task(name="cooperative_sleep", base=YardmasterTask, bind=True)
def cooperative_sleep(self: YardmasterTask, key: str, seconds: float) -> float:
    """Sleep in short steps, stopping when a cancel is asked for (``check_cancelled``)."""
    _demo_note(self, key, "start")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        self.check_cancelled()
        time.sleep(0.05)
    _demo_note(self, key, "end")
    return seconds


# -- audit tasks for the reliability tests -----------------------------------------
@shared_task(name="stepped", base=YardmasterTask, bind=True)
def stepped(self: YardmasterTask, key: str, steps: int, seconds: float = 0.0) -> int:
    """Run ``steps`` steps, reporting progress after each (``self.progress``) and noting
    ``reported <i>`` in the demo list ``key``. With ``seconds`` each step sleeps that
    long; without, step ``i`` waits until ``i`` runs of ``key`` were counted (a test
    moves it on step by step with ``DemoRecords.count_run``)."""
    demo = store_for(self.app).demo
    for step in range(1, steps + 1):
        if seconds:
            time.sleep(seconds)
        else:
            while demo.runs(key) < step:
                time.sleep(0.01)
        self.progress(step, steps, note=f"step {step} of {steps}")
        _demo_note(self, key, f"reported {step}")
    return steps


@shared_task(name="ledger", base=YardmasterTask, bind=True)
def ledger(self: YardmasterTask, name: str, seconds: float = 0.0) -> None:
    """Sleep ``seconds``, then append ``<task id>:<attempt>:<worker>:<pid>`` to ledger ``name``.

    Twice: at once, to the list of body runs (an audit trail: the reliability
    tests read it to prove that no delivery ran a body twice), and through the
    outbox to the committed list, which holds one entry per task even when a
    body ran again after a SIGKILL.
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
    retrying(
        lambda: store.demo.append_ledger(name, entry, nonce), app_settings(task.app).redis_retry
    )
    task.effects.rpush(store.demo.ledger_key(name, committed=True), entry)
