"""The base class of yardmaster tasks: a ``schedule()`` method and a body guard."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery, Task
from celery.exceptions import Ignore

from broker_config.celery_app import app_settings
from scheduler.client import Client, TaskHandle
from scheduler.store import StateStore, connect
from workers import hooks

_CLIENTS: dict[int, Client] = {}


def client_for(app: Celery) -> Client:
    """The (cached) yardmaster client of a Celery app made by ``make_celery``."""
    client = _CLIENTS.get(id(app))
    if client is None:
        store = StateStore(connect(str(app.conf.broker_url)), app_settings(app))
        names = [name for name in app.tasks if not name.startswith("celery.")]
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
    """

    cache_ttl: float | None = None
    cache_version: str | None = None
    coalesce: bool = False

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        # The guard sits here, not in __call__: Celery's tracer calls ``run``
        # directly unless a task class overrides __call__.
        if hooks.is_skipped(task_id):
            raise Ignore()

    def schedule(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> TaskHandle:
        """Submit this task to yardmaster; ``options`` are those of :meth:`Client.submit`."""
        for option in ("cache_ttl", "cache_version", "coalesce"):
            default = getattr(self, option)
            if default not in (None, False):
                options.setdefault(option, default)
        return client_for(self.app).submit(self.name, args, kwargs, **options)
