"""What a worker reports when a run ends: success, failure, a retry, a timeout, a cancel.

:func:`decide` turns a run's Celery state and return value into the outcome
``finish.lua`` records; the retry policy comes from the submission (the
``ym_retry`` header), else the task's ``ym_retry`` option, else ``YM_RETRY_*``.
The main process also reports what its pool processes cannot
(:func:`report_from_main`): a hard time limit (see :mod:`workers.request`) and
a run killed by a terminate request (:mod:`workers.control` receives the
request and revokes the run through Celery's own remote control).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from celery.exceptions import Reject, Retry, SoftTimeLimitExceeded

from scheduler.errors import InvalidInputError, StoreError, TaskCancelRequestedError
from scheduler.retry import RetryPolicy, parse_retry
from scheduler.settings import Settings
from scheduler.store import FinishReport, Store, Verdict

log = logging.getLogger("yardmaster.worker")


def policy_for(task: Any, settings: Settings) -> RetryPolicy:
    """The retry policy of the current run of ``task``.

    Raises:
        InvalidInputError: The task's ``ym_retry`` option is not a valid policy.
    """
    header = getattr(task.request, "ym_retry", None)
    if header:
        return RetryPolicy.model_validate(header)
    option = getattr(task, "ym_retry", None)
    if option is not None:
        return parse_retry(option, field=f"{task.name}.ym_retry")
    return settings.retry_policy()


def decide(
    task: Any, attempt: int, state: str | None, retval: Any, retry_when: Any, settings: Settings
) -> Verdict:
    """The outcome of one run that executed its body."""
    if retry_when is not None or isinstance(retval, Retry):
        exc = retval.exc if isinstance(retval, Retry) else None
        when = retval.when if isinstance(retval, Retry) and retry_when is None else retry_when
        seconds = _seconds(when)
        if seconds is None:
            seconds = _policy_or_default(task, settings).delay(attempt)
        error = _describe(exc) if isinstance(exc, BaseException) else "retry requested"
        return Verdict("retry", error=error, reason="retry", delay=seconds)
    if state in ("SUCCESS", "IGNORED"):
        try:
            return Verdict("succeeded", json.dumps(None if state == "IGNORED" else retval))
        except (TypeError, ValueError) as exc:
            return Verdict("failed", error=f"the result is not JSON: {exc}", reason="error")
    if isinstance(retval, Reject) and not getattr(retval, "requeue", False):  # untyped in stubs
        # Celery's Reject(requeue=False): the message is given up on, never retried
        return Verdict("failed", error=_describe(retval), reason="error")
    if isinstance(retval, TaskCancelRequestedError):
        return Verdict("cancelled", error=str(retval), reason="cancelled")
    if isinstance(retval, BaseException):
        error = _describe(retval)
        reason = "timeout" if isinstance(retval, SoftTimeLimitExceeded) else "error"
        try:
            policy = policy_for(task, settings)
        except InvalidInputError as exc:
            return Verdict("failed", error=f"{error} (and no retry: {exc})", reason=reason)
        if attempt < policy.max_attempts and policy.retries(retval):
            return Verdict("retry", error=error, reason="retry", delay=policy.delay(attempt))
        return Verdict("failed", error=error, reason=reason)
    return Verdict("failed", error=f"ended in Celery state {state}", reason="error")


def interrupted(store: Store, task_id: str) -> Verdict:
    """The outcome of a run whose pool process exits before the body returned.

    A terminate request kills the run with a signal, which Celery turns into an
    exit inside the body; that run is cancelled (the main process reports the
    same). Any other exit is a failure.
    """
    try:
        asked = store.tasks.cancel_requested(task_id)
    except StoreError:
        asked = False
    if asked:
        return Verdict(
            "cancelled",
            error="cancelled by request: the worker terminated the run",
            reason="terminated",
        )
    return Verdict("failed", error="the run was interrupted: its process exited", reason="error")


def report_from_main(
    store: Store,
    task_id: str,
    attempt: Any,
    worker: str,
    outcome: str,
    *,
    error: str,
    reason: str,
) -> str:
    """Record the outcome of a run the pool process could not report (killed)."""
    if attempt is None:
        return "not ours"
    verdict = Verdict(outcome, error=error, reason=reason)
    try:
        reply = store.deliveries.finish(worker, FinishReport(task_id, int(attempt), verdict))
        store.guards.drop(task_id, int(attempt))  # the body's process is gone, and its guard
    except StoreError:
        log.exception("could not record that %s ended (%s)", task_id, reason)
        return "error"
    log.warning(
        "task %s attempt %s: %s (%s), reported by the worker", task_id, attempt, outcome, reason
    )
    return reply


def _policy_or_default(task: Any, settings: Settings) -> RetryPolicy:
    try:
        return policy_for(task, settings)
    except InvalidInputError:
        return settings.retry_policy()


def _seconds(when: Any) -> float | None:
    if when is None:
        return None
    if isinstance(when, int | float):
        return max(0.0, float(when))
    if isinstance(when, datetime):
        aware = when if when.tzinfo else when.replace(tzinfo=UTC)
        return max(0.0, (aware - datetime.now(UTC)).total_seconds())
    return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
