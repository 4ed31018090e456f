"""The Celery app entry point: ``celery -A workers.app worker`` works as is.

The module-level ``app`` reads ``YM_*`` settings (and the embedded Redis of a
running ``yardmaster up`` when ``YM_REDIS_URL`` is unset).
"""

from __future__ import annotations

from celery import Celery

import workers.demo_tasks  # noqa: F401  (registers the built-in tasks)
from broker_config.celery_app import make_celery
from scheduler.embedded import resolve_redis_url
from scheduler.settings import Settings, load_settings
from workers import hooks
from workers.yardmaster_task import YardmasterTask


def create_app(
    settings: Settings | None = None, redis_url: str | None = None, *, main: str = "yardmaster"
) -> Celery:
    """A Celery app whose tasks yardmaster schedules, with the worker hooks installed."""
    settings = settings or load_settings()
    app = make_celery(
        settings, redis_url or resolve_redis_url(settings), main=main, task_cls=YardmasterTask
    )
    hooks.install(app)
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
