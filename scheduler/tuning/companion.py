"""The monitor's tuning companion: the rolling trace, plans of the backlog, the rollout guard.

``yardmaster monitor`` gives its :class:`~scheduler.monitor.monitor.Monitor`
one :class:`TuningCompanion`; each poll hands it the events read since the
last one, and what it returns joins the snapshot (``tuning``: the plan's
accuracy and the rollout) and the anomaly rules. So these run wherever the
monitor runs, and the dispatcher knows nothing of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec

from scheduler.monitor.history import History
from scheduler.monitor.metrics import FinishEvent
from scheduler.monitor.snapshot import TuningView
from scheduler.settings import Settings
from scheduler.store import Store
from scheduler.tuning.capture import RECORD_FIELDS, build_trace, plain_row
from scheduler.tuning.planned import PlanTracker
from scheduler.tuning.rollout import RolloutWatcher
from scheduler.workload import WorkloadTask

ROLLING_HEADER = (
    "# yardmaster rolling trace: one row per task that ended, in the order they ended; "
    "submit_at and deadline are Redis times (UNIX seconds)\n"
)


class RollingTrace:
    """Appends every task that ends to a workload file, rotated by size.

    Rows are those of ``trace export`` with ``submit_at`` and ``deadline`` in Redis
    time (UNIX seconds), so every file is a workload on its own; a dependency on a
    task in an earlier file is dropped. A monitor starts a new file (the last one is
    rotated), so no file holds a task twice.

    Args:
        store: Read each ended task's record fields.
        path: The file; rotated to ``FILE.1`` ... past ``max_bytes``, ``keep`` kept.
    """

    def __init__(self, store: Store, path: str | Path, *, max_bytes: int, keep: int) -> None:
        self.store = store
        self.files = History(path, max_bytes=max_bytes, keep=keep)
        self.files.rotate()
        self.written: set[str] = set()
        self.encode = msgspec.json.Encoder().encode

    def append(self, events: Sequence[FinishEvent]) -> None:
        """Write the rows of ``events`` (their tasks' records read in one round trip)."""
        events = [e for e in events if e.id not in self.written]
        if not events:
            return
        records = self.store.tasks.fields([e.id for e in events], RECORD_FIELDS)
        trace = build_trace(
            events, records, estimates={}, default_duration=self.store.settings.default_duration,
            origin=0.0, known=self.written,
        )  # fmt: skip
        path = self.files.path
        size = path.stat().st_size if path.exists() else 0
        out = open(path, "ab")  # noqa: SIM115  (closed below, reopened on rotation)
        try:
            for task in trace.tasks:
                line = self._line(task)
                if size and size + len(line) > self.files.max_bytes:
                    out.close()
                    self.files.rotate()
                    self.written = set()
                    out, size = open(path, "ab"), 0  # noqa: SIM115
                    line = self._line(task)
                if size == 0:
                    size += out.write(ROLLING_HEADER.encode())
                size += out.write(line)
                self.written.add(task.id)
        finally:
            out.close()

    def _line(self, task: WorkloadTask) -> bytes:
        """The row of ``task``, without parents that are not in the current file."""
        if any(p not in self.written for p in task.depends_on):
            kept = tuple(p for p in task.depends_on if p in self.written)
            task = msgspec.structs.replace(task, depends_on=kept)
        return self.encode(plain_row(task)) + b"\n"


class TuningCompanion:
    """What the monitor's poll does for tuning (see the module docstring).

    Args:
        store: The cluster's store.
        settings: ``YM_MONITOR_TRACE*``, ``YM_PLAN_*``, ``YM_ROLLOUT_*`` and the gate's tolerances.
    """

    def __init__(self, store: Store, settings: Settings | None = None) -> None:
        s = settings or store.settings
        self.trace = (
            None
            if not s.monitor_trace
            else RollingTrace(
                store, s.monitor_trace, max_bytes=s.monitor_trace_bytes, keep=s.monitor_trace_keep
            )
        )
        self.plans = PlanTracker(store, s)
        self.rollout = RolloutWatcher(store, s)

    def observe(self, now: float, events: Sequence[FinishEvent]) -> TuningView:
        """One poll: append to the trace, follow the plan, watch the rollout."""
        if self.trace is not None:
            self.trace.append(events)
        return TuningView(
            plan=self.plans.observe(now, events), rollout=self.rollout.observe(now, events)
        )
