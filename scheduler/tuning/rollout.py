"""The guarded rollout: watch a new strategy version, and roll it back by itself if it hurts.

A strategy version set with a guard (``strategy set --guard``,
``--from-experiment``, ``tune --apply``) carries its window and the
configuration it replaced. :class:`RolloutWatcher` runs in the monitor's poll
(the monitor's companion hook; nothing of the dispatcher): from the moment the
dispatcher reports the version applied, it compares the tasks submitted in the
window after the switch with those submitted in as long a window before it,
from the events stream:

- ``mean_flow`` and ``p95_flow`` may worsen by at most the gate's flow tolerance
  (``YM_TUNE_P99_TOLERANCE``, relative);
- the deadline miss ratio and the failure ratio may rise by at most the gate's
  miss tolerance (``YM_TUNE_MISS_TOLERANCE``, relative; none when there were
  none before).

A metric has regressed when the low end of its bootstrap interval
(``YM_TUNE_CONFIDENCE``, tasks resampled within each window) is beyond its
tolerance, with at least ``YM_ROLLOUT_MIN_TASKS`` tasks in each window. It is
judged as the window fills, so a clear regression is rolled back early; at the
window's end a version that did not regress is kept. A rollback is a new
version (the previous configuration), its note the reason, made only if the
guarded version is still the latest (two watchers cannot both roll back). The
verdict (watching, kept, rolled back, superseded) is kept beside the versions.

The windows are not paired (other tasks arrive after the switch than
before), so a change of traffic at the switch reads as the version's doing.
Tasks still waiting when a window is judged are not counted, so a
configuration that starves some tasks shows it late: in its misses, which
count when the tasks end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scheduler.monitor.metrics import FinishEvent
from scheduler.monitor.snapshot import RolloutView
from scheduler.settings import Settings
from scheduler.store import Store
from scheduler.strategy_config import StrategyVersion
from scheduler.tuning.regression import Tolerances
from scheduler.tuning.rollout_stats import MIN_BUCKETS, Window, judgeable, regressions

LOOKS = 6  # judgements per window: one every sixth of it
BUCKETS = 15  # a window is cut into this many buckets (at least a second each)


class RolloutWatcher:
    """Watches the latest strategy version when it is guarded (see the module docstring).

    Args:
        store: The cluster's store (read the versions and events, steer a rollback).
        settings: The gate's tolerances and the rollout settings.
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.tolerances = Tolerances.from_settings(settings)
        self.min_tasks = settings.rollout_min_tasks
        # Three polls' worth: a guard that stops is missed within seconds.
        self.presence_ttl = max(5.0, 3.0 * settings.monitor_interval)
        self.version = 0  # the version watched (0: none)
        self.events: dict[str, FinishEvent] = {}
        self.next_judgement = 0.0
        self.view: RolloutView | None = None

    def observe(self, now: float, events: Sequence[FinishEvent]) -> RolloutView | None:
        """Take the poll's new events; judge the watched version when due."""
        self.store.strategy.mark_watched(self.presence_ttl)
        latest = self.store.strategy.latest()
        if latest is None or latest.guard is None:
            self._stop_watching(latest)
            return self.view
        if latest.version != self.version:
            self._start_watching(latest)
        if self.view is not None and self.view.state in ("kept", "rolled_back"):
            return self.view
        active = self.store.strategy.active()
        window = float(latest.guard["window"])
        if active is None or active.version < latest.version:
            self.view = self._view(latest, "waiting", None, "the dispatcher has not applied it yet")
            return self.view
        switched = active.since if active.version == latest.version else latest.at
        if not self.events and switched > 0:
            self._load(switched - window)
        for e in events:
            self.events[e.id] = e
        if now < self.next_judgement:
            return self.view
        self.next_judgement = now + window / LOOKS
        self._judge(latest, switched, window, now)
        return self.view

    def _start_watching(self, latest: StrategyVersion) -> None:
        stored = self.store.strategy.rollout()
        self.version, self.events, self.next_judgement = latest.version, {}, 0.0
        self.view = None
        if stored is not None and stored.get("version") == latest.version:
            self.view = RolloutView(**{k: stored[k] for k in RolloutView.__struct_fields__})

    def _stop_watching(self, latest: StrategyVersion | None) -> None:
        """The latest version is not guarded: a version still watched was superseded."""
        if self.view is not None and self.view.state in ("waiting", "watching"):
            reason = "superseded by version " + ("?" if latest is None else str(latest.version))
            self.view = RolloutView(
                self.view.version, "superseded", self.view.window_s, self.view.switched_at,
                self.view.experiment, reason, self.view.before, self.view.after,
            )  # fmt: skip
            self.store.strategy.set_rollout(_as_dict(self.view))
        self.version, self.events = 0, {}

    def _load(self, since: float) -> None:
        rows = self.store.events.read(since=since, count=1_000_000)
        for _, fields in rows:
            e = FinishEvent.from_fields(fields)
            self.events[e.id] = e

    def _judge(self, latest: StrategyVersion, switched: float, window: float, now: float) -> None:
        """Compare the windows as they stand. Tasks submitted after the switch count once they
        are older than the window before's p95 flow, the time nearly all of them took to end
        under the old configuration: younger ones have not had a fair chance to end, and
        leaving out only the slow ones would flatter the new version."""
        events = list(self.events.values())
        bucket = max(1.0, window / BUCKETS)
        before = Window.of(events, switched - window, switched, bucket)
        lag = before.flow.stat("p95") or 0.0
        upto = min(now - lag, switched + window)
        done = now - lag >= switched + window
        after = Window.of(events, switched, upto, bucket)
        ready = judgeable(before, after, self.min_tasks)
        found = (
            regressions(before, after, self.tolerances, looks=LOOKS, seed=latest.version)
            if ready
            else []
        )
        figures = (before.summary(), after.summary())
        if found:
            reason = "; ".join(r.words() for r in found)
            rolled = self._roll_back(latest, window, reason)
            state = "rolled_back" if rolled else "superseded"
            text = reason if rolled else "a newer version was set before the rollback"
        elif done:
            n_b, n_a = len(before.flow.values), len(after.flow.values)
            state = "kept"
            text = (
                f"no metric regressed beyond its tolerance in {window:g}s ({n_b} tasks before, "
                f"{n_a} after)"
                if ready
                else f"too few tasks to judge ({n_b} before, {n_a} after, in {before.buckets} "
                f"and {after.buckets} buckets of {bucket:g}s; YM_ROLLOUT_MIN_TASKS="
                f"{self.min_tasks}, {MIN_BUCKETS} buckets): kept unjudged"
            )
        else:
            state = "watching"
            text = f"{max(0.0, upto - switched):.0f}s of {window:g}s judged"
        self.view = self._view(latest, state, switched, text, *figures)
        self.store.strategy.set_rollout(_as_dict(self.view))

    def _roll_back(self, latest: StrategyVersion, window: float, reason: str) -> bool:
        assert latest.guard is not None
        previous = latest.guard["previous"]
        source = f" (experiment {latest.experiment})" if latest.experiment else ""
        record = {
            "strategy": previous["strategy"],
            "params": previous.get("params") or {},
            "who": "yardmaster guard",
            "note": (
                f"rolled back by the guard: version {latest.version}{source} regressed within "
                f"{window:g}s of the switch: {reason}; back to version {previous['version']}"
            ),
        }
        _, applied = self.store.strategy.steer(record, latest.version)
        return applied

    def _view(
        self,
        latest: StrategyVersion,
        state: str,
        switched: float | None,
        reason: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> RolloutView:
        assert latest.guard is not None
        return RolloutView(
            latest.version, state, float(latest.guard["window"]), switched, latest.experiment,
            reason, before or {}, after or {},
        )  # fmt: skip


def _as_dict(view: RolloutView) -> dict[str, Any]:
    return {name: getattr(view, name) for name in RolloutView.__struct_fields__}
