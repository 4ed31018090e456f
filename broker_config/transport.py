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

Every message, key and command on the wire is unchanged, so a plain Celery
worker and a yardmaster worker read each other's queues.

The Celery apps of :mod:`broker_config.celery_app` select it by the alias
``ymredis`` (``broker_transport``), which importing this module registers;
``redis://`` and ``rediss://`` URLs, their TLS options and the transport
options mean what they mean to kombu's transport.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis

ALIAS = "ymredis"
"""The name ``broker_transport`` selects this transport by."""

log = logging.getLogger("yardmaster.transport")


class QoS(kombu_redis.QoS):
    """kombu's Redis QoS; see the module's docstring for :meth:`restore_unacked`."""

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
        self._ym_client = self._ym_pool = None
        try:
            super().close()  # may take a client again, to put deliveries back
        finally:
            self._ym_client = self._ym_pool = None


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel


TRANSPORT_ALIASES.setdefault(ALIAS, f"{__name__}:Transport")
