"""Celery signal hooks that report to yardmaster's state store.

(Over 400 lines: one delivery's worker side still spans this module; issue #15's
Delivery object is the split that will shorten it.)

Connected once per process by :func:`install`. The worker's main process
registers the worker with its slots, keeps a heartbeat and deregisters on
shutdown; pool processes report each delivery's start and finish, which
frees the slot, updates the duration EMA and affinity score, and wakes the
dispatcher.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from celery import Celery, signals
from celery.exceptions import Reject
from kombu import Queue

from broker_config.celery_app import app_settings
from scheduler import placement, tracing
from scheduler.errors import (
    InvalidInputError,
    OutboxUnavailableError,
    RedisUnavailableError,
    StoreError,
)
from scheduler.keys import Keys
from scheduler.settings import Settings
from scheduler.store import FinishReport, ReportLine, Store, Verdict
from scheduler.store.guard import RENEWER, Finished, Guard
from scheduler.store.outbox import Outbox
from scheduler.store.reports import EarlyStart
from workers import control, outcome
from workers.publishing import shown_tasks

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
    retry_when: Any = None
    retry_args: str = ""  # self.retry(args=...): the next run's arguments (JSON); '' = same
    retry_kwargs: str = ""
    early: EarlyStart | None = None  # a start sent without waiting, not yet read
    held: str = ""  # the nonce of a start held back to go out with the outcome
    line: ReportLine | None = None
    retry_window: float = 0.0
    effects: Outbox | None = None  # made on the body's first ``self.effects``


_stores: dict[tuple[int, int], Store] = {}
_lines: dict[tuple[int, int, str], ReportLine] = {}
# Keyed by (task id, thread): prerun, the body and postrun of one delivery run
# in one thread, and two deliveries of one task (a redelivery) may run at once
# in two threads of one process (the threads pool).
_deliveries: dict[tuple[str, int], _Delivery] = {}
_worker: dict[str, Any] = {}
_installed: set[int] = set()
_exit_loaded: set[Celery] = set()
# This process's id, kept here: os.getpid() is a system call, and the report
# hooks asked for it several times per task.
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def store_for(app: Celery) -> Store:
    """This process's store for ``app`` (made anew after a fork)."""
    key = (_pid, id(app))
    store = _stores.get(key)
    if store is None:
        store = _stores[key] = Store.from_url(str(app.conf.broker_url), app_settings(app))
    return store


def line_for(app: Celery, worker: str) -> ReportLine:
    """This process's report line for ``worker`` (made anew after a fork)."""
    key = (_pid, id(app), worker)
    line = _lines.get(key)
    if line is None:
        line = _lines[key] = ReportLine(store_for(app), worker)
    return line


def close_lines() -> None:
    """Confirm this process's outstanding reports and drop its report lines."""
    for key in [k for k in _lines if k[0] == _pid]:
        _lines.pop(key).close()


def worker_info() -> dict[str, Any]:
    """This worker's main-process state (name, slots, app, queue; empty in a pool process)."""
    return _worker


def is_skipped(task_id: str | None) -> bool:
    """Whether the current delivery of ``task_id`` must not run its body."""
    delivery = _deliveries.get((task_id or "", threading.get_ident()))
    return delivery is not None and not delivery.run


def note_retry(task_id: str | None, when: Any, args: str = "", kwargs: str = "") -> bool:
    """Mark the current run of ``task_id`` to be retried (``task.retry()``); ``when`` is a
    countdown in seconds, an ETA, or ``"policy"`` for the retry policy's backoff;
    ``args`` / ``kwargs`` the next run's arguments as JSON text ('': the same).

    Returns False when the run is not a yardmaster delivery.
    """
    delivery = _deliveries.get((task_id or "", threading.get_ident()))
    if delivery is None:
        return False
    delivery.retry_when = when
    delivery.retry_args, delivery.retry_kwargs = args, kwargs
    return True


