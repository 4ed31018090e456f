"""What every repository of the store shares, and batches of writes.

A repository (rq's job, queue and registry modules are the model) holds the
operations on one stored thing: its keys come from the one :class:`Keys`, its
Lua scripts from the one :class:`Scripts` loader, and the
:class:`~scheduler.store.facade.Store` builds them all on one client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

from scheduler.keys import Keys
from scheduler.settings import Settings
from scheduler.store.connection import server_time, translate
from scheduler.store.scripts import Scripts

N = TypeVar("N", int, float)


class Batch:
    """Writes queued to reach Redis together, in one round trip, when the batch ends.

    Made by :meth:`Store.batch() <scheduler.store.facade.Store.batch>`; the
    writers that accept ``pipeline=`` queue their commands in it instead of
    sending them.
    """

    def __init__(self, pipe: Pipeline) -> None:
        self.pipe = pipe


class Repository:
    """The client, key names, settings and scripts a repository works with.

    Args:
        client: A Redis client created with ``decode_responses=True``.
        keys: The namespace's key builder.
        settings: Cluster settings (TTLs, caps, learning rates).
        scripts: The Lua scripts loaded for ``client``.
    """

    def __init__(self, client: Redis, keys: Keys, settings: Settings, scripts: Scripts) -> None:
        self._client = client
        self._keys = keys
        self._settings = settings
        self._scripts = scripts

    def _numbers(self, key: str, kind: Callable[[str], N]) -> dict[str, N]:
        """The hash ``key`` with each value read as a number of ``kind``."""
        raw = cast(dict[str, str], self._client.hgetall(key))
        return {field: kind(value) for field, value in raw.items()}

    def _server_time(self) -> float:
        """Redis server time in UNIX seconds: the one clock all components share."""
        return server_time(self._client)

    @contextmanager
    def _writes(self, pipeline: Batch | None, *, transaction: bool = False) -> Iterator[Any]:
        """Where a writer sends its commands: the caller's batch, or one of its own that is
        sent when the block ends."""
        if pipeline is not None:
            yield pipeline.pipe
            return
        with self._client.pipeline(transaction=transaction) as pipe:
            yield pipe
            pipe.execute()


@contextmanager
def batch(client: Redis, *, transaction: bool = True) -> Iterator[Batch]:
    """A :class:`Batch` on ``client``, sent (as one MULTI/EXEC unless ``transaction`` is
    False) when the block ends without an error."""
    with client.pipeline(transaction=transaction) as pipe:
        yield Batch(pipe)
        try:
            pipe.execute()
        except RedisError as exc:
            raise translate(exc, client) from exc
