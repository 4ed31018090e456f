"""Publishes claimed tasks to worker queues through Celery."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence

from celery import Celery

from scheduler.dispatcher import Dispatch


class CeleryPublisher:
    """Sends claimed tasks with ``send_task``, pipelined in one batch when kombu can.

    Each message goes straight to the chosen worker's queue (the default
    exchange, routed by queue name: Celery turns a direct
    queue given by name into a plain push onto that queue's list) and carries the attempt number in its
    headers, so a worker can tell a stale delivery from the current one.
    """

    def __init__(self, app: Celery) -> None:
        self.app = app

    def publish(self, items: Sequence[Dispatch]) -> None:
        """Publish every item, in order."""
        with self.app.producer_or_acquire() as producer:
            batch = getattr(producer, "batch", None)
            scope = batch() if batch is not None and len(items) > 1 else contextlib.nullcontext()
            with scope:
                for item in items:
                    self.app.send_task(
                        item.name,
                        args=json.loads(item.args),
                        kwargs=json.loads(item.kwargs),
                        task_id=item.task_id,
                        producer=producer,
                        queue=item.queue,
                        headers={"ym_attempt": item.attempt, "ym_worker": item.worker},
                    )
