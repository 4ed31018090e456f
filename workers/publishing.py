"""Celery's publishing, through the scheduler: every ``send_task`` becomes a submission.

``Task.delay``, ``Task.apply_async``, ``app.send_task`` and tasks sent from
inside tasks all end in ``Celery.send_task``; :class:`YardmasterCelery`
overrides that one method, so each of them becomes a yardmaster task record
(scheduled by the dispatcher, run by a yardmaster worker) instead of a message
on a queue. The caller gets Celery's own ``AsyncResult``, read through
:class:`broker_config.results.YardmasterBackend`.

Celery's options are mapped by :func:`submission` (docs/celery.md lists each);
an option that cannot be honoured raises :class:`UnsupportedOptionError` at the
call, naming it and why, so nothing is silently dropped.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery import Celery, signature
from celery.app.control import Control
from celery.utils.functional import arity_greater

from broker_config.celery_app import LazyBrokerCelery, app_settings
from scheduler.errors import InvalidInputError, TaskNotFoundError
from scheduler.models import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY

REFUSED: dict[str, str] = {
    "exchange": "exchanges are not modelled: name the queue (queue=) its worker consumes",
    "exchange_type": "exchanges are not modelled: name the queue (queue=) its worker consumes",
    "serializer": "yardmaster sends JSON only (pickle and the others are refused)",
    "compression": "yardmaster keeps arguments as JSON text in Redis, uncompressed",
    "retry_policy": "a submission is one atomic Redis call; a Redis error raises at once",
    "stamped_headers": "stamping canvases is not built on yardmaster yet",
    "stamps": "stamping canvases is not built on yardmaster yet",
    "immediate": "an AMQP flag with no meaning without a broker queue",
    "mandatory": "an AMQP flag with no meaning without a broker queue",
}
"""Options refused when given a value other than their default, and why."""

_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "serializer": (None, "json"),
    "retries": (None, 0),
    "replaced_task_nesting": (None, 0),
    "delivery_mode": (None, 2, "persistent"),
    "retry": (None, True, False),
}
"""Accepted values of options that are harmless at these values (else refused)."""

IGNORED = {
    "chain", "chord", "group_id", "group_index",  # canvas: read by YardmasterCelery.send_task
    "producer", "connection", "router", "result_cls", "publisher", "add_to_parent",
    "reply_to", "route_name", "shadow", "task_type",
    "ignore_result",
}  # fmt: skip
"""Options that are Celery's plumbing, not the task's: a yardmaster submission has no
producer, connection, router or reply queue, and always records its outcome."""

YARDMASTER = ("deadline", "expected_duration", "affinity_key", "duration_key")
"""yardmaster's own scheduling hints, accepted as ``apply_async`` options."""

MESSAGE_PROPERTIES = ("app_id", "user_id", "cluster_id", "type")
"""AMQP message properties a caller may set (``apply_async(app_id=...)``): as Celery
passes them to its producer, they reach the run's ``self.request.properties``. Each is
a string; Redis does not check ``user_id`` as RabbitMQ would."""

LINEAGE = ("parent_id", "root_id")
"""The ids of the task that sent this one and of the first task of its line, as Celery
sends them (``send_task`` fills them in inside a task): the run's ``self.request``."""

REPRS = ("argsrepr", "kwargsrepr")
"""How the arguments are shown in the worker's log and events (strings), in place of
``repr(args)`` / ``repr(kwargs)``, e.g. to keep a secret out of the logs."""

PLACEMENT = ("resources", "labels", "prefer")
"""yardmaster's placement requirements, accepted as ``apply_async`` options and as
``@app.task(...)`` options (the defaults of every submission of the task)."""


CANVAS_TASKS = ("celery.map", "celery.starmap", "celery.chunks", "celery.accumulate")
"""Celery's built-in tasks behind ``task.map``, ``task.starmap``, ``task.chunks`` and
``self.replace`` by a group (``celery.accumulate`` gathers its list): the only ``celery.*`` tasks a yardmaster worker registers and a client may send (the others,
such as ``celery.chord_unlock``, are replaced by dependencies on the server)."""


