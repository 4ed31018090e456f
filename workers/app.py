"""The Celery app entry point: ``celery -A workers.app worker`` works as is.

The module-level ``app`` reads ``YM_*`` settings (and the embedded Redis of a
running ``yardmaster up`` when ``YM_REDIS_URL`` is unset). Neither it nor an app
of :func:`create_app` needs a Redis to be made: the URL is found when the app's
configuration is first read (its first submission, or the worker starting).
"""

from __future__ import annotations

from celery import Celery

import workers.demo_tasks  # noqa: F401  (registers the built-in tasks)
from broker_config.celery_app import make_celery
from scheduler.settings import Settings, load_settings
from workers import failures, hooks
from workers.publishing import YardmasterCelery
from workers.yardmaster_task import YardmasterTask


def create_app(
    settings: Settings | None = None, redis_url: str | None = None, *, main: str = "yardmaster"
) -> Celery:
    """A Celery app whose tasks yardmaster schedules, with the worker hooks installed.

    Every publish on it (``delay``, ``apply_async``, ``send_task``) is a yardmaster
    submission (:mod:`workers.publishing`), ``AsyncResult`` reads yardmaster's records
    (:mod:`broker_config.results`), and it becomes Celery's current and default app, so
    ``@shared_task`` functions bind to it.

    Args:
        settings: Cluster settings (``YM_*`` by default).
        redis_url: The Redis; by default ``YM_REDIS_URL``, else the embedded Redis of a
            running ``yardmaster up``, looked up on first use, not here.
        main: Name of the main module, as for :class:`celery.Celery`.
    """
    settings = settings or load_settings()
    app = make_celery(
        settings, redis_url, main=main, task_cls=YardmasterTask, app_cls=YardmasterCelery
    )
    hooks.install(app)
    failures.install(app)
    # ``@shared_task`` functions bind to the current app, as under ``celery -A``.
    app.set_current()
    app.set_default()
    return app


_app: Celery | None = None


def __getattr__(name: str) -> Celery:
    # ``app`` is built on first use, so importing this module never needs a Redis.
    global _app
    if name == "app":
        if _app is None:
            _app = create_app()
        return _app
    raise AttributeError(name)
