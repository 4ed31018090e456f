"""Redis behind Sentinel: ``sentinel://`` URLs, a client that follows the master, and
what to say when no master can be found.

``YM_REDIS_URL`` takes the form Celery and kombu take for a Sentinel broker:
``sentinel://[:PASSWORD@]HOST:PORT;sentinel://HOST:PORT/DB``, one entry per
Sentinel, the database number (and the master's password) on any of them. The
master's name is a setting of its own (``YM_SENTINEL_MASTER``, default
``mymaster``), as kombu takes it from ``master_name``.

The client is redis-py's ``Sentinel(...).master_for(name)``: each new connection
asks the Sentinels where the master is, and a connection that finds itself on a
replica (``READONLY``, as a demoted master answers) is dropped, so the next
command goes to the promoted one. Every other client yardmaster makes comes
from this one's pool (the workers' report lines) or is kombu's own Sentinel
channel (:mod:`broker_config.transport`), so all of them follow a failover.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from redis import Redis
from redis.exceptions import RedisError
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection

from scheduler.errors import SettingsError, StoreError

SCHEME = "sentinel"
DEFAULT_PORT = 26379
"""Sentinel's own port, when an entry names none (as kombu assumes)."""


def is_sentinel(url: str) -> bool:
    """Whether ``url`` names Redis through Sentinels (``sentinel://...``)."""
    return url.startswith(SCHEME + "://")


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed ``sentinel://`` URL.

    Attributes:
        nodes: (host, port) of every Sentinel, in the URL's order.
        db: The database number on the master.
        username: The master's user (None: the default user).
        password: The master's password (None: no AUTH).
    """

    nodes: tuple[tuple[str, int], ...]
    db: int
    username: str | None
    password: str | None

    def display(self) -> str:
        """The URL without its password, for messages."""
        hosts = ";".join(f"{SCHEME}://{host}:{port}" for host, port in self.nodes)
        return f"{hosts}/{self.db}"


def parse(url: str) -> SentinelUrl:
    """Parse a ``sentinel://H:P;sentinel://H:P/DB`` URL.

    Raises:
        SettingsError: an entry that is not ``sentinel://HOST[:PORT]``, a port or
            database that is not a number, or two entries naming different databases.
    """
    nodes: list[tuple[str, int]] = []
    dbs: set[int] = set()
    username = password = None
    for entry in url.split(";"):
        shown = entry.split("@")[-1]
        try:
            parts = urlsplit(entry.strip())
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise SettingsError(
                "YM_REDIS_URL", shown, "sentinel://HOST:PORT entries", problem="a bad port"
            ) from None
        if parts.scheme != SCHEME or not parts.hostname:
            raise SettingsError(
                "YM_REDIS_URL",
                shown,
                "sentinel://HOST:PORT entries separated by ';', then /DB",
                problem="not a sentinel://HOST[:PORT] entry",
            )
        nodes.append((parts.hostname, port))
        if parts.password is not None:
            username = unquote(parts.username) if parts.username else None
            password = unquote(parts.password)
        path = parts.path.strip("/")
        if path:
            if not path.isdigit():
                raise SettingsError("YM_REDIS_URL", shown, "a database number after the last '/'")
            dbs.add(int(path))
    if len(dbs) > 1:
        raise SettingsError(
            "YM_REDIS_URL", sorted(dbs), "one database number", problem="two entries differ"
        )
    return SentinelUrl(tuple(nodes), dbs.pop() if dbs else 0, username, password)


def master_client(url: str, master: str, *, timeout: float | None, **options: Any) -> Redis:
    """A client on the current master of ``master``, found through the Sentinels of ``url``.

    Args:
        url: A ``sentinel://`` URL (see :func:`parse`).
        master: The name the Sentinels monitor the master by.
        timeout: Seconds to wait for a connection or a reply (None: no limit); the
            Sentinels themselves are given at most 2 seconds each, so one that is down
            does not hold the others up.
        options: More connection options for the master (``decode_responses``...).
    """
    found = parse(url)
    asked = 2.0 if timeout is None else min(timeout, 2.0)
    sentinels = Sentinel(
        list(found.nodes),
        sentinel_kwargs={"socket_timeout": asked, "socket_connect_timeout": asked},
    )
    client: Redis = sentinels.master_for(
        master,
        db=found.db,
        username=found.username,
        password=found.password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        **options,
    )
    return client


class DirectConnection(SentinelManagedConnection):
    """A Sentinel-managed connection that may be used outside its pool (the workers'
    report lines pipeline on one connection of their own).

    redis-py's ``send_packed_command`` opens a missing socket with the base class's
    ``connect_check_health``, which goes to the connection's host and port as they
    stand: unset before the first connect, so the default ``localhost:6379``, and after
    a failover the old master. Its pool never lets that happen (it connects a
    connection before handing it out); this class asks the Sentinels first, as the
    pool's connections do.
    """

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self._sock:
            self.connect()  # type: ignore[no-untyped-call]
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


def dedicated_connection(client: Redis) -> Any:
    """A new connection to where ``client`` connects, outside its pool (Any: redis-py
    leaves its ``send_command`` and ``disconnect`` untyped)."""
    pool: Any = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        return DirectConnection(**pool.connection_kwargs)  # type: ignore[no-untyped-call]
    return pool.connection_class(**pool.connection_kwargs)


def is_managed(client: Redis) -> bool:
    """Whether ``client`` finds its master through Sentinels."""
    return isinstance(client.connection_pool, SentinelConnectionPool)


def address(client: Redis) -> str:
    """Where a Sentinel-managed ``client`` connects, for messages: its Sentinels and master."""
    pool: Any = client.connection_pool
    nodes = ";".join(
        f"{SCHEME}://{s.connection_pool.connection_kwargs.get('host')}:"
        f"{s.connection_pool.connection_kwargs.get('port')}"
        for s in pool.sentinel_manager.sentinels
    )
    return f"{nodes}/{pool.connection_kwargs.get('db', 0)} (master {pool.service_name!r})"


def why_no_master(client: Redis) -> str:
    """Why no master could be found: no Sentinel answered, or those that did know no
    master by that name (asked again now; called only when a connection failed)."""
    pool: Any = client.connection_pool
    name = pool.service_name
    answered = []
    for sentinel in pool.sentinel_manager.sentinels:
        kwargs = sentinel.connection_pool.connection_kwargs
        try:
            masters = sentinel.sentinel_masters()
        except RedisError:
            continue
        answered.append((f"{kwargs.get('host')}:{kwargs.get('port')}", masters))
    if not answered:
        return (
            "no Sentinel answered; check that the Sentinels run and that YM_REDIS_URL "
            "names their addresses"
        )
    known = sorted({str(m) for _, masters in answered for m in masters})
    if all(name not in masters for _, masters in answered):
        return (
            f"the Sentinels at {', '.join(a for a, _ in answered)} monitor no master named "
            f"{name!r} (they know: {', '.join(known) or 'none'}); check YM_SENTINEL_MASTER"
        )
    return (
        f"the Sentinels know master {name!r} but report it down or have no quorum; "
        "check the master and its replicas"
    )


def ask(host: str, port: int, *command: str) -> Any:
    """One command to the Redis or Sentinel at ``host:port``, its reply decoded (the
    local topology's checks: :mod:`scheduler.sentinel_topology`).

    Raises:
        StoreError: It did not answer within a second, or refused the command.
    """
    client = Redis(
        host=host, port=port, socket_timeout=1.0, socket_connect_timeout=1.0, decode_responses=True
    )
    try:
        return client.execute_command(*command)  # type: ignore[no-untyped-call]
    except RedisError as exc:
        raise StoreError(f"{host}:{port} did not answer {' '.join(command)}: {exc}") from exc
    finally:
        client.close()