def outbox_of(task_id: str | None, task_name: str) -> Outbox:
    """The outbox of the current run of ``task_id`` (``YardmasterTask.effects``).

    Raises:
        OutboxUnavailableError: The body does not run as a yardmaster delivery
            in this thread (called directly, eagerly, or without the hooks).
    """
    delivery = _deliveries.get((task_id or "", threading.get_ident()))
    if delivery is None or not delivery.run:
        raise OutboxUnavailableError(task_name, task_id)
    if delivery.effects is None:
        delivery.effects = Outbox()
    return delivery.effects


def affinity_key_of(task_id: str | None) -> str:
    """The affinity key the current delivery of ``task_id`` was submitted with ('' if none)."""
    delivery = _deliveries.get((task_id or "", threading.get_ident()))
    if delivery is None:
        return ""
    if delivery.early is not None:  # the key comes with the start's reply
        _take_early(task_id or "", delivery)
    return delivery.affinity_key


def install(app: Celery) -> None:
    """Connect the hooks for ``app`` (idempotent)."""
    if id(app) in _installed:
        return
    _installed.add(id(app))
    from workers import tasklog

    tasklog.install_first(app)  # the task's log context is set before the hooks log
    signals.celeryd_after_setup.connect(_after_setup, weak=False)
    signals.worker_ready.connect(_ready, weak=False)
    signals.worker_shutdown.connect(_shutdown, weak=False)
    signals.task_prerun.connect(_prerun, weak=False)
    signals.task_postrun.connect(_postrun, weak=False)
    signals.worker_process_shutdown.connect(_process_shutdown, weak=False)
    signals.task_revoked.connect(_revoked, weak=False)
    from workers.drain import on_shutting_down

    signals.worker_shutting_down.connect(on_shutting_down, weak=False)
    tasklog.install_last(app)  # "started" and "finished" lines after the hooks' reports


def _ours(app: Celery) -> bool:
    return id(app) in _installed


def _after_setup(sender: str, instance: Any, **_: Any) -> None:
    app: Celery = instance.app
    if not _ours(app):
        return
    settings = app_settings(app)
    queue = Keys(settings.namespace).worker_queue(sender)
    queues = app.amqp.queues
    # The queues it consumes are a placement offer (tasks routed to one run only on a
    # worker consuming it): YM_WORKER_QUEUES / --queues, else Celery's selection (-Q,
    # else every declared queue but the app's internal default). Messages reach it on
    # its own queue only, as for every task yardmaster dispatches, so it stops
    # consuming the others.
    internal = {queue, app.conf.task_default_queue}
    consumed = placement.queues("YM_WORKER_QUEUES", settings.worker_queues) or sorted(
        str(name) for name in queues.consume_from if name not in internal
    )
    queues.select_add(Queue(queue, routing_key=queue))
    for name in list(queues.consume_from):
        if name != queue:
            queues.deselect([name])
    _worker.update(
        name=sender,
        slots=int(instance.concurrency),
        app=app,
        queue=queue,
        queues=consumed,
    )


def _ready(sender: Any, **_: Any) -> None:
    app = _worker.get("app")
    if app is None:
        return
    store = store_for(app)
    names = shown_tasks(app.tasks)
    try:
        policies = orphan_policies(app, names)
    except InvalidInputError as exc:
        # Celery only logs what a signal handler raises: stop the worker instead.
        log.critical("worker %s cannot start: %s", _worker["name"], exc)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    warning = store.eviction_warning()
    if warning:
        log.warning(warning)
    s = store.settings
    offers: dict[str, Any] = {
        "resources": placement.resources("YM_WORKER_RESOURCES", s.worker_resources),
        "labels": placement.labels("YM_WORKER_LABELS", s.worker_labels),
        "queues": _worker["queues"],
    }
    _worker["offers"] = offers
    store.workers.register(
        _worker["name"], _worker["slots"], socket.gethostname(), os.getpid(), names, **offers
    )
    store.workers.set_orphan_policies(policies)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(store, stop, names), daemon=True)
    controller = control.Controller(app, store, _worker["name"])
    _worker.update(stop=stop, beat=beat, control=controller)
    beat.start()
    controller.start()
    log.info(
        "worker %s registered with %d slots on %s",
        _worker["name"],
        _worker["slots"],
        _worker["queue"],
    )


