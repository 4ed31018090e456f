"""Replay a workload file on the live cluster and measure it like the simulator.

(Over 400 lines: the replay and its measurement share the row bookkeeping; split, each
half would carry the other's state.)

Each row becomes a submission of the built-in ``sleep`` task at its
``submit_at`` offset. A row with ``depends_on`` is submitted with its real
dependencies (docs/workflows.md): it waits on the server, state ``waiting``,
and the Lua step that records its last parent's success releases it, as the
simulator releases it at that parent's finish; a parent that fails cancels it
there too. The rows of one connected component of the dependency graph form
one workflow (``<run_id>.wf<n>``), so ``yardmaster status`` and the dashboard
show the run's progress. The client never watches parents: it only learns the
terminal states it reports. Two cases stay on the client, because the server
can only wait on stored parents: a row due before one of its parents is held
until that parent is due and goes in the same batch, and a row whose parent is
known to have ended unsuccessfully before the row is due is never submitted
(cancelled, as the simulator cancels a task arriving after its parent failed).

Times come from the task records, on the Redis clock, relative to the
replay's start, and are turned into the simulator's own record type so that
:func:`scheduler.simulator.metrics` computes both sides with one code path.

Learned state starts empty, as in the simulator: every run uses fresh
duration keys (``run_id:name``) and fresh affinity keys (``run_id:key``), so
neither the EMAs nor the workers' warm keys of an earlier run leak in.
"""

from __future__ import annotations

import json
import re
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec

from scheduler.adaptive import build_strategy
from scheduler.client import Client, TaskHandle
from scheduler.errors import (
    InvalidInputError,
    ReplayTimeoutError,
    WorkflowError,
    YardmasterError,
)
from scheduler.models import TaskState
from scheduler.settings import STRATEGY_NAMES, Settings
from scheduler.simulator import METRIC_NAMES, SimulatedTask, Simulator, metrics
from scheduler.workflow import components
from scheduler.workflow_client import ID_PATTERN
from scheduler.workload import WorkloadTask

TASK_NAME = "sleep"
WHO = "yardmaster run"
_POLL = 0.05  # seconds between reads of the unfinished tasks' states
_PROGRESS_EVERY = 1.0


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a replay stands, for a progress line."""

    elapsed: float
    total: int
    submitted: int
    finished: int


@dataclass(slots=True)
class Replay:
    """The outcome of one replay.

    Attributes:
        strategy: The live strategy during the run.
        run_id: Prefix of this run's duration and affinity keys.
        records: One per workload row, in file order; times are seconds from
            the replay's start. ``task.submit_at`` is the measured submission
            (Redis ``submitted_at``) for rows without parents, and the row's
            own ``submit_at`` for rows with ``depends_on`` (one may be held
            until a parent is due), whose wait for the parents counts as
            waiting, as in the simulator.
        workers: Live workers during the run.
        slots: Slots per worker (the simulator models identical workers).
        task_ids: Row id -> live task id, for the rows that were submitted.
        late: Row ids not submitted because their deadline had passed first.
        submit_lag: Worst delay of a submission behind its ``submit_at``.
        overhead: Median seconds a task held its slot beyond its own run time
            (from the claim to the recorded finish, minus ``duration``, or
            ``duration * warm_factor`` when warm): what the simulator's
            ``dispatch_overhead`` stands for.
    """

    strategy: str
    run_id: str
    records: list[SimulatedTask]
    task_ids: dict[str, str]
    workers: int
    slots: int
    late: list[str] = field(default_factory=list)
    submit_lag: float = 0.0
    overhead: float = 0.0

    def metrics(self) -> dict[str, Any]:
        """The simulator's metrics of the measured schedule."""
        return metrics(self.records, self.workers * self.slots)


def check_strategy(name: str, field_name: str = "strategy") -> None:
    """Refuse an unknown strategy name before anything is submitted.

    Raises:
        InvalidInputError: Naming ``field_name``, the value and the known names.
    """
    if name not in STRATEGY_NAMES:
        raise InvalidInputError(field_name, name, "one of: " + ", ".join(STRATEGY_NAMES))


