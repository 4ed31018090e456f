"""Circuit breakers per task name: pure state machines fed with outcome counts.

A breaker is ``closed`` while its task name mostly succeeds. When the share of
failures over the last ``window`` seconds reaches ``failure_rate`` (with at
least ``min_calls`` outcomes in that window) it ``opens``: tasks of that name
wait in pending (mode ``wait``) or fail at once (mode ``fail``) instead of
burning workers. After ``cooldown`` seconds it turns ``half_open`` and lets
``probes`` tasks through; it closes when they all succeed and opens again on a
failure.

The breaker sees cumulative (successes, failures) counters per task name, as
``finish.lua`` keeps them in Redis, sampled by the dispatcher; it keeps the
samples of the last window and differences them. It never touches Redis.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class BreakerState(StrEnum):
    """Where a task name's breaker is."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerPolicy(BaseModel):
    """When a breaker opens and how it recovers (``YM_BREAKER_*``, per name overridable)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    enabled: bool = True
    failure_rate: float = Field(default=0.5, gt=0.0, le=1.0, allow_inf_nan=False)
    window: float = Field(default=60.0, gt=0.0, le=86400.0, allow_inf_nan=False)
    min_calls: int = Field(default=20, ge=1, le=1_000_000)
    cooldown: float = Field(default=30.0, gt=0.0, le=86400.0, allow_inf_nan=False)
    probes: int = Field(default=1, ge=1, le=10_000)
    mode: Literal["wait", "fail"] = "wait"


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of a breaker's state, with the figures that caused it."""

    name: str
    old: BreakerState
    new: BreakerState
    at: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (kept in Redis, shown by ``yardmaster breaker``)."""
        return {
            "name": self.name,
            "from": str(self.old),
            "to": str(self.new),
            "at": self.at,
            "reason": self.reason,
        }


@dataclass(slots=True)
class Breaker:
    """The breaker of one task name.

    Attributes:
        name: The task name.
        policy: Its thresholds.
        state: Current state.
        since: When it entered that state (cluster clock).
        probes_left: In half-open, how many probes may still be let through.
        samples: (time, successes, failures) cumulative counters seen, oldest first.
        mark: The counters when the current state began (half-open counts from it).
    """

    name: str
    policy: BreakerPolicy
    state: BreakerState = BreakerState.CLOSED
    since: float = 0.0
    probes_left: int = 0
    samples: deque[tuple[float, int, int]] = field(default_factory=deque)
    mark: tuple[int, int] = (0, 0)

    def observe(self, now: float, ok: int, failed: int) -> Transition | None:
        """Take the latest cumulative counters; return the transition they cause, if any."""
        if not self.samples:
            self.mark = (ok, failed)
        self.samples.append((now, ok, failed))
        while len(self.samples) > 1 and self.samples[1][0] <= now - self.policy.window:
            self.samples.popleft()
        if self.state == BreakerState.CLOSED:
            _, ok0, failed0 = self.samples[0]
            calls = (ok - ok0) + (failed - failed0)
            if calls >= self.policy.min_calls and calls > 0:
                rate = (failed - failed0) / calls
                if rate >= self.policy.failure_rate:
                    return self._move(
                        now,
                        BreakerState.OPEN,
                        f"{failed - failed0} of {calls} calls failed in the last "
                        f"{self.policy.window:g}s (threshold {self.policy.failure_rate:g})",
                        ok,
                        failed,
                    )
        elif self.state == BreakerState.HALF_OPEN:
            if failed > self.mark[1]:
                return self._move(now, BreakerState.OPEN, "a probe failed", ok, failed)
            if ok - self.mark[0] >= self.policy.probes:
                return self._move(
                    now, BreakerState.CLOSED, f"{ok - self.mark[0]} probe(s) succeeded", ok, failed
                )
        return None

    def tick(self, now: float) -> Transition | None:
        """Open -> half-open once the cool-down has passed; a half-open breaker whose
        probes brought no outcome for a cool-down (cancelled, or still running) lets
        probes through again, so it cannot stay stuck."""
        if self.state == BreakerState.HALF_OPEN and now - self.since >= self.policy.cooldown:
            ok, failed = self.samples[-1][1:] if self.samples else self.mark
            if (ok, failed) == self.mark:
                return self._move(
                    now,
                    BreakerState.HALF_OPEN,
                    f"no probe outcome within {self.policy.cooldown:g}s; letting "
                    f"{self.policy.probes} probe(s) through again",
                    ok,
                    failed,
                )
        if self.state == BreakerState.OPEN and now - self.since >= self.policy.cooldown:
            ok, failed = self.samples[-1][1:] if self.samples else self.mark
            return self._move(
                now,
                BreakerState.HALF_OPEN,
                f"cool-down of {self.policy.cooldown:g}s passed; letting "
                f"{self.policy.probes} probe(s) through",
                ok,
                failed,
            )
        return None

    def admit(self) -> bool:
        """Whether a task of this name may be dispatched now (a half-open probe uses one up)."""
        if self.state == BreakerState.CLOSED:
            return True
        if self.state == BreakerState.HALF_OPEN and self.probes_left > 0:
            self.probes_left -= 1
            return True
        return False

    def restore(self, state: BreakerState, since: float) -> None:
        """Resume a state recorded by an earlier dispatcher (counters start afresh)."""
        self.state = state
        self.since = since
        self.probes_left = self.policy.probes if state == BreakerState.HALF_OPEN else 0

    def _move(self, now: float, new: BreakerState, reason: str, ok: int, failed: int) -> Transition:
        old = self.state
        self.state = new
        self.since = now
        self.mark = (ok, failed)
        self.probes_left = self.policy.probes if new == BreakerState.HALF_OPEN else 0
        if new == BreakerState.CLOSED:
            # A fresh window: the failures that opened it must not open it again.
            self.samples.clear()
            self.samples.append((now, ok, failed))
        return Transition(self.name, old, new, now, reason)


class Breakers:
    """Every task name's breaker, made on first sight with its policy.

    Args:
        default: The cluster's policy (``YM_BREAKER_*``).
        overrides: Per task name policies (``YM_BREAKER_OVERRIDES``).
    """

    def __init__(
        self, default: BreakerPolicy, overrides: dict[str, BreakerPolicy] | None = None
    ) -> None:
        self.default = default
        self.overrides = dict(overrides or {})
        self.by_name: dict[str, Breaker] = {}
        self._last_poll: float | None = None

    def reset(self) -> None:
        """Forget every breaker and sample (a new dispatcher takes over)."""
        self.by_name.clear()
        self._last_poll = None

    def policy(self, name: str) -> BreakerPolicy:
        """The policy of task name ``name``."""
        return self.overrides.get(name, self.default)

    def get(self, name: str) -> Breaker:
        """The breaker of ``name`` (made closed on first use)."""
        breaker = self.by_name.get(name)
        if breaker is None:
            breaker = self.by_name[name] = Breaker(name, self.policy(name))
        return breaker

    def observe(self, now: float, counts: dict[str, tuple[int, int]]) -> list[Transition]:
        """Feed (successes, failures) per name; return the transitions, in name order."""
        out: list[Transition] = []
        for name in sorted(counts):
            if not self.policy(name).enabled:
                continue
            ok, failed = counts[name]
            breaker = self.by_name.get(name)
            if breaker is None:
                breaker = self.get(name)
                if self._last_poll is not None:
                    # First outcomes of this name since the first poll: all of them are new.
                    breaker.samples.append((self._last_poll, 0, 0))
            moved = breaker.observe(now, ok, failed)
            if moved is not None:
                out.append(moved)
        for breaker in self.by_name.values():
            moved = breaker.tick(now)
            if moved is not None:
                out.append(moved)
        self._last_poll = now
        return out

    def admit(self, name: str) -> bool:
        """Whether a task of ``name`` may be dispatched now."""
        breaker = self.by_name.get(name)
        return breaker is None or breaker.admit()

    def state(self, name: str) -> BreakerState:
        """The state of ``name``'s breaker (closed when never seen)."""
        breaker = self.by_name.get(name)
        return BreakerState.CLOSED if breaker is None else breaker.state
