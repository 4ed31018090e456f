"""The base class of yardmaster tasks: a ``schedule()`` method and a body guard."""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery, Task, signature
from celery.exceptions import Ignore, Retry

from broker_config.celery_app import app_settings
from scheduler.client import Client, TaskHandle
from scheduler.errors import InvalidInputError, TaskCancelRequestedError, YardmasterError
from scheduler.store import Store
from scheduler.store.outbox import Outbox
from workers import hooks, progress
from workers.publishing import PLACEMENT, shown_tasks

_CLIENTS: dict[int, Client] = {}


def client_for(app: Celery) -> Client:
    """The (cached) yardmaster client of a Celery app made by ``make_celery``."""
    client = _CLIENTS.get(id(app))
    if client is None:
        store = Store.from_url(str(app.conf.broker_url), app_settings(app))
        names = shown_tasks(app.tasks)
        client = _CLIENTS[id(app)] = Client(store, known_tasks=names)
    return client


class YardmasterTask(Task[Any, Any]):
    """A Celery task that yardmaster schedules.

    ``my_task.schedule(args, kwargs, priority=9)`` submits it to the
    scheduler instead of publishing it to a queue, and the body refuses to
    run for a delivery the scheduler did not expect (a stale or repeated one).

    Task options (``@app.task(cache_ttl=60, cache_version="2")``) set the
    defaults of the same-named ``schedule()`` options: ``cache_ttl``,
    ``cache_version`` and ``coalesce``.

    ``self.retry()`` (and Celery's ``autoretry_for``) send the task back to
    yardmaster's pending tasks after a backoff instead of publishing a new
    message; ``ym_retry`` (a :class:`~scheduler.retry.RetryPolicy` or a mapping)
    is the task's own retry policy; ``self.check_cancelled()`` lets a long body
    stop when a cancel was asked for; ``self.progress(done, total, note)``
    reports how far a run is.

    ``self.effects`` is the run's :class:`~scheduler.store.outbox.Outbox`:
    Redis writes recorded there are committed with the body's success, once
    per task even when the body runs again after a SIGKILL
    (docs/reliability.md, "Effects committed with the outcome").

    ``on_orphan`` (``@app.task(on_orphan="fail")``) says what happens when the
    worker running the body is lost (killed, cut off, stopped at the end of its
    drain): ``requeue`` (the default) runs it again as the next attempt;
    ``fail`` ends it as failed, for a body that must not run twice.
    """

    Request = "workers.request:YardmasterRequest"
    on_orphan: str = "requeue"
    cache_ttl: float | None = None
    cache_version: str | None = None
    coalesce: bool = False

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        # The guard sits here, not in __call__: Celery's tracer calls ``run``
        # directly unless a task class overrides __call__.
        if hooks.is_skipped(task_id):
            raise Ignore()

    @property
    def effects(self) -> Outbox:
        """The outbox of this run: Redis writes committed with the body's success.

        Raises:
            OutboxUnavailableError: The body does not run in a yardmaster worker
                (called directly, eagerly, or in another thread than its own).
        """
        return hooks.outbox_of(self.request.id, self.name)

    def schedule(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> TaskHandle:
        """Submit this task to yardmaster; ``options`` are those of :meth:`Client.submit`,
        its decorator's cache and placement options (``@app.task(labels=..., queue=...)``)
        their defaults."""
        for option in ("cache_ttl", "cache_version", "coalesce", *PLACEMENT, "queue"):
            default = getattr(self, option, None)
            if default not in (None, False):
                options.setdefault(option, default)
        return client_for(self.app).submit(self.name, args, kwargs, **options)

    def retry(
        self,
        args: Any = None,
        kwargs: Any = None,
        exc: Exception | None = None,
        throw: bool = True,
        eta: Any = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Retry:
        """Retry this run through yardmaster: the task returns to pending after
        ``countdown`` seconds (or until ``eta``; the retry policy's backoff when
        neither is given) and goes through the strategy again.

        ``max_retries`` (else the task's ``max_retries``) bounds the retries:
        past it, ``exc`` (or ``MaxRetriesExceededError``) is raised instead.

        ``args`` / ``kwargs``, as in Celery, are the next run's arguments (None: this
        run's, merged as Celery merges them, see :func:`retry_call`): the record takes
        them in the same step that schedules the retry.

        Raises:
            InvalidInputError: ``args`` is not a list (or tuple), ``kwargs`` not an object
                keyed by strings, or either is not JSON.
        """
        attempt = getattr(self.request, "ym_attempt", None)
        if attempt is None or self.request.called_directly:
            return super().retry(args, kwargs, exc, throw, eta, countdown, max_retries, **options)
        args, kwargs = retry_call(self.run, self.request.args, self.request.kwargs, args, kwargs)
        new_args = "" if args is None else _retry_json("args", args, (list, tuple))
        new_kwargs = "" if kwargs is None else _retry_json("kwargs", kwargs, (dict,))
        limit = self.max_retries if max_retries is None else max_retries
        if limit is not None and int(attempt) > limit:
            if exc is not None:
                raise exc
            raise self.MaxRetriesExceededError(
                f"can't retry {self.name}[{self.request.id}]: max retries ({limit}) exceeded"
            )
        when = countdown if countdown is not None else eta
        hooks.note_retry(
            self.request.id, when if when is not None else "policy", new_args, new_kwargs
        )
        ret = Retry(exc=exc, when=when)  # type: ignore[arg-type]
        if throw:
            raise ret
        return ret

    def replace(self, sig: Any) -> Any:
        """Replace this run by ``sig`` (a task or any canvas), as Celery's ``self.replace``.

        The replacement is submitted (a chain as one batch), then one Lua step
        (``replace.lua``) hands whatever waits on this task (a chain's next step, a
        chord's body counting it, ``link`` and ``link_error`` callbacks) to the
        replacement (a chain's last task; a group, a chord or a chain ending in one is
        followed by Celery's ``celery.accumulate``, as Celery does, whose result is the
        group's list or the chord's output) and notes ``replaced_by`` on this record, so
        ``AsyncResult(this id).get()`` gets the replacement's result. Celery instead
        gives the replacement this task's id; on yardmaster an id names one record, so
        the replacement has its own and the result backend follows the note. This run
        then ends, as in Celery, by raising ``Ignore`` (its record: succeeded, result
        null).

        Raises:
            Ignore: Always, once replaced (Celery's way to end the run).
            YardmasterError: This task is no longer running (cancelled meanwhile); the
                replacement was submitted and runs on its own.
        """
        if self.request.called_directly or getattr(self.request, "ym_attempt", None) is None:
            return super().replace(sig)  # not a yardmaster run: Celery's own
        sig = signature(sig, app=self.app)
        last = sig.tasks[-1] if sig.subtask_type == "chain" and sig.tasks else None
        if sig.subtask_type in ("group", "chord") or (
            last is not None and signature(last, app=self.app).subtask_type in ("group", "chord")
        ):
            # as Celery: one task gathers the group's list (celery.accumulate), so that
            # what waited on this task waits on one id, whose result is that list
            sig = sig | self.app.tasks["celery.accumulate"].s(index=0)
        task_id = str(self.request.id)
        new = str(sig.apply_async().id)  # a chain's: its last task's
        reply = hooks.store_for(self.app).workflows.replace(task_id, new)
        if reply[0] != "ok":
            raise YardmasterError(
                f"task {task_id} could not be replaced by {new}: {' '.join(reply)}"
            )
        raise Ignore(f"replaced by {new}")

    def progress(self, done: float, total: float | None = None, note: str = "") -> bool:
        """Report how far this run is: ``done`` of ``total`` units, with a ``note``.

        Written to the task's record (seen by ``yardmaster status ID``, the HTTP
        API, ``TaskHandle.progress()`` and the dashboard) at most once per
        ``YM_PROGRESS_INTERVAL``; a report inside the interval is kept and written
        by a later one or when the run ends. Returns whether it was written now
        (always False outside a yardmaster worker, e.g. when called directly).

        Raises:
            InvalidInputError: ``done`` is not a number >= 0, ``total`` not None or a
                number > 0, or ``note`` not a string.
        """
        return progress.report(self, done, total, note)

    def after_return(
        self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        progress.finish(self)  # the last report kept back by the interval
        super().after_return(status, retval, task_id, args, kwargs, einfo)

    def cancel_requested(self) -> bool:
        """Whether a cancel was asked for while this run goes on (``TaskHandle.cancel()``)."""
        return hooks.store_for(self.app).tasks.cancel_requested(str(self.request.id))

    def check_cancelled(self) -> None:
        """Stop here if a cancel was asked for: the run then ends as ``cancelled``.

        Raises:
            TaskCancelRequestedError: When a cancel was asked for.
        """
        if self.cancel_requested():
            raise TaskCancelRequestedError(str(self.request.id))


def retry_call(run: Any, old_args: Any, old_kwargs: Any, args: Any, kwargs: Any) -> tuple[Any, Any]:
    """The next run's ``(args, kwargs)`` for ``self.retry(args=..., kwargs=...)``, merged
    with this run's as Celery 5.7's ``Task.retry`` merges them (None: unchanged): new
    ``args`` alone drop this run's keyword arguments they now fill by position; new
    ``kwargs`` alone take over this run's positional arguments of the same name."""
    if not (
        (args is not None and kwargs is None and old_kwargs)
        or (kwargs is not None and args is None and old_args)
    ):
        return args, kwargs
    try:
        sig = inspect.signature(run)
    except (TypeError, ValueError):
        return args, kwargs
    by_either = inspect.Parameter.POSITIONAL_OR_KEYWORD
    if args is not None:
        positional = [
            p
            for p in sig.parameters.values()
            if p.kind in (inspect.Parameter.POSITIONAL_ONLY, by_either)
        ]
        kept = dict(old_kwargs)
        for p in positional[: len(args)]:
            if p.kind == by_either:
                kept.pop(p.name, None)
        return args, kept
    try:
        bound = sig.bind_partial(*old_args)
    except TypeError:
        return args, kwargs
    given = dict(kwargs or {})
    for name in list(given):
        if name in bound.arguments and sig.parameters[name].kind == by_either:
            bound.arguments[name] = given.pop(name)
    return bound.args, {**bound.kwargs, **given}


def _retry_json(field: str, value: Any, kinds: tuple[type, ...]) -> str:
    """``self.retry``'s new ``args`` or ``kwargs`` as strict JSON text.

    Raises:
        InvalidInputError: Not of ``kinds``, keys that are not strings, or not JSON.
    """
    allowed = "a list" if field == "args" else "an object keyed by strings"
    if not isinstance(value, kinds) or (
        isinstance(value, dict) and not all(isinstance(k, str) for k in value)
    ):
        raise InvalidInputError(f"retry({field})", value, allowed)
    try:
        return json.dumps(list(value) if isinstance(value, tuple) else value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"retry({field})", value, f"{allowed} of JSON values") from exc
