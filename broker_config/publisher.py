"""Publishes claimed tasks to worker queues as Celery messages, one pipeline per batch.

``send_task`` costs about a millisecond of dispatcher CPU per message (routing,
producer pool, entity declaration, one round trip each), more than a noop task
takes to run. The dispatcher instead builds each message with Celery's own
protocol-2 builder (``app.amqp.as_task_v2``), wraps it in the envelope kombu's
Redis transport reads (base64 body, delivery info naming the queue), and the
store pushes the whole batch in one pipelined round trip (:meth:`Workers.push
<scheduler.store.workers.Workers.push>`). Tasks waiting in the hand-off list
carry a template of the same message, which ``finish.lua`` completes. Workers
consume these messages with Celery's ordinary machinery; every integration test
goes through it.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Sequence
from typing import Any

from celery import Celery

from scheduler import tracing
from scheduler.dispatcher import Dispatch
from scheduler.store import Store

# Placeholders of a message template; finish.lua matches them by this shape.
_ATTEMPT = "@@ym-attempt@@"
_WORKER = "@@ym-worker@@"
_QUEUE = "@@ym-queue@@"
_TAG = "@@ym-tag@@"
_AT = "@@ym-at@@"


class CeleryPublisher:
    """Pushes claimed tasks onto the chosen workers' queues.

    Each message carries the attempt number and the worker in its headers, so
    a worker can tell a stale delivery from the current one.

    Args:
        app: The Celery app (its protocol builder and task settings are used).
        store: The state store (its Redis is the broker).
    """

    def __init__(self, app: Celery, store: Store) -> None:
        self.app = app
        self.store = store
        self.origin = f"yardmaster-dispatcher-{os.getpid()}@{socket.gethostname()}"

    def template(
        self,
        task_id: str,
        name: str,
        args: str,
        kwargs: str,
        options: str = "",
        priority: int | None = None,
    ) -> str:
        """The message of a task with its delivery fields left as placeholders.

        ``options`` (the submission's retry policy and time limits, JSON) travel
        in the message: the time limits as Celery's own ``timelimit`` header,
        which the worker's pool enforces, the retry policy as ``ym_retry``; a
        Celery publish's ``message`` fields as Celery sends them (``priority`` in
        the delivery info, ``expires``, the caller's own ``headers``). ``priority``
        (the task's yardmaster priority) is the delivery info's otherwise.

        ``finish.lua`` replaces the five quoted placeholders (attempt, worker,
        queue, delivery tag, dispatch time) when it hands the task to a freed slot, so the
        message is built once, off the critical path; :meth:`bind` does the same
        in Python for the dispatcher's own publishes.
        """
        opts: dict[str, Any] = json.loads(options) if options else {}
        # Fields of a Celery publish (workers/publishing.py) the run sees in its request.
        celery: dict[str, Any] = opts.get("message") or {}
        msg = self.app.amqp.as_task_v2(
            task_id,
            name,
            args=json.loads(args),
            kwargs=json.loads(kwargs),
            origin=self.origin,
            time_limit=opts.get("time_limit"),
            soft_time_limit=opts.get("soft_time_limit"),
            expires=celery.get("expires"),
            # who sent it (a task sent from inside a task): the run's request
            root_id=_unplaced(celery["root_id"]) if "root_id" in celery else None,
            parent_id=_unplaced(celery["parent_id"]) if "parent_id" in celery else None,
            # user text must never look like a placeholder
            argsrepr=_unplaced(celery.get("argsrepr", args)),
            kwargsrepr=_unplaced(celery.get("kwargsrepr", kwargs)),
        )
        properties: dict[str, Any] = dict(msg.properties)
        # the caller's AMQP properties (app_id, ...), as Celery's producer sends them
        properties.update({k: _unplaced(v) for k, v in (celery.get("properties") or {}).items()})
        properties.update(
            delivery_mode=2,
            delivery_info={"exchange": "", "routing_key": _QUEUE},
            # the run's delivery_info['priority']: yardmaster's priority (0..9, higher first)
            priority=celery.get("priority", 0 if priority is None else priority),
            body_encoding="base64",
            delivery_tag=_TAG,
        )
        body = json.dumps(msg.body, separators=(",", ":")).encode()
        envelope = {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": dict(
                celery.get("headers") or {},
                **msg.headers,
                ym_attempt=_ATTEMPT,
                ym_worker=_WORKER,
                ym_at=_AT,
                ym_retry=opts.get("retry"),
                **tracing.dispatch(self.store.settings, opts.get("trace"), task_id, name),
            ),
            "properties": properties,
        }
        return json.dumps(envelope, separators=(",", ":"))

    @staticmethod
    def bind(template: str, item: Dispatch) -> str:
        """Fill a template's placeholders for one delivery (as ``finish.lua`` does)."""
        return (
            template.replace(f'"{_ATTEMPT}"', str(item.attempt))
            .replace(f'"{_WORKER}"', json.dumps(item.worker))
            .replace(f'"{_QUEUE}"', json.dumps(item.queue))
            .replace(f'"{_TAG}"', json.dumps(f"{item.task_id}.{item.attempt}"))
            .replace(f'"{_AT}"', f"{item.at:.6f}")
        )

    def message(self, item: Dispatch) -> str:
        """The JSON text kombu's Redis transport expects on the worker's queue list."""
        template = self.template(
            item.task_id, item.name, item.args, item.kwargs, item.options, item.priority
        )
        return self.bind(template, item)

    def publish(self, items: Sequence[Dispatch]) -> None:
        """Push every item, in order, in one pipelined round trip."""
        self.store.workers.push([(item.queue, self.message(item)) for item in items])


def _unplaced(text: str) -> str:
    """``text`` that cannot be taken for one of the template's placeholders."""
    return text.replace("@@ym-", "@@ym_")
