"""The monitor: reads yardmaster's records, keeps a window of events, and reports.

One :meth:`Monitor.poll` costs a handful of Redis round trips whatever the
cluster does: the events stream is read incrementally from the last id seen,
and the gauges (counters, backlog, workers, EMAs) in one pipeline each. No
Celery event is needed, so the workers pay nothing for it. A companion (tuning's,
in ``yardmaster monitor``) adds its own few round trips: the strategy version, a
mark that the rollout guard runs, and a plan's reads of the backlog when one is due.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from scheduler.monitor import metrics as m
from scheduler.monitor.anomalies import Observation, Tracker, WorkerView, detect
from scheduler.monitor.health import health
from scheduler.monitor.history import History
from scheduler.monitor.series import Series
from scheduler.monitor.snapshot import (
    AnomalyView,
    Backlog,
    CacheRate,
    Deadlines,
    DispatcherView,
    FailureRate,
    Failures,
    Health,
    Latency,
    PollStats,
    Prediction,
    RedisMemory,
    Slots,
    Snapshot,
    Throughput,
    TuningView,
    Windows,
    WorkerLoad,
    typed,
)
from scheduler.settings import Settings
from scheduler.store import Store

log = logging.getLogger("yardmaster.monitor")
TERMINAL = ("succeeded", "failed", "cancelled", "expired")
READ_CHUNK = 10_000


class Companion(Protocol):
    """Work the monitor's poll carries for a component above it (tuning's rolling trace,
    plan tracking and guarded rollout, :mod:`scheduler.tuning.companion`): the one hook
    through which they see each poll, so the monitor needs nothing of them."""

    def observe(self, now: float, events: Sequence[m.FinishEvent]) -> TuningView:
        """Called once per poll with the Redis time and the events read since the last one."""
        ...


class Monitor:
    """Builds snapshots of the cluster from its records.

    Args:
        store: The cluster's state store.
        history: Where to append the history (None: no history).
        companion: Called on each poll; what it reports joins the snapshot and the
            anomaly rules (None: none).
    """

    def __init__(
        self, store: Store, *, history: History | None = None, companion: Companion | None = None
    ) -> None:
        self.store = store
        self.companion = companion
        self.settings: Settings = store.settings
        s = self.settings
        self.window = m.EventWindow(max(s.monitor_long_window, max(m.THROUGHPUT_WINDOWS.values())))
        self.tracker = Tracker()
        self.history = history
        self.series = Series()  # recent points for the dashboard's charts
        self._last_id: str | None = None
        self._backlog: deque[tuple[float, int, int]] = deque()
        self._lock = threading.Lock()
        self._latest: Snapshot | None = None
        self._latest_at = 0.0
        self._history_due = 0.0
        self.polls = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls,
        store: Store,
        history_path: str | None = None,
        *,
        companion: Companion | None = None,
    ) -> Monitor:
        """A monitor with the history the settings (or ``history_path``) ask for."""
        s = store.settings
        path = history_path or s.monitor_history
        hist = None
        if path:
            hist = History(path, max_bytes=s.monitor_history_bytes, keep=s.monitor_history_keep)
        return cls(store, history=hist, companion=companion)

    # -- reading ---------------------------------------------------------------
    def _read_new_events(self, now: float) -> list[m.FinishEvent]:
        if self._last_id is None:
            rows = self.store.events.read(since=now - self.window.horizon, count=READ_CHUNK)
        else:
            rows = self.store.events.read(after=self._last_id, count=READ_CHUNK)
        new: list[m.FinishEvent] = []
        while rows:
            self._last_id = rows[-1][0]
            batch = [m.FinishEvent.from_fields(fields) for _, fields in rows]
            self.window.add(batch)
            if self.companion is not None:
                new += batch
            if len(rows) < READ_CHUNK:
                break
            rows = self.store.events.read(after=self._last_id, count=READ_CHUNK)
        self.window.prune(now)
        return new

    def _companion(self, now: float, events: list[m.FinishEvent]) -> TuningView | None:
        """What the companion reports; its failure is logged and leaves the poll whole."""
        if self.companion is None:
            return None
        try:
            return self.companion.observe(now, events)
        except Exception:
            log.exception("the monitor's tuning companion failed; the snapshot goes without it")
            return None

    def poll(self) -> Snapshot:
        """Read the records once and return a fresh snapshot (also kept as the latest)."""
        with self._lock:
            started = time.perf_counter()
            snap = msgspec.structs.replace(
                self._poll(),
                monitor=PollStats(time.perf_counter() - started, self.polls, len(self.window)),
            )
            self._latest, self._latest_at = snap, time.monotonic()
            self.series.add(snap)
            return snap

    def current(self) -> Snapshot:
        """The latest snapshot, polling first when it is older than the poll interval."""
        with self._lock:
            fresh = (
                self._latest is not None
                and time.monotonic() - self._latest_at < self.settings.monitor_interval
            )
            if fresh and self._latest is not None:
                return self._latest
        return self.poll()

    def start(self) -> None:
        """Poll in a background thread until :meth:`stop` (history and backlog trend need it)."""
        if self._thread is not None:
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self.run, args=(self._stop,), name="ym-monitor", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread started by :meth:`start`."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=10)
            self._thread = None

    def run(self, stop: threading.Event) -> None:
        """Poll every ``monitor_interval`` until ``stop`` is set (errors are logged, not fatal)."""
        while not stop.is_set():
            try:
                self.poll()
            except Exception:
                log.exception("monitor poll failed; retrying")
            stop.wait(self.settings.monitor_interval)

    # -- one poll --------------------------------------------------------------
    def _poll(self) -> Snapshot:
        s = self.settings
        self.polls += 1
        rec = self.store.events.gauges()
        now = rec.time
        new_events = self._read_new_events(now)
        tuning = self._companion(now, new_events)
        workers = self.store.workers.load()
        running = self.store.workers.running([w.name for w in workers])
        backlog = sum(rec.pending_by_priority.values())
        terminal = sum(rec.counters.get(k, 0) for k in TERMINAL)
        self._backlog.append((now, backlog, terminal))
        while self._backlog and self._backlog[0][0] < now - s.monitor_short_window:
            self._backlog.popleft()

        events = self.window.since(now - self.window.horizon)
        long_events = [e for e in events if e.finished_at >= now - s.monitor_long_window]
        short_start = now - s.monitor_short_window
        short = [e for e in long_events if e.finished_at >= short_start]
        base = [e for e in long_events if e.finished_at < short_start]
        labels = m.label_names(events, s.monitor_max_task_labels)
        short_n = sum(self.window.counts(short_start).values())
        long_n = sum(self.window.counts(now - s.monitor_long_window).values())

        views = [WorkerView(w.name, w.slots, w.inflight, w.heartbeat_age(now)) for w in workers]
        memory = self.store.memory()
        obs = Observation(
            now=now,
            short=short,
            base=base,
            workers=views,
            running=running,
            durations=rec.durations,
            backlog=[(t, n) for t, n, _ in self._backlog],
            drained=(self._backlog[0][2], self._backlog[-1][2]),
            counts=(short_n, long_n - short_n),
            plan=None if tuning is None else tuning.plan,
            memory_ratio=None if memory is None else memory["ratio"],
            unschedulable=self.store.tasks.unschedulable(),
        )
        raised, cleared = self.tracker.update(detect(obs, s), now)
        active = sorted(self.tracker.active.values(), key=lambda a: (a.since, a.id))

        slots = sum(w.slots for w in workers)
        busy = sum(w.busy for w in workers)
        fail_short = m.failures(short)
        fail_long = m.failures(long_events)
        dl = m.deadlines(long_events)
        pred = m.prediction(long_events, labels, s.monitor_drift_floor)
        cache = m.cache_rate(rec.counters)
        score = health(
            prediction_error=pred["mean_rel_error"],
            deadline_miss_ratio=dl["miss_ratio"],
            backlog=backlog,
            slots=slots,
            busy=busy,
            failure_ratio=fail_short["ratio"],
            anomalies=active,
            workers=len(workers),
            leader=rec.leader,
        )
        snap = Snapshot(
            time=now,
            dispatcher=DispatcherView(
                leader=rec.leader,
                strategy=rec.active_strategy,
                strategy_switches=rec.counters.get("strategy_switches", 0),
                recent_switches=rec.recent_switches,
            ),
            workers=[
                WorkerLoad(
                    name=w.name,
                    slots=w.slots,
                    busy=w.inflight,
                    free=w.free,
                    utilization=w.utilization,
                    heartbeat_age=round(w.heartbeat_age(now), 3),
                    succeeded=w.succeeded,
                    failed=w.failed,
                )
                for w in workers
            ],
            slots=Slots(
                total=slots,
                busy=busy,
                free=max(0, slots - busy),
                utilization=busy / slots if slots else 0.0,
            ),
            backlog=Backlog(
                total=backlog,
                by_priority={str(p): n for p, n in sorted(rec.pending_by_priority.items())},
            ),
            counters=rec.counters,
            throughput=typed(m.throughput(self.window, now, labels), Throughput),
            latency=typed(m.latency(long_events, labels), Latency),
            deadlines=typed(dl, Deadlines),
            prediction=typed(pred, Prediction),
            failures=Failures(typed(fail_short, FailureRate), typed(fail_long, FailureRate)),
            cache=None if cache is None else typed(cache, CacheRate),
            windows=Windows(short_s=s.monitor_short_window, long_s=s.monitor_long_window),
            anomalies=[typed(a.to_json(), AnomalyView) for a in active],
            cleared_anomalies=[typed(a.to_json(), AnomalyView) for a in self.tracker.cleared[:10]],
            health=typed(score, Health),
            redis=None if memory is None else typed(memory, RedisMemory),
            tuning=tuning,
        )
        self._write_history(now, snap, raised, cleared)
        return snap

    def _write_history(
        self, now: float, snap: Snapshot, raised: list[Any], cleared: list[Any]
    ) -> None:
        if self.history is None:
            return
        for a in raised:
            self.history.write("anomaly_raised", now, a.to_json())
        for a in cleared:
            self.history.write("anomaly_cleared", now, a.to_json())
        if now >= self._history_due:
            self._history_due = now + self.settings.monitor_history_every
            data = snap.as_dict()
            body = {k: v for k, v in data.items() if k not in ("anomalies", "cleared_anomalies")}
            body.pop("health")
            self.history.write("metrics", now, body)
            self.history.write("health", now, {**data["health"], "anomalies": len(snap.anomalies)})