def cluster_shape(client: Client) -> tuple[int, int]:
    """(workers, slots per worker) of the live cluster.

    Raises:
        YardmasterError: No worker is registered, or their slot counts differ.
    """
    workers = client.store.workers.load()
    if not workers:
        raise YardmasterError("no worker is registered; start one with `yardmaster worker`")
    slots = {w.slots for w in workers}
    if len(slots) > 1:
        raise YardmasterError(
            f"workers have different slot counts {sorted(slots)}; the simulator models "
            "identical workers, so a comparison needs equal slots"
        )
    return len(workers), slots.pop()


@contextmanager
def strategy_in_force(client: Client, name: str, *, wait: float = 10.0) -> Iterator[None]:
    """Make ``name``, with the cluster's own parameters, the live strategy for the block.

    The configuration is changed (live steering) only when its latest version
    is another strategy or has parameters of its own; the block starts once the
    dispatcher reports it applied, and the previous configuration is set again
    afterwards.

    Raises:
        YardmasterError: No dispatcher applied ``name`` within ``wait`` seconds.
    """
    config = client.strategy()  # the latest version; None: the cluster's YM_STRATEGY
    before = client.active_strategy()
    current = config.strategy if config is not None else None if before is None else before.strategy
    if current == name and (config is None or not config.params):
        _await(client, name, config.version if config is not None else 0, wait)
        yield
        return
    version = client.set_strategy(name, who=WHO, note="replay of a workload").version
    _await(client, name, version, wait)
    try:
        yield
    finally:
        if config is not None:
            client.set_strategy(config.strategy, config.params, who=WHO, note="replay finished")
        elif before is not None:
            client.set_strategy(before.strategy, who=WHO, note="replay finished")


def _await(client: Client, name: str, version: int, wait: float) -> None:
    """Until the dispatcher reports ``name`` at ``version`` or later."""
    give_up = time.monotonic() + wait
    while True:
        active = client.active_strategy()
        if active is not None and active.strategy == name and active.version >= version:
            return
        if time.monotonic() > give_up:
            shown = "none" if active is None else f"{active.strategy!r} (version {active.version})"
            raise YardmasterError(
                f"the dispatcher did not apply strategy {name!r} (version {version}) within "
                f"{wait:g}s; it runs {shown}. Is a dispatcher running? check `yardmaster status`"
            )
        time.sleep(0.02)