def shown_tasks(names: Any) -> list[str]:
    """The task names of an app that yardmaster knows: its own and :data:`CANVAS_TASKS`."""
    return sorted(n for n in names if not n.startswith("celery.") or n in CANVAS_TASKS)


class UnsupportedOptionError(InvalidInputError):
    """A Celery publishing option yardmaster cannot honour (yet)."""

    def __init__(self, option: str, value: Any, why: str) -> None:
        super().__init__(option, value, "the option left out", problem=f"cannot be honoured: {why}")


@dataclass(frozen=True, slots=True)
class Submission:
    """One Celery publish, mapped onto yardmaster's fields."""

    task_id: str
    fields: dict[str, Any]
    not_before: float | None
    expires: float | None = None


def submission(
    name: str,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    options: Mapping[str, Any],
    *,
    now: float | None = None,
) -> Submission:
    """Map ``send_task``'s arguments and options onto a yardmaster submission.

    Raises:
        UnsupportedOptionError: An option that cannot be honoured, naming it.
        InvalidInputError: A malformed value (countdown, eta, expires, priority, ...).
    """
    now = time.time() if now is None else now
    given = {key: value for key, value in options.items() if value is not None}
    for key, value in given.items():
        if key in _DEFAULTS and value in _DEFAULTS[key]:
            continue
        if key in REFUSED or key in _DEFAULTS:
            raise UnsupportedOptionError(key, value, REFUSED.get(key, "only its default"))
        if key in IGNORED or key in _HONOURED or key in YARDMASTER or key in PLACEMENT:
            continue
        if key in MESSAGE_PROPERTIES or key in REPRS or key in LINEAGE:
            if not isinstance(value, str):
                raise InvalidInputError(key, value, "a string")
            continue
        raise UnsupportedOptionError(key, value, "yardmaster does not know this option")
    if "countdown" in given and "eta" in given:
        raise InvalidInputError("countdown", given["countdown"], "countdown or eta, not both")
    not_before = None
    if "countdown" in given:
        not_before = now + _seconds("countdown", given["countdown"])
    elif "eta" in given:
        not_before = _when("eta", given["eta"])
    message: dict[str, Any] = {}
    priority = given.get("priority", DEFAULT_PRIORITY)
    if (
        not isinstance(priority, int)
        or isinstance(priority, bool)
        or not MIN_PRIORITY <= priority <= MAX_PRIORITY
    ):
        raise InvalidInputError(
            "priority",
            priority,
            f"an integer from {MIN_PRIORITY} to {MAX_PRIORITY} (higher runs first)",
        )
    message["priority"] = priority
    if "expires" in given:
        expires = given["expires"]
        at = (
            now + _seconds("expires", expires)
            if isinstance(expires, int | float) and not isinstance(expires, bool)
            else _when("expires", expires)
        )
        message["expires"] = datetime.fromtimestamp(at, UTC).isoformat()
        expires_at: float | None = at
    else:
        expires_at = None
    if "headers" in given:
        headers = given["headers"]
        if not isinstance(headers, Mapping) or not all(isinstance(k, str) for k in headers):
            raise InvalidInputError("headers", headers, "an object keyed by strings")
        message["headers"] = dict(headers)
    properties = {key: given[key] for key in MESSAGE_PROPERTIES if key in given}
    if properties:
        message["properties"] = properties
    message.update({key: given[key] for key in (*REPRS, *LINEAGE) if key in given})
    fields: dict[str, Any] = {
        "name": name,
        "args": list(args or ()),
        "kwargs": dict(kwargs or {}),
        "priority": priority,
        "message": message,
    }
    for key in ("time_limit", "soft_time_limit", *YARDMASTER, *PLACEMENT):
        if key in given:
            fields[key] = given[key]
    queue = route_queue(given.get("queue"), given.get("routing_key"))
    if queue is not None:
        fields["queue"] = queue
    task_id = given.get("task_id") or str(uuid.uuid4())
    return Submission(str(task_id), fields, not_before, expires_at)


_LINKS = ("link", "link_error")
"""Options that become batch items of their own (dependents), not fields of the task."""

_ERRBACK_PASSES = "id"
"""An errback's ``pass_results``: the failed parent's id is its first argument."""

