"""Limits: global rate limits per task name, and how many tasks each concurrency key holds.

Rate limits live in ``<ns>:ratelimits``; a concurrency key's members in
``<ns>:conc:<key>``, kept by the claim, finish, requeue and recovery scripts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from scheduler.store.base import Batch, Repository
from scheduler.store.connection import translated


class Limits(Repository):
    """Rate limits and concurrency keys of one namespace."""

    @translated
    def rate_limits(self) -> dict[str, float]:
        """Global rate limits: task name -> tasks per second."""
        return self._numbers(self._keys.rate_limits, float)

    @translated
    def set_rate_limit(
        self, name: str, per_second: float | None, *, pipeline: Batch | None = None
    ) -> None:
        """Set (or with None remove) the global rate limit of a task name; wakes the dispatcher."""
        with self._writes(pipeline, transaction=True) as pipe:
            if per_second is None:
                pipe.hdel(self._keys.rate_limits, name)
            else:
                pipe.hset(self._keys.rate_limits, name, repr(float(per_second)))
            pipe.rpush(self._keys.inbox, json.dumps({"limits": name}))

    @translated
    def concurrency_counts(self, keys: Sequence[str]) -> dict[str, int]:
        """Tasks now dispatched or running per concurrency key, in one round trip."""
        with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.scard(self._keys.concurrency(key))
            counts = pipe.execute()
        return {key: int(n) for key, n in zip(keys, counts, strict=True)}
