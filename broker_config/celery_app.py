"""The Celery app factory.

Everything on the wire is JSON (pickle is neither sent nor accepted). Tasks
are acknowledged late and a worker prefetches no more than its concurrency,
so a worker never holds more messages than it has slots; the dispatcher sends
it no more than that in the first place. Workers consume only their own
queue (see :mod:`workers.hooks`), which is what makes late binding possible.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from celery.app.backends import BACKEND_ALIASES

from broker_config.security import broker_connection
from broker_config.transport import ALIAS as TRANSPORT
from broker_config.transport import SENTINEL_ALIAS
from scheduler.embedded import resolve_redis_url
from scheduler.keys import Keys
from scheduler.settings import Settings
from scheduler.store.sentinel import is_sentinel

SETTINGS_KEY = "yardmaster_settings"

BACKEND = "broker_config.results:YardmasterBackend"
"""yardmaster's result backend (reads the task records), by its import path."""
BACKEND_SCHEMES = {
    "redis": "redis-yardmaster",
    "rediss": "rediss-yardmaster",
    "sentinel": "redis-yardmaster-sentinel",
}
"""The ``result_backend`` URL scheme of each store URL scheme. Each is a Celery backend
alias of :data:`BACKEND` (registered by importing this module), so the setting names
the Redis the results are read from, and begins with ``redis`` as a Redis backend's does
(Celery's own integration suite runs its Redis-backend tests only then). No scheme holds
a ``+``: Celery reads ``backend+url`` as a backend name and its URL."""
_STORE_SCHEMES = {backend: store for store, backend in BACKEND_SCHEMES.items()}


def backend_url(redis_url: str) -> str:
    """The ``result_backend`` URL of the store at ``redis_url``: its scheme replaced by
    its :data:`BACKEND_SCHEMES` alias, the rest (host, db, credentials, TLS query, further
    Sentinels) unchanged.

    Raises:
        ValueError: ``redis_url``'s scheme is not redis, rediss or sentinel.
    """
    scheme, sep, rest = redis_url.partition("://")
    if not sep or scheme not in BACKEND_SCHEMES:
        raise ValueError(
            f"redis_url {redis_url!r}: the scheme must be one of {', '.join(BACKEND_SCHEMES)}"
        )
    return f"{BACKEND_SCHEMES[scheme]}://{rest}"


def store_url(url: str) -> str | None:
    """The store URL a ``result_backend`` URL of :func:`backend_url` names; None for any
    other value (the class path, an empty setting)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _STORE_SCHEMES:
        return None
    return f"{_STORE_SCHEMES[scheme]}://{rest}"


def celery_config(settings: Settings, redis_url: str | None) -> dict[str, Any]:
    """Celery settings for a yardmaster cluster on ``redis_url`` (None: all but the
    broker connection, which :class:`LazyBrokerCelery` adds when it is first needed)."""
    keys = Keys(settings.namespace)
    return {
        **(broker_settings(settings, redis_url) if redis_url is not None else {}),
        "broker_connection_retry_on_startup": True,
        # Late binding sends a worker at most one message per free slot, and
        # the worker may hold no more than that.
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
        # JSON only, in both directions.
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # Outcomes and results are written to yardmaster's own records.
        "task_ignore_result": True,
        # AsyncResult reads those records (broker_config/results.py): result_backend is
        # their Redis under the backend's alias, set with the broker (broker_settings).
        "task_store_errors_even_if_ignored": False,
        "task_default_queue": keys.worker_queue("unbound"),
        "worker_hijack_root_logger": False,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        # Default time limits (a submission's own travel in the message).
        "task_soft_time_limit": settings.soft_time_limit,
        "task_time_limit": settings.time_limit,
        SETTINGS_KEY: settings,
    }


def broker_settings(settings: Settings, redis_url: str) -> dict[str, Any]:
    """The broker connection's Celery settings for ``redis_url``: the URL, its TLS options
    for rediss:// (verified by default), the transport and its options, and the result
    backend's URL (the same Redis, see :func:`backend_url`)."""
    options: dict[str, Any] = {
        # A long task must not be redelivered while it still runs
        # (celery/kombu#337); recovery of dead workers is yardmaster's job, and
        # a redelivery that happens anyway is skipped by start.lua.
        "visibility_timeout": settings.visibility_timeout,
    }
    sentinel = is_sentinel(redis_url)
    if sentinel:
        options["master_name"] = settings.sentinel_master
    return {
        **broker_connection(redis_url),
        # kombu's Redis transport, minus a new Redis client per ack (broker_config/transport.py);
        # its Sentinel variant for sentinel:// URLs.
        "broker_transport": SENTINEL_ALIAS if sentinel else TRANSPORT,
        "broker_transport_options": options,
        "result_backend": backend_url(redis_url),
    }


class LazyBrokerCelery(Celery):
    """A Celery app whose broker URL is found when its configuration is first read, not
    when it is made: a module that makes one at import (``app = create_app()``) then
    imports without a Redis, and finds the one of a ``yardmaster up`` started later.

    Celery calls ``on_configure`` (as a method, when a subclass defines one) just before
    it reads the configuration; when it raises, the configuration stays unread, so the
    next use tries again.
    """

    ym_settings: Settings | None = None

    # Celery >= 4 keeps a Signal here, and still calls a method of this name instead.
    def on_configure(self) -> None:  # type: ignore[override]
        settings = self.ym_settings
        if settings is None:  # a copy made by unpickling: its configuration came along
            return
        for key, value in broker_settings(settings, resolve_redis_url(settings)).items():
            if key not in self.conf:  # what the app's author set on app.conf wins
                self.conf[key] = value


def make_celery(
    settings: Settings,
    redis_url: str | None,
    *,
    main: str = "yardmaster",
    task_cls: type[Task[Any, Any]] | str | None = None,
    app_cls: type[LazyBrokerCelery] | None = None,
) -> Celery:
    """Create a Celery app configured for yardmaster.

    Args:
        settings: Cluster settings (its namespace names the worker queues).
        redis_url: Broker URL (the same Redis that holds yardmaster's state); None
            finds it on first use: ``YM_REDIS_URL``, else the embedded Redis of a
            running ``yardmaster up`` (see :class:`LazyBrokerCelery`).
        main: Name of the main module, as for :class:`celery.Celery`.
        task_cls: Base class for the app's tasks.
        app_cls: The app's class (a :class:`LazyBrokerCelery`); by default a plain
            :class:`celery.Celery` when ``redis_url`` is given.
    """
    app: Celery
    if app_cls is not None or redis_url is None:
        lazy = (app_cls or LazyBrokerCelery)(main, task_cls=task_cls, set_as_current=False)
        lazy.ym_settings = settings if redis_url is None else None
        app = lazy
    else:
        app = Celery(main, task_cls=task_cls, set_as_current=False)
    app.conf.update(celery_config(settings, redis_url))
    return app


def app_settings(app: Celery) -> Settings:
    """The yardmaster settings an app was made with."""
    found = app.conf.get(SETTINGS_KEY)
    if not isinstance(found, Settings):
        raise LookupError(f"Celery app {app.main!r} was not made by broker_config.make_celery")
    return found


for _scheme in BACKEND_SCHEMES.values():
    BACKEND_ALIASES.setdefault(_scheme, BACKEND)
