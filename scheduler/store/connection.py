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
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from redis import Redis
from redis.connection import SSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from scheduler.errors import (
    NotLeaderError,
    RedisOutOfMemoryError,
    RedisRefusedError,
    RedisUnreachableError,
    StoreError,
    YardmasterError,
)

P = ParamSpec("P")
R = TypeVar("R")
LOST = (RedisConnectionError, RedisTimeoutError)
"""redis-py's errors for a connection that could not be made or was lost."""


def connect(url: str) -> Redis:
    """A Redis client for ``url`` that decodes replies to ``str``."""
    return Redis.from_url(url, decode_responses=True, socket_keepalive=True)


def server_time(client: Redis) -> float:
    """Redis server time in UNIX seconds: the one clock all components share."""
    seconds, micros = client.time()
    return float(seconds + micros / 1e6)


def answers(url: str, timeout: float = 0.5) -> bool:
    """Whether a Redis at ``url`` answers PING now (a server being started waits on this)."""
    client = Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except RedisError:
        return False
    finally:
        client.close()


def address(client: Redis) -> str:
    """Where ``client`` connects, as ``redis://host:port/db``: for messages, so no password."""
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
