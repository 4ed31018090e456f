"""The solution cache's bookkeeping: counters, entries, clearing.

Entries are written by ``guard_exit.lua`` when a cached task succeeds and
read by ``submit.lua``; this module only reports on them and removes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from scheduler.store.state import StateStore


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


def _entries(store: StateStore, task: str | None) -> list[str]:
    """Live entry keys (for ``task`` only when given); forgets index members that expired."""
    index = store.keys.cache_index
    members = cast(list[str], store.redis.zrange(index, 0, -1))
    live: list[str] = []
    gone: list[str] = []
    for start in range(0, len(members), 1000):
        part = members[start : start + 1000]
        with store.redis.pipeline(transaction=False) as pipe:
            for key in part:
                pipe.hget(key, "n")
            names = pipe.execute()
        for key, name in zip(part, names, strict=True):
            if name is None:
                gone.append(key)
            elif task is None or name == task:
                live.append(key)
    if gone:
        store.redis.zrem(index, *gone)
    return live


def cache_stats(store: StateStore, task: str | None = None) -> CacheStats:
    """The cache's counters and entry count, for every task or for ``task``."""
    raw = cast(dict[str, str], store.redis.hgetall(store.keys.cache_stats))
    suffix = "" if task is None else f":{task}"
    return CacheStats(
        task=task,
        hits=int(raw.get("hits" + suffix, 0)),
        misses=int(raw.get("misses" + suffix, 0)),
        entries=len(_entries(store, task)),
        coalesced=int(raw.get("coalesced", 0)),
        idempotent=int(raw.get("idempotent", 0)),
        evicted=int(raw.get("evicted", 0)),
    )


def cache_clear(store: StateStore, task: str | None = None) -> int:
    """Remove every cached result (or ``task``'s only); returns how many. Counters stay."""
    keys = _entries(store, task)
    for start in range(0, len(keys), 1000):
        part = keys[start : start + 1000]
        with store.redis.pipeline(transaction=False) as pipe:
            pipe.delete(*part)
            pipe.zrem(store.keys.cache_index, *part)
            pipe.execute()
    return len(keys)
