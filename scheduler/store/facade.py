"""The store: every read and write of yardmaster state in Redis, one repository per stored thing.

A caller finds an operation by what it acts on: ``store.tasks.cancel(...)``,
``store.workers.load()``, ``store.leases.leader()``. The repositories share
one client, one :class:`~scheduler.keys.Keys` and one script loader. Writers
that must be atomic are Lua scripts (``lua/``); the rest are plain commands,
batched in pipelines where a caller handles many things at once. Every
method raises yardmaster's store errors (:mod:`scheduler.errors`), never
redis-py's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from redis import Redis
from redis.exceptions import ResponseError

from scheduler.keys import Keys
from scheduler.settings import Settings
from scheduler.store.base import Batch, batch
from scheduler.store.breakers import BreakerRecords
from scheduler.store.cache import SolutionCache
from scheduler.store.connection import address, connect, server_time, translated
from scheduler.store.deliveries import Deliveries
from scheduler.store.demo import DemoRecords
from scheduler.store.estimates import LearnedEstimates
from scheduler.store.events import Events
from scheduler.store.guard import Guards
from scheduler.store.handoff import HandOff
from scheduler.store.inbox import Inbox
from scheduler.store.leases import Leases
from scheduler.store.limits import Limits
from scheduler.store.pending import PendingQueue
from scheduler.store.scripts import Scripts
from scheduler.store.strategy import StrategyVersions
from scheduler.store.tasks import Tasks
from scheduler.store.workers import Workers
from scheduler.store.workflows import Workflows


class Store:
    """yardmaster's state in one Redis namespace, by stored thing.

    Args:
        client: A Redis client created with ``decode_responses=True`` (see
            :func:`~scheduler.store.connection.connect`).
        settings: Cluster settings (namespace, TTLs, learning rates).

    Attributes:
        tasks: Task records: submit, cancel, end unrun, read, page by state.
        workflows: Submission with dependencies, and the tasks of each workflow.
        deliveries: A worker's start and finish of each delivery.
        pending: The pending queue: claim, requeue, recover, promote retries, counts.
        handoff: The hand-off list the dispatcher keeps for freed slots.
        inbox: The dispatcher's inbox.
        workers: Workers: register, heartbeat, close, deregister, load, warm keys,
            orphan policies, control requests, their queues.
        leases: The dispatcher lease and who leads.
        estimates: Duration EMAs and affinity scores.
        strategy: Strategy configuration versions, what runs, adaptive switches.
        limits: Rate limits and concurrency keys.
        cache: The solution cache's counters and entries.
        events: The events stream and the lifetime counters.
        guards: Execution guards.
        breakers: Circuit breakers' outcome counts, states and transitions.
        demo: What the demo tasks record.
        keys: The namespace's key builder.
        scripts: The Lua scripts, loaded for ``client``.
        client: The Redis client itself, for tests that check what is stored; no
            module outside :mod:`scheduler.store` uses it.
        url: Where ``client`` connects, without credentials (for messages).
    """

    def __init__(self, client: Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.keys = Keys(settings.namespace)
        self.scripts = Scripts(client)
        self.url = address(client)
        shared = (client, self.keys, settings, self.scripts)
        self.tasks = Tasks(*shared)
        self.workflows = Workflows(*shared)
        self.deliveries = Deliveries(*shared)
        self.pending = PendingQueue(*shared)
        self.handoff = HandOff(*shared)
        self.inbox = Inbox(*shared)
        self.workers = Workers(*shared, pending=self.pending)
        self.leases = Leases(*shared)
        self.estimates = LearnedEstimates(*shared)
        self.strategy = StrategyVersions(*shared)
        self.limits = Limits(*shared)
        self.cache = SolutionCache(*shared)
        self.events = Events(*shared)
        self.guards = Guards(*shared)
        self.breakers = BreakerRecords(*shared)
        self.demo = DemoRecords(*shared)

    @classmethod
    def from_url(cls, url: str, settings: Settings, *, timeout: float | None = None) -> Store:
        """A store on the Redis at ``url``, waiting at most ``timeout`` seconds for a
        connection or a reply (None: no limit; see :func:`connection.connect`)."""
        return cls(connect(url, timeout=timeout, master=settings.sentinel_master), settings)

    @property
    def _client(self) -> Redis:
        return self.client

    @translated
    def server_time(self) -> float:
        """Redis server time in UNIX seconds: the one clock all components share."""
        return server_time(self.client)

    @translated
    def ping(self) -> bool:
        """Whether Redis answers now (raises a store error when it cannot be reached)."""
        return bool(self.client.ping())

    @translated
    def memory(self) -> dict[str, Any] | None:
        """Redis's memory: ``used_bytes``, ``max_bytes`` (0: no ``maxmemory`` limit) and
        ``ratio`` (used / max; None without a limit), from ``INFO memory``; None where the
        server refuses ``INFO`` (an ACL user without it), so that the rest is still read."""
        try:
            info = self.client.info("memory")
        except ResponseError:
            return None
        used = int(info.get("used_memory", 0))
        limit = int(info.get("maxmemory", 0))
        return {"used_bytes": used, "max_bytes": limit, "ratio": used / limit if limit else None}

    @translated
    def eviction_warning(self) -> str | None:
        """A warning to log at start-up when Redis's ``maxmemory-policy`` evicts keys
        (anything but ``noeviction``): evicted keys are lost tasks and results. None when
        the policy is ``noeviction``, or when the server refuses ``CONFIG GET`` (a managed
        Redis or an ACL user without it: nothing is known, so nothing is said)."""
        try:
            reply = cast(dict[str, str], self.client.config_get("maxmemory-policy"))
        except ResponseError:
            return None
        policy = reply.get("maxmemory-policy", "noeviction")
        if policy == "noeviction":
            return None
        return (
            f"Redis at {address(self.client)} has maxmemory-policy {policy}: when it fills, "
            "it evicts keys, and an evicted key is a lost task, result or lock. Set "
            "maxmemory-policy noeviction; yardmaster then refuses new work before Redis is "
            'full (docs/reliability.md, "Backpressure")'
        )

    @contextmanager
    def batch(self, *, transaction: bool = True) -> Iterator[Batch]:
        """Writes that reach Redis together when the block ends: pass the batch as
        ``pipeline=`` to the writers that take one (rq's convention)."""
        with batch(self.client, transaction=transaction) as writes:
            yield writes
