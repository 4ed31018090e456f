"""Circuit breakers' records: the outcome counts they watch, their states and transitions.

``finish.lua`` counts each task name's runs in ``<ns>:outcomes``; the
dispatcher's breakers (scheduler/breaker.py, scheduler/lifecycle.py) read
them and write their states (``<ns>:breakers``) and transitions
(``<ns>:breakers:transitions``) when they change.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from scheduler.store.base import Batch, Repository
from scheduler.store.connection import translated

TRANSITIONS_KEPT = 1000


class BreakerRecords(Repository):
    """The circuit breakers' records of one namespace."""

    @translated
    def outcome_counts(self) -> dict[str, tuple[int, int]]:
        """(successes, failures) of every task name's runs so far."""
        raw = cast(dict[str, str], self._client.hgetall(self._keys.outcomes))
        out: dict[str, list[int]] = {}
        for field, value in raw.items():
            name, _, kind = field.rpartition("\t")
            pair = out.setdefault(name, [0, 0])
            pair[0 if kind == "ok" else 1] += int(value)
        return {name: (pair[0], pair[1]) for name, pair in out.items()}

    @translated
    def record(
        self,
        states: dict[str, dict[str, Any]],
        transitions: Sequence[dict[str, Any]],
        *,
        pipeline: Batch | None = None,
    ) -> None:
        """Store breakers' new states and append their transitions (newest first)."""
        if not states and not transitions:
            return
        k = self._keys
        with self._writes(pipeline) as pipe:
            if states:
                pipe.hset(k.breakers, mapping={n: json.dumps(v) for n, v in states.items()})
            if transitions:
                pipe.lpush(k.breaker_transitions, *(json.dumps(t) for t in transitions))
                pipe.ltrim(k.breaker_transitions, 0, TRANSITIONS_KEPT - 1)
                pipe.hincrby(k.stats, "breaker_transitions", len(transitions))

    @translated
    def states(self) -> dict[str, dict[str, Any]]:
        """Every breaker's recorded state (name -> state, since, reason, mode)."""
        raw = cast(dict[str, str], self._client.hgetall(self._keys.breakers))
        return {name: json.loads(text) for name, text in sorted(raw.items())}

    @translated
    def transitions(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest breaker transitions, newest first."""
        raw = cast(list[str], self._client.lrange(self._keys.breaker_transitions, 0, limit - 1))
        return [json.loads(text) for text in raw]
