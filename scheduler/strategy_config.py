"""The live strategy configuration, as versions are set and applied (live steering:
scheduler/tuning/steering.py, the store's StrategyVersions, ``yardmaster strategy``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StrategyVersion:
    """One version of the live strategy configuration (live steering).

    Attributes:
        version: 1, 2, ... in the order they were set.
        strategy: Strategy name.
        params: Strategy settings that differ from the cluster's (``YM_*``) ones.
        who: Who set it.
        at: When (Redis server time, UNIX seconds).
        note: Free text; a rollback says which version it restored.
        initial: Kept by version 1 only: the strategy of version 0, the configuration
            before any change (the dispatcher's own ``YM_STRATEGY``), for a rollback to it.
        experiment: The tune experiment whose candidate this is ("" when set by hand).
        guard: A guarded rollout (``window`` seconds, the ``previous`` configuration to
            go back to: ``strategy``, ``params``, ``version``); None when unguarded.
    """

    version: int
    strategy: str
    params: dict[str, Any]
    who: str
    at: float
    note: str = ""
    initial: str = ""
    experiment: str = ""
    guard: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, text: str) -> StrategyVersion:
        """Decode a record written by ``steer.lua``."""
        raw = json.loads(text)
        return cls(
            version=int(raw["version"]),
            strategy=str(raw["strategy"]),
            params=dict(raw.get("params") or {}),
            who=str(raw.get("who", "")),
            at=float(raw["at"]),
            note=str(raw.get("note", "")),
            initial=str(raw.get("initial", "")),
            experiment=str(raw.get("experiment", "")),
            guard=raw.get("guard") or None,
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "version": self.version,
            "strategy": self.strategy,
            "params": self.params,
            "who": self.who,
            "at": self.at,
            "note": self.note,
            "experiment": self.experiment,
            "guard": self.guard,
        }


@dataclass(frozen=True, slots=True)
class ActiveStrategy:
    """What the leading dispatcher runs now.

    Attributes:
        strategy: Strategy name (for ``adaptive``, the adaptive strategy itself).
        version: The configuration version applied; 0 means the cluster settings
            (``YM_STRATEGY``), never steered.
        since: When it was applied (Redis server time).
        dispatcher: The dispatcher's lease token (first 8 characters).
    """

    strategy: str
    version: int
    since: float
    dispatcher: str
