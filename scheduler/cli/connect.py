"""How a command reaches the cluster: the store, a client or a monitor on the
configured Redis (``YM_*`` settings; the embedded Redis of a running
``yardmaster up`` when ``YM_REDIS_URL`` is unset).

Every command that talks to a running cluster opens it here, so the runner
(:func:`scheduler.cli.main`) can name the Redis a failed command was talking
to (:func:`last_opened`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scheduler.client import Client
from scheduler.embedded import resolve_redis_url
from scheduler.settings import Settings, load_settings
from scheduler.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scheduler.monitor import Monitor

BUILTIN_TASKS = ("noop", "sleep", "spin", "fail", "ledger", "ledger_once")
"""Task names a command-line client accepts before any worker has registered them."""

_opened: dict[str, tuple[str, float]] = {}  # "last": (URL, timeout) of this process's command


def redis_url(settings: Settings) -> str:
    """The Redis URL of the configured cluster, remembered for error messages.

    Raises:
        RedisUnavailableError: No ``YM_REDIS_URL`` and no running ``yardmaster up``.
    """
    url = resolve_redis_url(settings)
    _opened["last"] = (url, settings.client_timeout)
    return url


def last_opened() -> tuple[str, float] | None:
    """The Redis URL a command opened last and its timeout (None when it opened none)."""
    return _opened.get("last")


def open_store(settings: Settings | None = None, *, check: bool = False) -> Store:
    """The state store of the configured cluster.

    Args:
        settings: The settings (``YM_*`` by default).
        check: Ask Redis the time once, so that a server (``api``, ``monitor``)
            fails at start, not at its first request, when Redis cannot be reached.
    """
    settings = settings or load_settings()
    # No command of the command line blocks on Redis on purpose: a connection or a
    # reply slower than YM_CLIENT_TIMEOUT ends the command with a clear message.
    store = Store.from_url(redis_url(settings), settings, timeout=settings.client_timeout)
    if check:
        store.server_time()
    return store


def open_client(
    settings: Settings | None = None, *, known_tasks: Iterable[str] = BUILTIN_TASKS
) -> Client:
    """A client of the configured cluster that also accepts ``known_tasks``."""
    return Client(open_store(settings), known_tasks=known_tasks)


def open_monitor(
    history: str | None = None, *, check: bool = False, companion: bool = False
) -> Monitor:
    """A monitor of the configured cluster, with the history the settings (or ``history``)
    ask for; ``check`` as for :func:`open_store`. ``companion``: with tuning's companion
    (the rolling trace, plans of the backlog, the rollout guard), for the one long-running
    monitor process, not for a one-off view."""
    from scheduler.monitor import Monitor

    store = open_store(check=check)
    if not companion:
        return Monitor.from_settings(store, history)
    from scheduler.tuning.companion import TuningCompanion

    return Monitor.from_settings(store, history, companion=TuningCompanion(store))