def replay(
    client: Client,
    tasks: Sequence[WorkloadTask],
    strategy: str,
    *,
    timeout: float | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> Replay:
    """Submit every row at its offset, wait for all, and return the measured records.

    The live strategy must already be ``strategy`` (see :func:`strategy_in_force`).

    Raises:
        ReplayTimeoutError: Tasks still unfinished after ``timeout`` seconds
            (those not started yet are cancelled, so the cluster is left idle).
    """
    workers, slots = cluster_shape(client)
    return _Run(client, tasks, timeout, on_progress).run(strategy, workers, slots)


def simulate(
    tasks: Sequence[WorkloadTask],
    strategy: str,
    settings: Settings,
    *,
    workers: int,
    slots: int,
    dispatch_overhead: float = 0.0,
) -> list[SimulatedTask]:
    """The simulator's prediction for the same workload, built as ``yardmaster simulate`` does."""
    sim = Simulator.from_settings(
        build_strategy(strategy, settings),
        settings,
        workers=workers,
        slots=slots,
        dispatch_overhead=dispatch_overhead,
    )
    return sim.run(tasks)


def difference(run: dict[str, Any], predicted: dict[str, Any]) -> dict[str, Any]:
    """``run - predicted`` per metric (None where either side has no value)."""
    out: dict[str, Any] = {}
    for name in METRIC_NAMES:
        a, b = run.get(name), predicted.get(name)
        out[name] = None if a is None or b is None else a - b
    return out


def trace_rows(records: Sequence[SimulatedTask]) -> list[dict[str, Any]]:
    """One row per task: ``id, worker, start, finish, state`` (as simulate's trace)."""
    return [
        {"id": r.task.id, "worker": r.worker, "start": r.start, "finish": r.finish}
        | {"state": r.state}
        for r in records
    ]


class _Run:
    """The submitter loop of one replay: submit rows on time, learn their outcomes."""

    def __init__(
        self,
        client: Client,
        tasks: Sequence[WorkloadTask],
        timeout: float | None,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self.client = client
        self.tasks = list(tasks)
        self.timeout = timeout
        self.on_progress = on_progress
        self.run_id = uuid.uuid4().hex[:10]
        self.row = {t.id: t for t in self.tasks}
        self.order = sorted(self.tasks, key=lambda t: t.submit_at)  # stable: file order on ties
        self.children: dict[str, list[str]] = {}
        for t in self.tasks:
            for parent in dict.fromkeys(t.depends_on):
                self.children.setdefault(parent, []).append(t.id)
        # Rows with a parent or a child: submitted with their own ids, in a workflow.
        index = {t.id: i for i, t in enumerate(self.tasks)}
        label = components([[index[p] for p in t.depends_on] for t in self.tasks])
        self.workflow = {
            t.id: f"{self.run_id}.wf{label[i]}"
            for i, t in enumerate(self.tasks)
            if t.depends_on or t.id in self.children
        }
        self.live_id = {
            t.id: _live_id(self.run_id, t.id, i)
            for i, t in enumerate(self.tasks)
            if t.id in self.workflow
        }
        self.handles: dict[str, TaskHandle] = {}  # row id -> handle
        self.outcome: dict[str, str] = {}  # row id -> terminal state, as learned
        # Due rows not yet submitted, in arrival order; between passes, those with a
        # parent not yet due.
        self.held: dict[str, None] = {}
        self.cancelled: set[str] = set()
        self.late: list[str] = []
        self.lag = 0.0
        self.t0 = self.m0 = 0.0

    def run(self, strategy: str, workers: int, slots: int) -> Replay:
        t0 = self._calibrate()
        self._loop()
        records, overheads = self._records(t0)
        return Replay(
            strategy=strategy,
            run_id=self.run_id,
            records=records,
            task_ids={row_id: handle.id for row_id, handle in self.handles.items()},
            workers=workers,
            slots=slots,
            late=self.late,
            submit_lag=self.lag,
            overhead=statistics.median(overheads) if overheads else 0.0,
        )

    def _calibrate(self) -> float:
        """Redis time of the replay's start, and the local monotonic time matching it."""
        before = time.monotonic()
        self.t0 = self.client.store.server_time()
        self.m0 = (before + time.monotonic()) / 2
        return self.t0

    def _now(self) -> float:
        return time.monotonic() - self.m0

    def _loop(self) -> None:
        next_row = 0
        next_poll = next_progress = 0.0
        while True:
            now = self._now()
            due = False
            while next_row < len(self.order) and self.order[next_row].submit_at <= now:
                row = self.order[next_row]
                next_row += 1
                if row.id not in self.cancelled:
                    self.held[row.id] = None
                    due = True
            if due:
                self._submit_ready()
            if now >= next_poll:
                known = len(self.outcome)
                self._learn([r for r in self.handles if r not in self.outcome])
                if self.held and len(self.outcome) > known:
                    # a held run-anyway row may wait on nothing more now
                    self._submit_ready()
                next_poll = now + _POLL
            if self._done(next_row):
                break
            if self.on_progress is not None and now >= next_progress:
                self.on_progress(self._progress(now))
                next_progress = now + _PROGRESS_EVERY
            if self.timeout is not None and now > self.timeout:
                self._give_up(next_row)
            wake = next_poll
            if next_row < len(self.order):
                wake = min(wake, self.order[next_row].submit_at)
            time.sleep(max(0.0, wake - self._now()))
        if self.on_progress is not None:
            self.on_progress(self._progress(self._now()))

    def _done(self, next_row: int) -> bool:
        if self.held or any(r.id not in self.cancelled for r in self.order[next_row:]):
            return False
        return all(r in self.outcome for r in self.handles)

    def _progress(self, now: float) -> Progress:
        return Progress(now, len(self.tasks), len(self.handles), len(self.outcome))

    def _submit_ready(self) -> None:
        """Submit every held row whose parents are all submitted or go in the same batch.

        The server refuses a batch naming a stored parent that already failed
        or was cancelled (the child would be cancelled anyway); when that
        happens between two polls, the parents' outcomes are learned (which
        cancels such children here, never submitted) and the rest goes again.
        """
        while True:
            ready: dict[str, None] = {}
            grew = True
            while grew:
                grew = False
                for row_id in self.held:
                    if row_id not in ready and all(
                        p in self.handles or p in ready or p in self.outcome
                        for p in self.row[row_id].depends_on
                    ):
                        ready[row_id] = None
                        grew = True
            if not ready:
                return
            rows = [self.row[r] for r in self.held if r in ready]  # arrival order
            try:
                self._submit(rows)
            except WorkflowError:
                parents = {p for r in rows for p in r.depends_on if p in self.handles}
                known = len(self.outcome)
                self._learn([p for p in parents if p not in self.outcome])
                if len(self.outcome) == known:
                    raise  # not a parent that ended meanwhile: a real refusal
                continue
            return

    def _submit(self, rows: list[WorkloadTask]) -> None:
        """Submit held rows, in arrival order: independent rows in one batch, and each
        workflow's rows (with their dependencies) in one batch of their own. Each row
        leaves ``held`` as it is submitted or found late, so that a refused batch
        leaves only its own rows to try again."""
        now = self._now()
        plain: list[WorkloadTask] = []
        flows: dict[str, list[WorkloadTask]] = {}
        for row in rows:
            if row.id in self.cancelled:  # below a row found late just before
                continue
            if row.deadline is not None and row.deadline <= now:
                del self.held[row.id]
                self.late.append(row.id)
                self._fail(row.id, TaskState.EXPIRED)
            elif row.id in self.workflow:
                flows.setdefault(self.workflow[row.id], []).append(row)
            else:
                plain.append(row)
        if plain:
            handles = self.client.submit_many([self._spec(row) for row in plain])
            self._note(plain, handles, now)
        for workflow_id, part in flows.items():
            part = [r for r in part if r.id not in self.cancelled]  # below a late row
            if not part:
                continue
            specs = [self._spec(row) | self._links(row) for row in part]
            _, handles = self.client.submit_workflow(specs, workflow_id)
            self._note(part, handles, now)

    def _note(self, rows: list[WorkloadTask], handles: list[TaskHandle], now: float) -> None:
        for row, handle in zip(rows, handles, strict=True):
            del self.held[row.id]
            self.handles[row.id] = handle
            if not row.depends_on:
                self.lag = max(self.lag, now - row.submit_at)

    def _spec(self, row: WorkloadTask) -> dict[str, Any]:
        return {
            "name": TASK_NAME,
            "args": [row.duration],
            "kwargs": {"fails": True} if row.fails else {},
            "priority": row.priority,
            "deadline": None if row.deadline is None else self.t0 + row.deadline,
            "expected_duration": row.expected_duration,
            "affinity_key": None
            if row.affinity_key is None
            else f"{self.run_id}:{row.affinity_key}",
            "duration_key": f"{self.run_id}:{row.name}",
        }

    def _links(self, row: WorkloadTask) -> dict[str, Any]:
        """A workflow row's own id, its failure policy, and its parents' live ids
        (stored, or in the batch). A parent never submitted (late, or cancelled
        here) is left out: only a row that runs anyway gets this far, and for it
        that parent counts as done, as the server counts a failed one."""
        parents = [
            self.live_id[p]
            for p in dict.fromkeys(row.depends_on)
            if p in self.handles or p not in self.outcome
        ]
        return {
            "id": self.live_id[row.id],
            "depends_on": parents,
            "on_parent_failure": row.on_parent_failure,
        }

    def _learn(self, row_ids: list[str]) -> None:
        """Note the terminal states among ``row_ids``; an unsuccessful end cancels the
        descendants not submitted yet (those submitted, the server cancels)."""
        if not row_ids:
            return
        states = self.client.store.tasks.states([self.handles[r].id for r in row_ids])
        for row_id, state in zip(row_ids, states, strict=True):
            if state is None or not TaskState(state).terminal:
                continue
            self.outcome[row_id] = state
            if state != TaskState.SUCCEEDED:
                self._fail(row_id, TaskState(state))

    def _fail(self, row_id: str, state: TaskState) -> None:
        """A row ended without success: its descendants not submitted are cancelled
        (those with ``on_parent_failure="run"`` will run anyway, and stop the walk)."""
        self.outcome.setdefault(row_id, state)
        for child in self.children.get(row_id, []):
            if self.row[child].on_parent_failure == "run":
                continue
            if child not in self.cancelled and child not in self.handles:
                self.cancelled.add(child)
                self.held.pop(child, None)
                self._fail(child, TaskState.CANCELLED)

    def _give_up(self, next_row: int) -> None:
        unfinished = [r for r in self.handles if r not in self.outcome]
        by_state: dict[str, int] = {}
        for state in self.client.store.tasks.states([self.handles[r].id for r in unfinished]):
            by_state[state or "missing"] = by_state.get(state or "missing", 0) + 1
        cancelled = sum(1 for r in unfinished if self.handles[r].cancel())
        not_submitted = len(self.order) - next_row + len(self.held)
        raise ReplayTimeoutError(
            self.timeout or 0.0, by_state, not_submitted=not_submitted, cancelled=cancelled
        )

    def _records(self, t0: float) -> tuple[list[SimulatedTask], list[float]]:
        """The measured schedule, and each finished task's slot time beyond its run time."""
        ids = [self.handles[t.id].id for t in self.tasks if t.id in self.handles]
        live = dict(zip(ids, self.client.store.tasks.records(ids), strict=True))
        out: list[SimulatedTask] = []
        overheads: list[float] = []
        factor = self.client.store.settings.warm_factor
        for row in self.tasks:
            handle = self.handles.get(row.id)
            rec = None if handle is None else live[handle.id]
            if handle is None or rec is None:
                out.append(SimulatedTask(row, state=self.outcome.get(row.id, "cancelled")))
                continue
            arrival = row.submit_at if row.depends_on else rec.submitted_at - t0
            warm = self._warm(row, handle.id, rec.state, rec.runtime)
            out.append(
                SimulatedTask(
                    msgspec.structs.replace(row, submit_at=arrival),
                    state=str(rec.state),
                    worker=rec.worker,
                    start=None if rec.started_at is None else rec.started_at - t0,
                    finish=None if rec.finished_at is None else rec.finished_at - t0,
                    warm=warm,
                )
            )
            if rec.dispatched_at is not None and rec.finished_at is not None:
                held = rec.finished_at - rec.dispatched_at
                overheads.append(held - row.duration * (factor if warm else 1.0))
        return out, overheads

    def _warm(
        self, row: WorkloadTask, task_id: str, state: TaskState, runtime: float | None
    ) -> bool:
        """Whether the sleep task found its affinity key warm.

        A success says so in its result; a failure returns nothing, so its
        measured run time tells: nearer ``duration * warm_factor`` than ``duration``.
        """
        if row.affinity_key is None:
            return False
        if state == TaskState.SUCCEEDED:
            result = json.loads(self.client.store.tasks.outcome(task_id)[1] or "null")
            return bool(isinstance(result, dict) and result.get("warm"))
        factor = self.client.store.settings.warm_factor
        return runtime is not None and factor < 1 and runtime < row.duration * (1 + factor) / 2


def _live_id(run_id: str, row_id: str, index: int) -> str:
    """The task id of a workflow row: ``<run_id>.<row id>``, or ``<run_id>.row<index>``
    when the row's id is not one a client may choose (docs/workflows.md)."""
    wanted = f"{run_id}.{row_id}"
    return wanted if re.fullmatch(ID_PATTERN, wanted) else f"{run_id}.row{index}"
