"""``YM_DURABLE_REPLICAS``: an accepted write waits until replicas hold it.

Redis replicates asynchronously: a master that dies can take writes it already
confirmed with it. ``WAIT N timeout`` answers once ``N`` replicas confirmed every
write the connection asking made before it, or when the timeout runs out, with
how many did. A submission's scripts may have gone over other connections of the
pool, so :func:`wait_replicas` first writes one counter on the connection it
waits on: the replication stream is one ordered log, so replicas that confirmed
that write hold everything written before it. The workers' report lines send
their WAIT after their finishes on their own connection
(:mod:`scheduler.store.reports`).
"""

from __future__ import annotations

from redis import Redis

from scheduler.errors import ReplicationError
from scheduler.keys import Keys
from scheduler.settings import Settings
from scheduler.store.connection import address


def wait_replicas(client: Redis, keys: Keys, settings: Settings, what: str) -> None:
    """Wait until ``YM_DURABLE_REPLICAS`` replicas hold every write made so far (nothing
    when it is 0).

    Raises:
        ReplicationError: Fewer replicas confirmed within ``YM_DURABLE_TIMEOUT``; the
            writes stay on the master.
    """
    required = settings.durable_replicas
    if not required:
        return
    with client.pipeline(transaction=False) as pipe:
        pipe.incr(keys.replicated)
        pipe.wait(required, int(settings.durable_timeout * 1000))
        _, acknowledged = pipe.execute()
    if int(acknowledged) < required:
        raise ReplicationError(
            address(client), what, required, int(acknowledged), settings.durable_timeout
        )