def orphan_policies(app: Celery, names: list[str]) -> dict[str, str]:
    """Each task's ``on_orphan`` policy (see :class:`workers.yardmaster_task.YardmasterTask`).

    Raises:
        InvalidInputError: naming the task when its policy is neither value.
    """
    out: dict[str, str] = {}
    for name in names:
        policy = getattr(app.tasks[name], "on_orphan", "requeue")
        if policy not in ("requeue", "fail"):
            raise InvalidInputError(f"{name}.on_orphan", policy, "requeue or fail")
        out[name] = policy
    return out


def _heartbeat(store: Store, stop: threading.Event, names: list[str]) -> None:
    name, slots = _worker["name"], _worker["slots"]
    while not stop.wait(store.settings.heartbeat_interval):
        try:
            if not store.workers.heartbeat(name):
                log.warning("worker %s was declared dead; registering again", name)
                again = 0 if _worker.get("draining") else slots
                store.workers.register(
                    name, again, socket.gethostname(), os.getpid(), names, **_worker["offers"]
                )
        except Exception:
            log.exception("heartbeat of %s failed; retrying", name)


def _shutdown(sender: Any, **_: Any) -> None:
    app = _worker.get("app")
    if app is None or "stop" not in _worker:
        return
    _worker["stop"].set()
    _worker["control"].close()
    close_lines()  # the solo and threads pools report from this process
    returned = store_for(app).workers.deregister(_worker["name"])
    log.info(
        "worker %s deregistered; %d unfinished tasks back to pending", _worker["name"], returned
    )


def _process_shutdown(**_: Any) -> None:
    close_lines()


def _prerun(task_id: str, task: Any, **_: Any) -> None:
    attempt = getattr(task.request, "ym_attempt", None)
    if attempt is None or not _ours(task.app):
        return
    worker = str(task.request.hostname)
    tracing.start_run(
        app_settings(task.app), task.request, task_id, task.name, int(attempt), worker
    )
    line = line_for(task.app, worker)
    guard = store_for(task.app).guards.for_delivery(task_id, int(attempt))
    # Names this delivery: a retry of the call repeats it, a redelivery does not.
    nonce = guard.lock.token
    settings = app_settings(task.app)
    if int(attempt) == 1 and _fresh(task.request, settings.early_start_limit()):
        # A fresh first delivery: the body starts while its start is recorded
        # (docs/reliability.md, "Early start"); the reply is read after the body.
        # A task that must not run again once it ran holds nothing back ("Held start").
        hold = hold_for(task, settings)
        held = hold > 0
        try:
            if held:
                early = line.start_held(task_id, 1, nonce, guard, hold)
            else:
                early = line.start_early(task_id, 1, nonce, guard)
        except StoreError:
            pass  # not sent: wait for the start below, as any other delivery does
        else:  # the line loaded guard_exit with the start's script
            RENEWER.add(guard.lock)
            task.request.retries = 0
            _deliveries[(task_id, threading.get_ident())] = _Delivery(
                1,
                True,
                time.monotonic(),
                task.name,
                "",
                guard=guard,
                early=early,
                held=nonce if held else "",
                line=line,
                retry_window=settings.redis_retry,
            )
            return
    # The start also takes the execution guard (start.lua): one waited round trip.
    try:
        run, duration_key, affinity_key, answer, detail = _retrying(
            lambda: line.start_guarded(task_id, int(attempt), nonce, guard),
            settings.redis_retry,
        )
    except StoreError:
        # Without a recorded start the body must not run; the delivery is
        # released when Redis answers again, or recovered with the worker.
        log.exception("could not record the start of %s; its body will not run", task_id)
        run, duration_key, affinity_key, answer, detail = False, "unrecorded", "", "", ""
    if not run:
        log.warning("skipping delivery %s of %s: the task is %s", attempt, task_id, duration_key)
    else:
        task.request.retries = int(attempt) - 1  # what Celery's retry backoff counts from
    delivery = _Delivery(int(attempt), run, time.monotonic(), duration_key, affinity_key)
    if run:
        _settle_guard(task.app, task_id, delivery, guard, answer, detail)
    _deliveries[(task_id, threading.get_ident())] = delivery


