"""What the cluster learned: duration EMAs per duration key, affinity scores per worker.

``finish.lua`` writes both with every finished run; the dispatcher reads them
all when it takes over, and learns each update from the slot-freed inbox entry
afterwards.
"""

from __future__ import annotations

from typing import cast

from scheduler.store.base import Repository
from scheduler.store.connection import translated


class LearnedEstimates(Repository):
    """Duration EMAs (``<ns>:ema``) and affinity scores (``<ns>:affinity:<key>``)."""

    @translated
    def durations(self) -> dict[str, float]:
        """Duration EMA per duration key."""
        return self._numbers(self._keys.durations, float)

    @translated
    def affinity_scores(self, affinity_key: str) -> dict[str, float]:
        """Affinity score per worker for one affinity key."""
        return self._numbers(self._keys.affinity(affinity_key), float)

    @translated
    def all_affinity(self, limit: int = 200_000) -> dict[tuple[str, str], float]:
        """Every (affinity key, worker) score, up to ``limit`` keys (a dispatcher taking over)."""
        prefix = self._keys.affinity_prefix
        names: list[str] = []
        for name in self._client.scan_iter(match=prefix + "*", count=1000):
            names.append(cast(str, name))
            if len(names) >= limit:
                break
        out: dict[tuple[str, str], float] = {}
        for start in range(0, len(names), 1000):
            part = names[start : start + 1000]
            with self._client.pipeline(transaction=False) as pipe:
                for name in part:
                    pipe.hgetall(name)
                replies = pipe.execute()
            for name, raw in zip(part, replies, strict=True):
                key = name[len(prefix) :]
                for worker, score in raw.items():
                    out[(key, worker)] = float(score)
        return out