_HONOURED = {
    "countdown", "eta", "expires", "priority", "time_limit", "soft_time_limit",
    "task_id", "headers", "queue", "routing_key",
}  # fmt: skip


def route_queue(queue: Any, routing_key: Any = None) -> Any:
    """The queue a task must run from, as Celery names it: ``queue`` (a name or a kombu
    ``Queue``), else ``routing_key`` (on the default exchange a routing key delivers to
    the queue of that name); None for neither. The name is validated with the task.

    Raises:
        InvalidInputError: ``routing_key`` names another queue than ``queue``.
    """
    name = getattr(queue, "name", queue)
    if isinstance(routing_key, str) and routing_key:
        if name is None:
            return routing_key
        queue_key = getattr(queue, "routing_key", None) or name
        if routing_key not in (name, queue_key):
            raise InvalidInputError(
                "routing_key",
                routing_key,
                f"the name of the queue given (queue={name!r}) or none: a routing key is "
                "read as the name of the queue its worker consumes",
            )
    return name


def _seconds(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(field, value, "seconds from now, a finite number")
    return float(value)


def _when(field: str, value: Any) -> float:
    """UNIX seconds of a datetime or an ISO 8601 text (naive: UTC, as Celery's default)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInputError(
                field, value, "a datetime or an ISO 8601 time", problem="not a valid time"
            ) from None
    if not isinstance(value, datetime):
        raise InvalidInputError(field, value, "a datetime or an ISO 8601 time")
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.timestamp()


class YardmasterControl(Control):
    """Celery's remote control, with ``revoke`` done by yardmaster's cancel.

    A broadcast revoke only reaches workers, and a task waiting in Redis is on none
    of them; so ``revoke(id)`` cancels the task's record instead: a pending or
    waiting (countdown / eta) task ends cancelled at once and never runs; a running
    one is flagged (the body may call ``self.check_cancelled()``), and with
    ``terminate=True`` its worker kills the run with ``YM_CANCEL_SIGNAL``, as
    :meth:`TaskHandle.cancel <scheduler.client.TaskHandle.cancel>` does.
    """

    def revoke(
        self,
        task_id: str | Sequence[str],
        destination: Any = None,
        terminate: bool = False,
        signal: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Cancel ``task_id`` (one id or several) wherever it is.

        Raises:
            UnsupportedOptionError: ``destination`` was given, or a ``signal`` other
                than ``YM_CANCEL_SIGNAL`` with ``terminate``.
        """
        from workers.yardmaster_task import client_for  # the task module imports this one

        if destination is not None:
            raise UnsupportedOptionError(
                "destination", destination, "a task is cancelled wherever it is"
            )
        wanted = app_settings(self.app).cancel_signal
        if terminate and signal not in (None, "TERM", "SIGTERM", wanted):
            raise UnsupportedOptionError(
                "signal", signal, f"the cluster terminates runs with YM_CANCEL_SIGNAL={wanted}"
            )
        client = client_for(self.app)
        for one in [task_id] if isinstance(task_id, str) else list(task_id):
            # as Celery: revoking an id nobody sent does nothing
            with contextlib.suppress(TaskNotFoundError):
                client.handle(str(one)).cancel(terminate=bool(terminate))


class YardmasterCelery(LazyBrokerCelery):
    """A Celery app whose publishes are yardmaster submissions (see the module's docstring)."""

    control_cls = "workers.publishing:YardmasterControl"

    def send_task(  # type: ignore[override]
        self,
        name: str,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Submit task ``name`` to yardmaster; returns Celery's ``AsyncResult`` for it.

        Raises:
            UnsupportedOptionError: An option that cannot be honoured, naming it.
            InvalidInputError: A malformed option value.
            UnknownTaskError: No worker or this app registers ``name``.
        """
        from workers.yardmaster_task import client_for  # the task module imports this one

        result_cls = options.get("result_cls")
        options = self._with_defaults(name, options)
        parent = self.current_worker_task
        if parent is not None and not (options.get("parent_id") and options.get("root_id")):
            # sent from inside a task: its lineage, as Celery's send_task fills it in
            options["root_id"] = (
                options.get("root_id") or parent.request.root_id or parent.request.id
            )
            options["parent_id"] = options.get("parent_id") or parent.request.id
        sub = submission(name, args, kwargs, {k: v for k, v in options.items() if k not in _LINKS})
        router = self.amqp.router
        if getattr(router, "routes", None):  # the app's task_routes, as Celery prepared them
            route = router.lookup_route(
                name, tuple(args or ()), dict(kwargs or {}), options, options.get("task_type")
            )
            route = {"queue": route} if isinstance(route, str) else route
            queue = route_queue(route.get("queue"), route.get("routing_key")) if route else None
            if queue is not None and "queue" not in sub.fields:  # call options win
                sub.fields["queue"] = queue
        client = client_for(self)
        steps = options.get("chain") or []
        # a chord's header task, or a chain whose last step is one (Celery marks it)
        group_ids = [options.get("group_id")]
        group_ids += [(step.get("options") or {}).get("group_id") for step in steps]
        pending = next(
            (
                _PENDING_CHORDS.get(g)
                for g in group_ids
                if isinstance(g, str) and _PENDING_CHORDS.get(g)
            ),
            None,
        )
        if options.get("chord") is not None and pending is None:
            raise UnsupportedOptionError(
                "chord", options["chord"], "a chord's header is sent by chord(...).apply_async"
            )
        links, errbacks = options.get("link"), options.get("link_error")
        if steps or pending is not None or links or errbacks:
            if sub.not_before is not None or sub.expires is not None:
                why = (
                    "a task of a chain or a chord header, or one with link or link_error, "
                    "cannot wait or expire yet"
                )
                raise UnsupportedOptionError(
                    "countdown" if sub.not_before is not None else "expires",
                    options.get("countdown", options.get("eta", options.get("expires"))),
                    why,
                )
            items = [{"id": sub.task_id, **sub.fields}]
            items += self._links(links, sub.task_id)
            items += self._errbacks(errbacks, sub.task_id)
            previous = sub.task_id
            for step in reversed(steps):  # Celery keeps a chain's rest last step first
                root = options.get("root_id") or sub.task_id
                step_items = self._canvas_item(step, previous, "chain", root)
                items += step_items
                previous = step_items[0]["id"]
            if pending is None:
                client.submit_many(items)
            else:
                pending.add(items)
                if pending.complete():
                    del _PENDING_CHORDS[pending.group_id]
                    body = self._canvas_item(pending.body, pending.ids, "chord")
                    client.submit_many([*pending.items, *body])
        elif _GROUP.depth and options.get("group_id") and sub.not_before is sub.expires is None:
            _GROUP.items.append((sub.task_id, sub.fields))  # sent as one batch at the group's end
        else:
            client.submit_many([sub.fields], ids=[sub.task_id], not_before=sub.not_before)
            if sub.expires is not None:
                # still pending then: the dispatcher ends it (a worker checks the message too)
                client.store.tasks.watch_expiry(sub.task_id, sub.expires)
        if result_cls is not None:
            return result_cls(sub.task_id)
        return self.AsyncResult(sub.task_id)

    @contextlib.contextmanager
    def producer_or_acquire(  # type: ignore[override]  # a context manager all the same
        self, producer: Any = None
    ) -> Iterator[Any]:
        """Celery's context around a group's publishes: here the group's plain tasks are
        kept back and submitted as one batch (all or none) as it closes; a chain inside
        the group is its own batch, and a chord's header goes with its body."""
        from workers.yardmaster_task import client_for  # the task module imports this one

        outer = _GROUP.depth == 0
        _GROUP.depth += 1
        try:
            with super().producer_or_acquire(producer) as acquired:
                yield acquired
            if outer and _GROUP.items:
                ids, fields = zip(*_GROUP.items, strict=True)
                client_for(self).submit_many(list(fields), ids=list(ids))
        except BaseException:
            if outer:  # a header refused midway: its chord is not sent, nor kept for later
                _PENDING_CHORDS.by_group.clear()
            raise
        finally:
            _GROUP.depth -= 1
            if outer:
                _GROUP.items = []

    def _with_defaults(self, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` over the task's decorator options and the app's default priority."""
        task = self.tasks.get(name)
        if options.get("task_type") is None and task is not None:
            # send_task by name of a local task: its decorator's options are the defaults,
            # as in Celery (apply_async has merged them already)
            exec_options: dict[str, Any] = task._get_exec_options()  # type: ignore[attr-defined]
            defaults = {k: v for k, v in exec_options.items() if v is not None}
            options = {**defaults, **options}
        if task is not None:
            # placement options of @app.task(...): defaults that the call's options override
            for key in PLACEMENT:
                default = getattr(task, key, None)
                if default is not None and options.get(key) is None:
                    options = {**options, key: default}
        if options.get("priority") is None and self.conf.task_default_priority is not None:
            options = {**options, "priority": self.conf.task_default_priority}
        return dict(options)

    def _links(self, links: Any, parent: str) -> list[dict[str, Any]]:
        """The batch items of a task's ``link`` callbacks (one signature or a list):
        each waits on ``parent`` and runs with its result once it succeeded (if it
        fails, or is cancelled, they are cancelled: Celery does not call them either)."""
        if not links:
            return []
        sigs = links if isinstance(links, list | tuple) else [links]
        return [item for sig in sigs for item in self._canvas_item(sig, parent, "link")]

    def _canvas_item(
        self, step: Any, parents: str | list[str], within: str, root: str | None = None
    ) -> list[dict[str, Any]]:
        """The dependent batch item of a chain's next step or a ``link`` (after
        ``parents``, one id) or of a chord's body (after every header task,
        ``parents`` in order), then the items of its own links. A chain's step has
        ``parents`` as its ``parent_id`` and ``root`` (the chain's first task) as its
        ``root_id``, as Celery's worker sends them.

        The parent's result is the step's first argument as in Celery: a chain passes
        the one parent's result itself (``pass_results="single"``), a chord the list of
        its header's results; an immutable signature (``.si()``) gets none.

        A step that is itself a chain, a group or a chord (nested to any depth) becomes
        the items :func:`workers.canvas_graph.compile_node` builds.

        Raises:
            UnsupportedOptionError: A task of the step waits or expires, or the step
                nests a group's list in a list that a later step would get.
        """
        from workers.canvas_graph import chain_rest, compile_node  # it imports this module

        sig = signature(step, app=self)
        if sig.subtask_type is not None:  # a nested canvas: see workers/canvas_graph.py
            return compile_node(self, sig, parents, within)[0]
        name = str(sig.task)
        opts = self._with_defaults(name, sig.options)
        links, errbacks = opts.pop("link", None), opts.pop("link_error", None)
        if within == "chain" and isinstance(parents, str) and not opts.get("parent_id"):
            # Celery's lineage: the step before it, and the chain's first task
            opts["parent_id"] = parents
            opts["root_id"] = opts.get("root_id") or root
        sub = submission(name, sig.args, sig.kwargs, opts)
        if sub.not_before is not None or sub.expires is not None:
            raise UnsupportedOptionError(
                "countdown" if sub.not_before is not None else "expires",
                opts.get("countdown", opts.get("eta", opts.get("expires"))),
                f"a task inside a {within} cannot wait or expire yet",
            )
        single = isinstance(parents, str)
        item: dict[str, Any] = {
            "id": sub.task_id,
            **sub.fields,
            "depends_on": [parents] if single else list(parents),
        }
        if not sig.immutable:
            item["pass_results"] = "single" if single else True
        rest = chain_rest(self, opts.get("chain"), sub.task_id, "chain")  # a chord's body
        return [
            item,
            *self._links(links, sub.task_id),
            *self._errbacks(errbacks, sub.task_id),
            *rest,
        ]

    def _errbacks(self, errbacks: Any, parent: str) -> list[dict[str, Any]]:
        """The batch items of a task's ``link_error`` errbacks (one signature or a list).

        Each waits on ``parent`` with ``on_parent_failure="run_only"``: the Lua step that
        records the parent's failure (after its last retry) releases it, and the one that
        records a success (or a cancel, an expiry) cancels it, so it runs at most once.
        It is called the way Celery calls an old-style errback, ``errback(task_id)``
        (then the signature's own arguments; ``.si()``: none): the failed task's id, a
        JSON value, from which ``AsyncResult(task_id)`` gives the exception (its original
        type) and ``.traceback``. Its own ``link`` callbacks run after it, as usual.

        Raises:
            UnsupportedOptionError: Naming ``link_error``: the errback is a canvas, waits
                or expires, or its task takes more than one positional parameter (Celery
                would call it new-style, ``errback(request, exc, traceback)``, with
                Python objects that do not go over JSON).
        """
        if not errbacks:
            return []
        items: list[dict[str, Any]] = []
        for one in errbacks if isinstance(errbacks, list | tuple) else [errbacks]:
            sig = signature(one, app=self)
            if sig.subtask_type is not None:
                raise UnsupportedOptionError(
                    "link_error",
                    f"{sig.subtask_type} {sig!r}",
                    f"a {sig.subtask_type} as an errback is not built on yardmaster yet",
                )
            name = str(sig.task)
            header = getattr(self.tasks.get(name), "__header__", None)
            if header is not None and not sig.immutable and arity_greater(header, 1):
                raise UnsupportedOptionError(
                    "link_error",
                    repr(sig),
                    "Celery calls an errback whose task takes more than one parameter as "
                    "errback(request, exc, traceback), Python objects that do not go over "
                    "JSON; on yardmaster an errback takes one, the failed task's id "
                    "(AsyncResult(task_id) gives its exception and traceback), or use .si()",
                )
            opts = self._with_defaults(name, sig.options)
            links = opts.pop("link", None)
            if opts.pop("link_error", None):
                raise UnsupportedOptionError(
                    "link_error", repr(sig), "an errback of an errback is not built yet"
                )
            sub = submission(name, sig.args, sig.kwargs, opts)
            if sub.not_before is not None or sub.expires is not None:
                raise UnsupportedOptionError(
                    "link_error",
                    repr(sig),
                    "an errback cannot wait (countdown, eta) or expire yet",
                )
            item: dict[str, Any] = {
                "id": sub.task_id,
                **sub.fields,
                "depends_on": [parent],
                "on_parent_failure": "run_only",
            }
            if not sig.immutable:
                item["pass_results"] = _ERRBACK_PASSES  # errback(task_id), as Celery calls it
            items += [item, *self._links(links, sub.task_id)]
        return items


class _PendingChord:
    """A chord whose header is being sent, task by task, by Celery's group."""

    def __init__(self, group_id: str, ids: list[str], body: Any) -> None:
        self.group_id = group_id
        self.ids = ids
        self.body = body
        self.items: list[dict[str, Any]] = []
        self._seen: set[str] = set()

    def add(self, items: list[dict[str, Any]]) -> None:
        self.items.extend(items)
        self._seen.update(str(item["id"]) for item in items)

    def complete(self) -> bool:
        return self._seen.issuperset(self.ids)


class _Chords(threading.local):
    def __init__(self) -> None:
        self.by_group: dict[str, _PendingChord] = {}

    def get(self, group_id: str) -> _PendingChord | None:
        return self.by_group.get(group_id)

    def __delitem__(self, group_id: str) -> None:
        del self.by_group[group_id]


class _Group(threading.local):
    def __init__(self) -> None:
        self.depth = 0
        self.items: list[tuple[str, dict[str, Any]]] = []


_GROUP = _Group()
"""The tasks of the group this thread is sending (see YardmasterCelery.producer_or_acquire)."""

_PENDING_CHORDS = _Chords()
"""Chords whose header this thread is sending (Celery sends a header one task at a
time after ``apply_chord``); the last header task sends header and body as one batch."""


def expect_chord(group_id: str, header_ids: list[str], body: Any) -> None:
    """Note that the header ``header_ids`` of chord ``group_id`` is about to be sent:
    its tasks are kept back and submitted with ``body`` as one batch, the body
    depending on every header task with their results as a list in header order."""
    _PENDING_CHORDS.by_group[group_id] = _PendingChord(group_id, header_ids, body)


def is_yardmaster_app(app: Celery) -> bool:
    """Whether ``app`` publishes through yardmaster."""
    return isinstance(app, YardmasterCelery)
