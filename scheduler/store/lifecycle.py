"""Redis access for retries, circuit breakers and cancellation of running tasks.

Kept beside :class:`~scheduler.store.state.StateStore` (whose key layout and
scripts it uses) so the core store stays about the core life of a task.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from scheduler.store.state import StateStore

TRANSITIONS_KEPT = 1000
CONTROL_TTL = 3600


class LifecycleStore:
    """Retry promotion, breaker records and terminate requests for one namespace.

    Args:
        store: The cluster's state store.
    """

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.redis = store.redis
        self.keys = store.keys

    # -- retries ---------------------------------------------------------------
    def promote(self, limit: int = 10_000) -> tuple[int, float | None]:
        """Move due retries to pending (the dispatcher hears of them through its inbox).

        Returns how many moved and the next not-before time still waiting (None: none).
        """
        k = self.keys
        moved, nxt = self.store.scripts(
            "promote", [k.delayed, k.pending, k.inbox], [k.task_prefix, limit]
        )
        return int(moved), (float(nxt) if nxt not in ("", None) else None)

    def delayed_count(self) -> int:
        """Tasks waiting out a retry backoff."""
        return int(self.redis.zcard(self.keys.delayed))

    # -- circuit breakers ------------------------------------------------------
    def end_pending(self, task_id: str, state: str, error: str, reason: str) -> str:
        """End a pending task unrun in terminal ``state`` with ``reason``; see ``end_pending.lua``."""
        k, s = self.keys, self.store.settings
        keys = [k.task(task_id), k.pending, k.stats, k.pending_by_priority, k.events]
        args = [task_id, state, error, reason, s.result_ttl, s.events_maxlen]
        return str(self.store.scripts("end_pending", keys, args))

    def outcome_counts(self) -> dict[str, tuple[int, int]]:
        """(successes, failures) of every task name's runs so far."""
        raw = cast(dict[str, str], self.redis.hgetall(self.keys.outcomes))
        out: dict[str, list[int]] = {}
        for field, value in raw.items():
            name, _, kind = field.rpartition("\t")
            pair = out.setdefault(name, [0, 0])
            pair[0 if kind == "ok" else 1] += int(value)
        return {name: (pair[0], pair[1]) for name, pair in out.items()}

    def record_breakers(
        self, states: dict[str, dict[str, Any]], transitions: Sequence[dict[str, Any]]
    ) -> None:
        """Store breakers' new states and append their transitions (newest first)."""
        if not states and not transitions:
            return
        k = self.keys
        with self.redis.pipeline(transaction=False) as pipe:
            if states:
                pipe.hset(k.breakers, mapping={n: json.dumps(v) for n, v in states.items()})
            if transitions:
                pipe.lpush(k.breaker_transitions, *(json.dumps(t) for t in transitions))
                pipe.ltrim(k.breaker_transitions, 0, TRANSITIONS_KEPT - 1)
                pipe.hincrby(k.stats, "breaker_transitions", len(transitions))
            pipe.execute()

    def breakers(self) -> dict[str, dict[str, Any]]:
        """Every breaker's recorded state (name -> state, since, reason, mode)."""
        raw = cast(dict[str, str], self.redis.hgetall(self.keys.breakers))
        return {name: json.loads(text) for name, text in sorted(raw.items())}

    def breaker_transitions(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest breaker transitions, newest first."""
        raw = cast(list[str], self.redis.lrange(self.keys.breaker_transitions, 0, limit - 1))
        return [json.loads(text) for text in raw]

    # -- cancelling running tasks ----------------------------------------------
    def request_terminate(self, worker: str, task_id: str, attempt: int, signal: str) -> None:
        """Ask ``worker``'s main process to kill its run of ``task_id`` (attempt ``attempt``)."""
        entry = {"terminate": task_id, "attempt": attempt, "signal": signal}
        key = self.keys.worker_control(worker)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, json.dumps(entry))
            pipe.expire(key, CONTROL_TTL)  # a worker that is gone leaves no list behind
            pipe.execute()

    def next_control(self, worker: str, block: float) -> dict[str, Any] | None:
        """The next request to ``worker``'s main process, waiting up to ``block`` seconds."""
        got = cast(
            tuple[str, str] | None,
            self.redis.blpop([self.keys.worker_control(worker)], max(block, 0.01)),
        )
        return None if got is None else cast(dict[str, Any], json.loads(got[1]))

    def cancel_requested(self, task_id: str) -> bool:
        """Whether a cancel was asked for while ``task_id`` runs."""
        return self.redis.hget(self.keys.task(task_id), "cancel_requested") == "1"

    def running_on(self, task_id: str) -> tuple[str, str, int]:
        """(state, worker, attempt) of a task."""
        row = cast(
            list[str | None],
            self.redis.hmget(self.keys.task(task_id), "state", "worker", "attempt"),
        )
        return row[0] or "missing", row[1] or "", int(row[2] or 0)
