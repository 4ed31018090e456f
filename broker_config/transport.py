"""kombu's Redis transport, keeping one Redis client per channel.

kombu's Redis channel builds a new ``redis.Redis`` object for every
acknowledgement and every delivery it records (``Channel.conn_or_acquire``,
called by ``QoS.append`` and ``QoS.ack`` under ``task_acks_late``), and each
new ``redis.Redis`` fills a table of some 200 response callbacks. The
connections come from the channel's pool either way; the client object is
the waste. In a worker running noop tasks it was about a sixth of the main
process's CPU time (py-spy, docs/benchmarks.md).

This transport is kombu's own, with two changes:

- a channel makes that client once and hands the same one out again, until
  its connection pool is replaced (kombu drops the pool on a lost connection)
  or the channel closes;
- a channel closed after its connection's details are gone (Celery closes the
  broker connection when Redis restarts under it, and kombu may have let go of
  them by then) no longer fails trying to put its unacknowledged deliveries
  back on their queues: they stay in kombu's ``unacked`` hash, as they do
  when Redis is down for that step anyway. kombu raised an ``AttributeError``
  there, which Celery takes for an unrecoverable error: the worker exited
  (``tests/test_redis_restart.py`` failed on it in 2 of 25 runs one day and 1 of 4
  another).

- a delivery is recorded in kombu's ``unacked`` hash and index, and forgotten on
  its acknowledgement, by small Lua scripts (``scheduler/store/lua/kombu_unacked.lua``
  and ``kombu_acked.lua``: the same ZADD and HSET, ZREM and HDEL) that Redis 7
  runs even over its ``maxmemory`` (see :mod:`scheduler.store.scripts`). Redis
  refuses every command queued in a MULTI over the limit, so kombu's own blocks
  failed there: the acknowledgement's error ended the worker ("Unrecoverable
  error"), and a full Redis could not drain (docs/reliability.md, "Backpressure").

Every message, key and value on the wire is unchanged, so a plain Celery
worker and a yardmaster worker read each other's queues.

The Celery apps of :mod:`broker_config.celery_app` select it by the alias
``ymredis`` (``broker_transport``), which importing this module registers;
``redis://`` and ``rediss://`` URLs, their TLS options and the transport
options mean what they mean to kombu's transport. ``sentinel://`` URLs take the
Sentinel variant, ``ymsentinel``: kombu's Sentinel channel with the same changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual as kombu_virtual
from kombu.utils.json import dumps

from scheduler.store.scripts import server_major, source

ALIAS = "ymredis"
"""The name ``broker_transport`` selects this transport by."""
SENTINEL_ALIAS = "ymsentinel"
"""The name of its Sentinel variant, for ``sentinel://`` URLs (``master_name`` in the
transport options names the master)."""

log = logging.getLogger("yardmaster.transport")

SCRIPTS = ("kombu_unacked", "kombu_acked")
"""The store's scripts this transport runs in place of kombu's MULTI/EXEC blocks."""


class QoS(kombu_redis.QoS):
    """kombu's Redis QoS; see the module's docstring for :meth:`append` and
    :meth:`restore_unacked`."""

    _ym_scripts: dict[str, Any] | None = None  # made on first use, for the server's version

    def _ym_script(self, client: Any, name: str) -> Any:
        """Script ``name`` registered on ``client``."""
        if self._ym_scripts is None:
            major = server_major(client)
            self._ym_scripts = {n: client.register_script(source(n, major=major)) for n in SCRIPTS}
        return self._ym_scripts[name]

    def append(self, message: Any, delivery_tag: Any) -> None:
        """Record the delivery as unacknowledged, over ``maxmemory`` too."""
        channel: Any = self.channel  # our Channel; kombu's hints name its base
        info = message.delivery_info
        delivery = dumps([message._raw, info["exchange"], info["routing_key"]])
        keys = [self.unacked_index_key, self.unacked_key]
        with channel.conn_or_acquire() as client:
            script = self._ym_script(client, "kombu_unacked")
            script(keys=keys, args=[delivery_tag, time.time(), delivery], client=client)
        kombu_virtual.QoS.append(self, message, delivery_tag)

    def ack(self, delivery_tag: Any) -> None:
        """Forget an acknowledged delivery, over ``maxmemory`` too."""
        self._ym_forget(delivery_tag)
        kombu_virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        """Like kombu's; a rejection without requeue is forgotten as :meth:`ack` does."""
        if requeue:
            super().reject(delivery_tag, requeue)
            return
        self._ym_forget(delivery_tag)
        kombu_virtual.QoS.ack(self, delivery_tag)

    def _ym_forget(self, delivery_tag: Any) -> None:
        """Remove the delivery from kombu's unacked records.

        A task that ran across a broker outage is acknowledged on the channel it came
        from, which Celery closed when the connection was lost; kombu has dropped that
        channel's connection details by then, and asking for its pool raised
        AttributeError, which stopped the worker. The closed channel's last client
        (its pool reconnects) still reaches the same Redis; without one, the delivery
        stays in the unacked hash for kombu's restore (no error: kombu's handler for a
        failed ack reads the closed channel's connection too)."""
        channel: Any = self.channel
        if getattr(channel.connection, "client", None) is None:
            client = channel._ym_last_client
            if client is None:
                log.warning(
                    "delivery %s was acknowledged on a closed channel that never reached "
                    "Redis; it stays in kombu's unacked hash until kombu restores it",
                    delivery_tag,
                )
                return
            try:
                self._ym_acked(client, delivery_tag)
            except Exception as exc:  # Redis still down: kombu's handler would fail too
                log.warning(
                    "delivery %s, acknowledged on a closed channel, stays in kombu's "
                    "unacked hash (%s)",
                    delivery_tag,
                    exc,
                )
            return
        with channel.conn_or_acquire() as client:
            self._ym_acked(client, delivery_tag)

    def _ym_acked(self, client: Any, delivery_tag: Any) -> None:
        script = self._ym_script(client, "kombu_acked")
        script(keys=[self.unacked_index_key, self.unacked_key], args=[delivery_tag], client=client)

    def restore_unacked(self, client: Any = None) -> None:
        """Put unacknowledged deliveries back on their queues, if the channel can still
        reach Redis; otherwise leave them in ``unacked`` (kombu restores them after the
        visibility timeout; yardmaster's records do not depend on it)."""
        delivered = self._delivered
        if client is None and self.channel.connection.client is None and delivered is not None:
            log.warning(
                "broker connection closed without its details: %d unacknowledged "
                "deliveries stay in kombu's unacked hash",
                len(delivered),
            )
            delivered.clear()
            return
        super().restore_unacked(client)


