"""The solution cache's bookkeeping: counters, entries, clearing.

Entries are written by ``guard_exit.lua`` when a cached task succeeds and
read by ``submit.lua``; this module only reports on them and removes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from scheduler.store.base import Repository
from scheduler.store.connection import translated


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Solution-cache counters (lifetime) and live entries, for all tasks or one name.

    Attributes:
        task: The task name the figures are for, or None for every task.
        hits: Submissions answered from the cache.
        misses: Cached submissions that had to run.
        entries: Results in the cache now.
        coalesced: Submissions attached to an identical task in flight (all tasks).
        idempotent: Submissions answered by their idempotency key (all tasks).
        evicted: Entries evicted by the size bound (all tasks).
    """

    task: str | None
    hits: int
    misses: int
    entries: int
    coalesced: int
    idempotent: int
    evicted: int

    @property
    def hit_rate(self) -> float:
        """hits / (hits + misses); 0 before any lookup."""
        looked = self.hits + self.misses
        return self.hits / looked if looked else 0.0

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready form."""
        return {
            "task": self.task,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": round(self.hit_rate, 4),
            "entries": self.entries,
            "coalesced": self.coalesced,
            "idempotent": self.idempotent,
            "evicted": self.evicted,
        }


class SolutionCache(Repository):
    """The solution cache of one namespace: its counters and entries."""

    @translated
    def stats(self, task: str | None = None) -> CacheStats:
        """The cache's counters and entry count, for every task or for ``task``."""
        raw = cast(dict[str, str], self._client.hgetall(self._keys.cache_stats))
        suffix = "" if task is None else f":{task}"
        return CacheStats(
            task=task,
            hits=int(raw.get("hits" + suffix, 0)),
            misses=int(raw.get("misses" + suffix, 0)),
            entries=len(self._entries(task)),
            coalesced=int(raw.get("coalesced", 0)),
            idempotent=int(raw.get("idempotent", 0)),
            evicted=int(raw.get("evicted", 0)),
        )

    @translated
    def clear(self, task: str | None = None) -> int:
        """Remove every cached result (or ``task``'s only); returns how many. Counters stay."""
        keys = self._entries(task)
        for start in range(0, len(keys), 1000):
            part = keys[start : start + 1000]
            with self._client.pipeline(transaction=False) as pipe:
                pipe.delete(*part)
                pipe.zrem(self._keys.cache_index, *part)
                pipe.execute()
        return len(keys)

    def _entries(self, task: str | None) -> list[str]:
        """Live entry keys (for ``task`` only when given); forgets index members that expired."""
        index = self._keys.cache_index
        members = cast(list[str], self._client.zrange(index, 0, -1))
        live: list[str] = []
        gone: list[str] = []
        for start in range(0, len(members), 1000):
            part = members[start : start + 1000]
            with self._client.pipeline(transaction=False) as pipe:
                for key in part:
                    pipe.hget(key, "n")
                names = pipe.execute()
            for key, name in zip(part, names, strict=True):
                if name is None:
                    gone.append(key)
                elif task is None or name == task:
                    live.append(key)
        if gone:
            self._client.zrem(index, *gone)
        return live
