"""Strategy configuration versions: live steering, its history, what runs, adaptive switches.

``<ns>:strategy`` holds the latest version, what the leading dispatcher
runs (``active``) and the verdict of the latest guarded rollout
(``rollout``); ``<ns>:strategy:history`` every version; the adaptive
strategy's switches are kept in ``<ns>:strategy:switches``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from scheduler.store.base import Batch, Repository
from scheduler.store.connection import translated
from scheduler.strategy_config import ActiveStrategy, StrategyVersion

SWITCHES_KEPT = 1000


class StrategyVersions(Repository):
    """The strategy configuration of one namespace."""

    @translated
    def steer(self, record: dict[str, Any], expected: int | None = None) -> tuple[int, bool]:
        """Store a new configuration version (``steer.lua``); returns (version, applied?).

        With ``expected``, it applies only if that is still the current version
        (otherwise it returns the current version and False).
        """
        k = self._keys
        body = json.dumps(record, separators=(",", ":"), sort_keys=True)
        reply = self._scripts(
            "steer",
            [k.strategy, k.strategy_history, k.inbox],
            [body, "" if expected is None else expected],
        )
        return int(reply[0]), reply[1] == "ok"

    @translated
    def latest(self) -> StrategyVersion | None:
        """The latest configuration version, or None when never steered."""
        raw = cast(str | None, self._client.hget(self._keys.strategy, "record"))
        return None if raw is None else StrategyVersion.from_json(raw)

    @translated
    def history(self, limit: int = 0) -> list[StrategyVersion]:
        """Configuration versions, oldest first (the last ``limit`` when given)."""
        start = -limit if limit > 0 else 0
        raw = cast(list[str], self._client.lrange(self._keys.strategy_history, start, -1))
        return [StrategyVersion.from_json(text) for text in raw]

    @translated
    def set_active(
        self,
        strategy: str,
        version: int,
        token: str,
        *,
        pipeline: Batch | None = None,
    ) -> None:
        """Record what the leading dispatcher (``token``) now runs."""
        active = {"strategy": strategy, "version": version, "since": self._server_time()}
        active["dispatcher"] = token[:8]
        with self._writes(pipeline) as pipe:
            pipe.hset(self._keys.strategy, "active", json.dumps(active))

    @translated
    def active(self) -> ActiveStrategy | None:
        """What the leading dispatcher said it runs, or None before any did."""
        raw = cast(str | None, self._client.hget(self._keys.strategy, "active"))
        if raw is None:
            return None
        data = json.loads(raw)
        return ActiveStrategy(
            str(data["strategy"]),
            int(data["version"]),
            float(data["since"]),
            str(data["dispatcher"]),
        )

    @translated
    def rollout(self) -> dict[str, Any] | None:
        """The guarded rollout last watched (its ``version``, ``state``, ``reason``, ...)."""
        raw = cast(str | None, self._client.hget(self._keys.strategy, "rollout"))
        return None if raw is None else cast(dict[str, Any], json.loads(raw))

    @translated
    def mark_watched(self, ttl: float) -> None:
        """Say that a rollout guard runs, for the next ``ttl`` seconds."""
        self._client.set(self._keys.guard_watcher, "1", px=max(1, int(ttl * 1000)))

    @translated
    def watched(self) -> bool:
        """Whether a rollout guard has said it runs (see :meth:`mark_watched`)."""
        return bool(self._client.exists(self._keys.guard_watcher))

    @translated
    def set_rollout(self, verdict: dict[str, Any]) -> None:
        """Record where the guarded rollout of ``verdict["version"]`` stands."""
        self._client.hset(self._keys.strategy, "rollout", json.dumps(verdict, sort_keys=True))

    @translated
    def record_switches(
        self, switches: Sequence[dict[str, Any]], *, pipeline: Batch | None = None
    ) -> None:
        """Count and keep the adaptive strategy's switches (newest first, the last 1000)."""
        if not switches:
            return
        k = self._keys
        with self._writes(pipeline) as pipe:
            pipe.hincrby(k.stats, "strategy_switches", len(switches))
            pipe.lpush(k.strategy_switches, *(json.dumps(sw) for sw in switches))
            pipe.ltrim(k.strategy_switches, 0, SWITCHES_KEPT - 1)

    @translated
    def recent_switches(self, limit: int = 20) -> list[dict[str, Any]]:
        """The adaptive strategy's latest switches, newest first."""
        raw = cast(list[str], self._client.lrange(self._keys.strategy_switches, 0, limit - 1))
        return [json.loads(text) for text in raw]