def _settle_guard(
    app: Celery, task_id: str, delivery: _Delivery, guard: Guard, answer: str, detail: str
) -> None:
    """Act on the execution guard's answer: a body that already finished is not run again."""
    try:
        finished = _retrying(lambda: guard.settle(answer, detail), app_settings(app).redis_retry)
    except StoreError:
        # Its completion still goes out through guard_exit.lua (with its effects).
        log.exception("could not take the execution guard of %s; running it unguarded", task_id)
        delivery.guard = guard
        return
    if finished is None:
        delivery.guard = guard
        if app not in _exit_loaded:  # guard_exit goes out on the report line, by EVALSHA
            store_for(app).scripts.load("guard_exit")
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


def hold_for(task: Any, settings: Settings) -> float:
    """Seconds a fresh first delivery of ``task`` holds its start back (0: none).

    A task declared ``on_orphan="fail"`` must not run again once its body ran,
    so its start is sent before the body, never held: a worker lost within the
    hold would otherwise leave it looking never started, and it would run again.
    """
    if getattr(task, "on_orphan", "requeue") == "fail":
        return 0.0
    return settings.start_hold_limit()


def _fresh(request: Any, limit: float) -> bool:
    """Whether a delivery may start early: first sent less than ``limit`` s ago, never restored.

    A message kombu restored (a worker that died with it unacknowledged, or the
    visibility timeout) says ``redelivered``; one without a dispatch time (an
    older template) is never fresh.
    """
    if limit <= 0:
        return False
    info = request.delivery_info or {}
    if info.get("redelivered") or getattr(request, "redelivered", False):
        return False
    at = getattr(request, "ym_at", None)
    if not isinstance(at, (int, float)):
        return False
    return -limit < time.time() - at < limit


def _take_early(task_id: str, delivery: _Delivery) -> None:
    """Read an early start's reply and settle the delivery with it."""
    early, line = delivery.early, delivery.line
    if early is None or line is None:
        return
    delivery.early = None
    try:
        run, duration_key, affinity_key, answer, detail = _retrying(
            lambda: line.take_start(early), delivery.retry_window
        )
    except StoreError:
        # The start stays queued on the line, ahead of the finish, so Redis
        # still records it first; only its answer is unknown here.
        log.warning("could not read the start of %s; its outcome follows it", task_id)
        return
    if not run:
        log.warning(
            "delivery 1 of %s started early, but the task is %s: its outcome is dropped",
            task_id,
            duration_key,
        )
        delivery.run = False
        if delivery.guard is not None:
            RENEWER.discard(delivery.guard.lock)
            delivery.guard = None
        return
    delivery.duration_key, delivery.affinity_key = duration_key, affinity_key
    if answer != "run":
        log.error(
            "delivery 1 of %s started early while its execution guard was %s (%s)",
            task_id,
            answer,
            detail,
        )


