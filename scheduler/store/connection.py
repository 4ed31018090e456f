"""The store's Redis connection, and redis-py's errors turned into yardmaster's.

Nothing outside :mod:`scheduler.store` imports redis-py: a repository method
that talks to Redis is wrapped by :func:`translated`, so what escapes it is
one of :mod:`scheduler.errors`' store errors (a lost or refused connection,
an error reply, an out-of-memory refusal, a lease-fenced write refused), with
the redis-py error as its cause. The wrapper adds one call per store method,
not per Redis command; the per-task report line (:mod:`scheduler.store.reports`)
translates in the ``except`` clauses it already has, so a success costs nothing.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from redis import Redis
from redis import exceptions as rx
from redis.connection import SSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import MasterNotFoundError

from scheduler.errors import (
    NotLeaderError,
    RedisOutOfMemoryError,
    RedisRefusedError,
    RedisUnreachableError,
    StoreError,
    YardmasterError,
)
from scheduler.store import sentinel

P = ParamSpec("P")
R = TypeVar("R")
LOST = (RedisConnectionError, RedisTimeoutError)
"""redis-py's errors for a connection that could not be made or was lost."""


def connect(url: str, *, timeout: float | None = None, master: str = "mymaster") -> Redis:
    """A Redis client for ``url`` that decodes replies to ``str``.

    Args:
        url: ``redis://``, ``rediss://``, ``unix://`` or ``sentinel://`` URL (the last:
            a client on the current master, found again after a failover; see
            :mod:`scheduler.store.sentinel`).
        timeout: Seconds to wait for a connection or a reply (None: no limit, for
            the processes that block on purpose, such as the dispatcher's inbox).
        master: The master's name for a ``sentinel://`` URL (``YM_SENTINEL_MASTER``).
    """
    if sentinel.is_sentinel(url):
        return sentinel.master_client(
            url, master, timeout=timeout, decode_responses=True, socket_keepalive=True
        )
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_keepalive=True,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
    )


def server_time(client: Redis) -> float:
    """Redis server time in UNIX seconds: the one clock all components share."""
    seconds, micros = client.time()
    return float(seconds + micros / 1e6)


def answers(url: str, timeout: float = 0.5) -> bool:
    """Whether a Redis at ``url`` answers PING now (a server being started waits on this)."""
    client = connect(url, timeout=timeout)
    try:
        return bool(client.ping())
    except RedisError:
        return False
    finally:
        client.close()


def address(client: Redis) -> str:
    """Where ``client`` connects, as ``redis://host:port/db``: for messages, so no password."""
    if sentinel.is_managed(client):
        return sentinel.address(client)
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    scheme = "rediss" if issubclass(pool.connection_class, SSLConnection) else "redis"
    host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
    return f"{scheme}://{host}:{port}/{kwargs.get('db', 0)}"


def translate(exc: RedisError, client: Redis) -> YardmasterError:
    """The store error that says what ``exc`` (raised talking to ``client``) means."""
    text = str(exc)
    if isinstance(exc, MasterNotFoundError):
        return RedisUnreachableError(
            address(client), f"no master: {sentinel.why_no_master(client)}", hint=""
        )
    if isinstance(exc, LOST):
        return RedisUnreachableError(address(client), f"{type(exc).__name__}: {text}")
    if isinstance(exc, ResponseError):
        if "NOTLEADER" in text:  # the lease-fenced scripts' refusal
            return NotLeaderError()
        # a script's write refused for memory comes as a script error quoting the reply
        if isinstance(exc, OutOfMemoryError) or "OOM command not allowed" in text:
            return RedisOutOfMemoryError(address(client), text)
        return RedisRefusedError(address(client), text)
    return StoreError(f"Redis at {address(client)} failed: {type(exc).__name__}: {text}")


class HasClient(Protocol):
    """What :func:`translated` needs of the object whose method it wraps."""

    @property
    def _client(self) -> Redis: ...


C = TypeVar("C", bound=HasClient)


def translated(method: Callable[Concatenate[C, P], R]) -> Callable[Concatenate[C, P], R]:
    """Make a store method raise yardmaster's store errors instead of redis-py's."""

    @functools.wraps(method)
    def call(self: C, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except RedisError as exc:
            raise translate(exc, self._client) from exc

    return call


def diagnose(exc: BaseException) -> tuple[str, str] | None:
    """What kind of Redis failure ``exc`` is (found in it or in the error it was raised
    from), as (kind, the shortest true account of it), for messages to people.

    Kinds: ``sentinel`` (the Sentinels named no master), ``noauth`` (a password is
    required), ``auth`` (credentials refused),
    ``noperm`` (the user may not run a command), ``readonly`` (a replica),
    ``loading``, ``tls`` (the handshake failed), ``timeout``, ``connection``.
    None when ``exc`` is no such failure.
    """
    found = next((e for e in (exc, exc.__cause__) if isinstance(e, RedisError)), None)
    if found is None:
        return None
    text = str(found)
    if isinstance(found, MasterNotFoundError):
        # the translated error asked the Sentinels why; redis-py's own text is a dump
        reason = exc.reason if isinstance(exc, RedisUnreachableError) else "no master found"
        return "sentinel", reason
    if isinstance(found, rx.AuthenticationError | rx.AuthenticationWrongNumberOfArgsError):
        if "NOAUTH" in text or "must be called with the client already authenticated" in text:
            return "noauth", _account(found)
        return "auth", _account(found)
    if isinstance(found, rx.NoPermissionError):
        return "noperm", _account(found)
    if isinstance(found, rx.ReadOnlyError):
        return "readonly", _account(found)
    if isinstance(found, rx.BusyLoadingError):
        return "loading", _account(found)
    if isinstance(found, LOST):
        tls = _tls_failure(found)
        if tls is not None:
            return "tls", tls
        return ("timeout" if isinstance(found, RedisTimeoutError) else "connection"), _account(
            found
        )
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during, innermost last."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _tls_failure(exc: BaseException) -> str | None:
    """What went wrong in a TLS handshake somewhere in ``exc``'s chain (None: no TLS failure)."""
    for e in _chain(exc):
        if isinstance(e, ssl.SSLError):
            return str(getattr(e, "reason", None) or e).lower().replace("_", " ")
        if "handshake" in str(e):
            return "no TLS answer in time"
    return None


def _account(exc: BaseException) -> str:
    """The operating system's words when there are some (``connection refused``), else
    redis-py's message on one line."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.strerror:
            return e.strerror.lower()
    return " ".join(str(exc).split()).rstrip(".")