class Channel(kombu_redis.Channel):
    """kombu's Redis channel, reusing one client for its own commands."""

    QoS = QoS
    _ym_client: Any = None
    _ym_pool: Any = None
    _ym_last_client: Any = None  # kept by close(), for acks that arrive after it

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """``client`` if given, else this channel's client (made again for a new pool)."""
        if client:
            yield client
            return
        pool = self.pool
        if self._ym_client is None or self._ym_pool is not pool:
            # kombu's own factory, which its type hints do not show
            self._ym_client = self._create_client()  # type: ignore[attr-defined]
            self._ym_pool = pool
        yield self._ym_client

    def close(self) -> None:
        self._ym_last_client = self._ym_client or self._ym_last_client
        self._ym_client = self._ym_pool = None
        try:
            super().close()  # may take a client again, to put deliveries back
        finally:
            self._ym_client = self._ym_pool = None


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """:class:`Channel` on kombu's Sentinel channel: its pool finds the current master
    through the Sentinels (and again after a failover); the client reuse, the Lua acks
    and the closed-channel handling above are unchanged."""

    QoS = QoS


class SentinelTransport(kombu_redis.SentinelTransport):
    """kombu's Sentinel transport with :class:`SentinelChannel` (alias ``ymsentinel``)."""

    Channel = SentinelChannel


TRANSPORT_ALIASES.setdefault(ALIAS, f"{__name__}:Transport")
TRANSPORT_ALIASES.setdefault(SENTINEL_ALIAS, f"{__name__}:SentinelTransport")