def _postrun(
    task_id: str, task: Any, retval: Any = None, state: str | None = None, **_: Any
) -> None:
    delivery = _deliveries.pop((task_id, threading.get_ident()), None)
    if delivery is None:
        tracing.finish_run(task_id, "unrecorded")
        return
    runtime = time.monotonic() - delivery.started
    if delivery.early is not None and not delivery.held:
        _take_early(task_id, delivery)
    # A held start goes out with this outcome, unread: Redis checks its nonce, and the
    # duration and affinity keys come from the record unless the body asked for them.
    read = delivery.early is None
    line = line_for(task.app, str(task.request.hostname))
    if delivery.finished is not None:
        # A replayed delivery: the body already ran; report what it ended with.
        verdict = _replayed(delivery.finished)
    elif delivery.run and state is None:  # the pool process is exiting mid-run
        verdict = outcome.interrupted(store_for(task.app), task_id)
    elif delivery.run:
        settings = app_settings(task.app)
        verdict = outcome.decide(
            task, delivery.attempt, state, retval, delivery.retry_when, settings
        )
        if verdict.outcome == "failed" and isinstance(retval, Reject):
            # no task_failure signal for a rejection: note the exception as failures does,
            # so AsyncResult re-raises celery.exceptions.Reject
            _note_reject(task, task_id, retval)
        if verdict.outcome == "retry" and delivery.retry_when is not None:
            # self.retry(args=..., kwargs=...): finish.lua stores them with the retry
            verdict = msgspec.structs.replace(
                verdict, args=delivery.retry_args, kwargs=delivery.retry_kwargs
            )
    else:
        verdict = Verdict("skipped", "", "")
    tracing.finish_run(task_id, verdict.outcome, verdict.error)
    if delivery.guard is not None:
        # Goes out on the report line just before the finish, so it is recorded first;
        # it commits the body's effects, which only a success keeps.
        effects = delivery.effects if verdict.outcome == "succeeded" else None
        if delivery.effects and effects is None:
            log.info(
                "%s ended %s: its %d effects are discarded",
                task_id,
                verdict.outcome,
                len(delivery.effects),
            )
        exit_call = delivery.guard.exit_call(
            verdict.outcome, verdict.result, verdict.error, effects, nonce=delivery.held
        )
        line.post("guard_exit", task_id, *exit_call)

    line.finish(  # sent again until Redis confirms it; a repeat answers 'stale'
        FinishReport(
            task_id,
            delivery.attempt,
            verdict,
            runtime,
            delivery.duration_key if read else "",
            delivery.affinity_key if read else "",
            delivery.held,
        )
    )


def _note_reject(task: Any, task_id: str, exc: Reject) -> None:
    """Note a rejected run's exception on its record (see :mod:`workers.failures`)."""
    from workers.failures import exception_note  # it imports this module

    try:
        store_for(task.app).tasks.note_failure(task_id, exception_note(exc), "")
    except StoreError:
        log.exception("could not note the rejection of %s", task_id)


def _replayed(done: Finished) -> Verdict:
    """The verdict of a delivery whose body had already finished (see ``guard_enter.lua``)."""
    reason = {"failed": "error", "cancelled": "cancelled", "retry": "retry"}.get(done.outcome, "")
    return Verdict(done.outcome, done.result, done.error, reason)


def _revoked(
    request: Any = None, terminated: bool = False, expired: bool = False, **_: Any
) -> None:
    """A run revoked in the main process (terminated, revoked before it started, or
    received after its Celery ``expires`` time: then it ends expired, unrun)."""
    app = _worker.get("app")
    if app is None or request is None:
        return
    if expired:
        outcome.report_from_main(
            store_for(app),
            str(request.id),
            getattr(request, "ym_attempt", None),
            _worker["name"],
            "expired",
            error=f"expired: not started by its expires time ({request.expires})",
            reason="expired",
        )
        return
    how = "terminated" if terminated else "revoked"
    outcome.report_from_main(
        store_for(app),
        str(request.id),
        getattr(request, "ym_attempt", None),
        _worker["name"],
        "cancelled",
        error=f"cancelled by request: the worker {how} the run",
        reason=how,
    )


def retrying(call: Callable[[], T], window: float) -> T:
    """Run ``call``, riding out a Redis restart or lost connection for up to ``window`` s."""
    return _retrying(call, window)


def _retrying(call: Callable[[], T], window: float) -> T:
    """Run ``call``, retrying connection errors with backoff for up to ``window`` seconds."""
    deadline = time.monotonic() + window
    delay = 0.05
    while True:
        try:
            return call()
        except RedisUnavailableError:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("Redis unreachable; retrying in %.2fs", delay)
            time.sleep(delay)
            delay = min(2.0, delay * 2)
