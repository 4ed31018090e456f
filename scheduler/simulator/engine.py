"""The simulation engine: the live dispatcher's decision loop on a simulated clock.

(Over 400 lines: the loop is one function on purpose, its state in locals.)

It calls the very :func:`~scheduler.strategies.plan` the dispatcher calls,
with the same strategy objects, so a prediction and a real run differ only in
what the world does (durations, overheads), not in what the scheduler decides.
Deterministic: the same workload and settings give the same schedule.

The loop is written for speed (a million tasks take seconds): tasks are
numbered by arrival, what happens to them is kept in lists indexed by that
number, the free slots live in one :class:`~scheduler.strategies.WorkerPool`
for the whole run, and records are built only when asked for
(:meth:`Outcome.records`). Dependencies (:mod:`scheduler.simulator.dag`) are
set up only for a workload that has some.
"""

from __future__ import annotations

import copy
import gc
import heapq
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from operator import le

from scheduler.models import Estimates, PendingTask, WorkerView
from scheduler.settings import Settings
from scheduler.simulator.dag import Dependencies
from scheduler.strategies import Snapshot, Strategy, Switch, WorkerPool, plan
from scheduler.workload import WorkloadTask


@dataclass(slots=True)
class SimulatedTask:
    """What happened to one workload task in the simulation.

    Attributes:
        task: The workload row.
        state: ``succeeded``, ``failed``, ``expired`` (the strategy gave up on its
            deadline) or ``cancelled`` (a parent failed, expired or was cancelled).
        worker: Where it ran.
        start: Simulated start time (seconds from the workload's start).
        finish: Simulated finish time.
        warm: Whether its affinity key was warm on its worker.
        reason: Why it expired or was cancelled.
    """

    task: WorkloadTask
    state: str = "pending"
    worker: str | None = None
    start: float | None = None
    finish: float | None = None
    warm: bool = False
    reason: str | None = None


@dataclass(slots=True)
class Outcome:
    """What happened to every task of one run, one list per attribute, in workload order.

    The same facts as :class:`SimulatedTask` records without building one
    object per task; :func:`~scheduler.simulator.metrics.outcome_metrics`
    reads it directly.
    """

    tasks: Sequence[WorkloadTask]
    submit: list[float]
    state: list[str]
    worker: list[str | None]
    start: list[float | None]
    finish: list[float | None]
    warm: list[bool]
    reason: dict[int, str]  # workload index -> why it expired or was cancelled
    # Workflow label of each task (tasks joined by dependencies share one); None
    # for a workload without dependencies.
    workflow: list[int] | None = None

    def records(self) -> list[SimulatedTask]:
        """One record per task, in workload order."""
        reason = self.reason
        return [
            SimulatedTask(task, state, worker, start, finish, warm, reason.get(i))
            for i, (task, state, worker, start, finish, warm) in enumerate(
                zip(
                    self.tasks,
                    self.state,
                    self.worker,
                    self.start,
                    self.finish,
                    self.warm,
                    strict=True,
                )
            )
        ]


class Simulator:
    """Runs one strategy over a workload on ``workers`` x ``slots`` simulated slots.

    Args:
        strategy: Any strategy object (the live dispatcher's own classes).
        workers: Number of simulated workers (``w1`` .. ``wN``).
        slots: Slots per worker.
        warm_capacity: Affinity keys a worker keeps warm (most recently used).
        warm_factor: Run-time factor of a task whose key is warm on its worker.
        ema_alpha: Weight of the newest run in the learned duration estimates.
        default_duration: Estimate for a task name never seen.
        affinity_step: Affinity score change per success (+) or failure (-).
        estimates: What is known before the run (copied; default: nothing learned yet).
        dispatch_overhead: Seconds between a decision and the task's start (0 unless asked).
        deadline_margin: Safety margin, seconds, of deadlines propagated back through a
            workflow (``YM_DEADLINE_MARGIN``).
        propagate_deadlines: Whether strategies see a workflow task's propagated deadline
            (else only its own), to compare the two.
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        workers: int,
        slots: int = 1,
        warm_capacity: int = 4,
        warm_factor: float = 0.5,
        ema_alpha: float = 0.3,
        default_duration: float = 1.0,
        dispatch_overhead: float = 0.0,
        affinity_step: float = 0.1,
        estimates: Estimates | None = None,
        deadline_margin: float = 0.0,
        propagate_deadlines: bool = True,
    ) -> None:
        if workers < 1 or slots < 1:
            raise ValueError("workers and slots must be at least 1")
        self.strategy = strategy
        self.n_workers = workers
        self.slots = slots
        self.warm_capacity = warm_capacity
        self.warm_factor = warm_factor
        self.ema_alpha = ema_alpha
        self.default_duration = default_duration
        self.dispatch_overhead = dispatch_overhead
        self.affinity_step = affinity_step
        self.estimates = estimates
        self.deadline_margin = deadline_margin
        self.propagate_deadlines = propagate_deadlines
        self.switches: list[Switch] = []

    @classmethod
    def from_settings(
        cls,
        strategy: Strategy,
        settings: Settings,
        *,
        workers: int,
        slots: int = 1,
        dispatch_overhead: float = 0.0,
    ) -> Simulator:
        """A simulator whose world model (warm affinity, learning) follows the cluster's settings."""
        return cls(
            strategy,
            workers=workers,
            slots=slots,
            warm_capacity=settings.warm_capacity,
            warm_factor=settings.warm_factor,
            ema_alpha=settings.ema_alpha,
            default_duration=settings.default_duration,
            dispatch_overhead=dispatch_overhead,
            affinity_step=settings.affinity_step,
            deadline_margin=settings.deadline_margin,
        )

    def run(self, workload: Sequence[WorkloadTask]) -> list[SimulatedTask]:
        """Simulate the workload; returns one record per task, in workload order."""
        return self.simulate(workload).records()

    def simulate(self, workload: Sequence[WorkloadTask]) -> Outcome:
        """Simulate the workload; what happened to each task, in workload order."""
        with _no_gc():
            return self._simulate(workload)

    def _simulate(self, workload: Sequence[WorkloadTask]) -> Outcome:
        strategy = self.strategy
        n = len(workload)
        # Tasks are numbered by arrival (submit_at, then file order), as the live
        # submit script numbers them; every list below is indexed by that number.
        submitted = [t.submit_at for t in workload]
        # Usually the file is in submission order already: one pass tells.
        in_order = all(map(le, submitted, islice(submitted, 1, None)))
        order = range(n) if in_order else sorted(range(n), key=submitted.__getitem__)  # stable
        tasks = list(workload) if in_order else [workload[i] for i in order]
        submit = submitted if in_order else [submitted[i] for i in order]
        state = ["pending"] * n
        ran_on: list[str | None] = [None] * n  # worker names
        start_at: list[float | None] = [None] * n
        finish_at: list[float | None] = [None] * n
        warm_run = [False] * n
        reasons: dict[int, str] = {}

        workers = [WorkerView(f"w{i}", self.slots) for i in range(1, self.n_workers + 1)]
        warm_keys: dict[str, dict[str, None]] = {w.name: {} for w in workers}
        named = {w.name: w for w in workers}
        if self.estimates is not None:
            estimates = copy.deepcopy(self.estimates)
        else:
            estimates = Estimates(default_duration=self.default_duration)
        durations = estimates.durations
        affinity = estimates.affinity
        default_duration = estimates.default_duration
        # Waiting and release of workflow tasks: only for a workload with dependencies.
        deps: Dependencies | None = None
        if any(t.depends_on for t in tasks):
            deps = Dependencies(
                tasks,
                state,
                reasons,
                estimates,
                margin=self.deadline_margin,
                propagate=self.propagate_deadlines,
            )
        strategy.forget()
        queue = strategy.make_queue(estimates)
        pool = WorkerPool(workers, strategy.worker_order())
        snapshot = Snapshot(now=0.0, workers=workers, estimates=estimates)
        self.switches = []

        overhead = self.dispatch_overhead
        warm_factor = self.warm_factor
        capacity = self.warm_capacity
        alpha = self.ema_alpha
        beta = 1 - alpha
        learned = durations.get
        step = self.affinity_step
        uses_estimates = strategy.uses_estimates
        learn_hook = None if type(self)._learn is Simulator._learn else self._learn
        # Runs per task name in start order (starts never decrease), finished ones
        # dropped from the front: the head is the longest run still going, and
        # `longest` holds its start, for Estimates.overrun.
        running: defaultdict[str, deque[int]] = defaultdict(deque)
        longest: dict[str, float] = {}

        add = queue.add
        pool_release = pool.release
        heappush = heapq.heappush
        heappop = heapq.heappop
        switches = type(strategy).take_switches is not Strategy.take_switches
        # Delay scheduling: a strategy that held a task back until an instant is asked
        # to plan again then, even if no task ends or arrives before it.
        wakes = type(strategy).wake_at is not Strategy.wake_at
        wake_at: float | None = None
        finishes: list[tuple[float, int]] = []  # (time, arrival number)
        next_arrival = 0
        # Tasks in the queue: released, less those decided (plan puts back what it holds).
        queued = 0
        replan = False

        while True:
            if finishes:
                now = finishes[0][0]
                if next_arrival < n and submit[next_arrival] < now:
                    now = submit[next_arrival]
            elif next_arrival < n:
                now = submit[next_arrival]
            elif wake_at is None:
                break
            else:
                now = wake_at
            if wake_at is not None and wake_at <= now:
                now = wake_at
                wake_at = None
            # completions first: a slot freed at `now` is free for what arrives at `now`
            while finishes and finishes[0][0] <= now:
                s = heappop(finishes)[1]
                t = tasks[s]
                name: str = ran_on[s]  # type: ignore[assignment]  # set at its start
                worker = named[name]
                key = t.affinity_key
                if t.fails:
                    state[s] = "failed"
                    if key is not None:
                        pair = (key, name)
                        score = affinity.get(pair, 0.0) - step
                        # min(1.0, max(0.0, score)), spelled out (once per task)
                        affinity[pair] = 1.0 if score >= 1.0 else score if score > 0.0 else 0.0
                    worker.failed += 1
                    if deps is not None:
                        for child in deps.ended(s):
                            add(deps.pending(child))
                            queued += 1
                else:
                    state[s] = "succeeded"
                    if key is not None:
                        pair = (key, name)
                        score = affinity.get(pair, 0.0) + step
                        affinity[pair] = 1.0 if score >= 1.0 else score if score > 0.0 else 0.0
                    worker.succeeded += 1
                    runtime = finish_at[s] - start_at[s]  # type: ignore[operator]
                    if learn_hook is not None:
                        learn_hook(estimates, t, runtime)
                    else:
                        old = durations.get(t.name)
                        durations[t.name] = runtime if old is None else alpha * runtime + beta * old
                    if deps is not None:
                        ema = durations.get(t.name)
                        if ema is not None:
                            deps.learned(t.name, ema)
                        for child in deps.succeeded(s):
                            add(deps.pending(child))
                            queued += 1
                if uses_estimates:
                    runs = running[t.name]
                    if runs[0] == s:
                        runs.popleft()
                        while runs and state[runs[0]] != "running":
                            runs.popleft()  # ended earlier, behind a longer run
                        if runs:
                            longest[t.name] = start_at[runs[0]]  # type: ignore[assignment]
                        else:
                            del longest[t.name]
                pool_release(worker)
            while next_arrival < n and submit[next_arrival] <= now:
                s = next_arrival
                next_arrival += 1
                if deps is not None:
                    if deps.arrive(s):
                        add(deps.pending(s))
                        queued += 1
                    continue
                t = tasks[s]
                add(  # the PendingTask of t, s (this runs once per task)
                    PendingTask(
                        t.id,
                        t.name,
                        t.priority,
                        s,
                        t.submit_at,
                        t.deadline,
                        t.expected_duration,
                        t.affinity_key,
                    )
                )
                queued += 1
            free = pool.free_slots
            if not free or not queued:
                continue
            if uses_estimates:
                overrun = {}
                for name, begun in longest.items():
                    elapsed = now - begun
                    if elapsed > learned(name, default_duration):
                        overrun[name] = elapsed
                estimates.overrun = overrun
            snapshot.now = now
            while True:  # again only when an expiry released run-anyway dependents
                # Placing every queued task empties the queue: plan need not look again.
                decisions = plan(strategy, queue, snapshot, free if free < queued else queued, pool)
                queued -= len(decisions)
                if wakes:
                    wake = strategy.wake_at()
                    if wake is not None and (wake_at is None or wake < wake_at):
                        wake_at = wake
                if switches:
                    self.switches.extend(strategy.take_switches())
                for decision in decisions:
                    s = decision.task.seq
                    if state[s] != "pending":
                        if decision.expire is None:
                            pool_release(named[decision.worker])
                        continue
                    if decision.expire is not None:
                        state[s] = "expired"
                        reasons[s] = decision.expire
                        if deps is not None:
                            for child in deps.ended(s):
                                add(deps.pending(child))
                                queued += 1
                                replan = True
                        continue
                    name = decision.worker
                    t = tasks[s]
                    begin = now + overhead
                    duration = t.duration
                    key = t.affinity_key
                    if key is not None:  # the worker's most recently used keys
                        keys = warm_keys[name]
                        if key in keys:
                            del keys[key]
                            keys[key] = None
                            duration *= warm_factor
                            warm_run[s] = True
                        else:
                            keys[key] = None
                            while len(keys) > capacity:
                                del keys[next(iter(keys))]
                    end = begin + duration
                    state[s] = "running"
                    ran_on[s] = name
                    start_at[s] = begin
                    finish_at[s] = end
                    heappush(finishes, (end, s))
                    if uses_estimates:
                        runs = running[t.name]
                        if not runs:
                            longest[t.name] = begin
                        runs.append(s)
                if not replan:
                    break
                replan = False  # place the released tasks at this same instant
                free = pool.free_slots
                if not free or not queued:
                    break

        if in_order:
            outcome = Outcome(
                workload, submitted, state, ran_on, start_at, finish_at, warm_run, reasons
            )
        else:
            outcome = _in_workload_order(
                workload, submitted, order, state, ran_on, start_at, finish_at, warm_run, reasons
            )
        if deps is not None:
            label = deps.workflows()  # by arrival number
            outcome.workflow = label if in_order else [label[s] for s in _arrival_of(order)]
        return outcome

    def _learn(self, estimates: Estimates, task: WorkloadTask, runtime: float) -> None:
        """The duration EMA of a task name after one successful run of ``runtime`` seconds.

        The loop applies this rule inline; a subclass that overrides it is called instead.
        """
        old = estimates.durations.get(task.name)
        a = self.ema_alpha
        estimates.durations[task.name] = runtime if old is None else a * runtime + (1 - a) * old


def _in_workload_order(
    workload: Sequence[WorkloadTask],
    submitted: list[float],
    order: Sequence[int],
    state: list[str],
    names: list[str | None],
    start_at: list[float | None],
    finish_at: list[float | None],
    warm_run: list[bool],
    reasons: dict[int, str],
) -> Outcome:
    """The outcome of a run whose lists are indexed by arrival number (``order``:
    arrival number -> workload index), rearranged in workload order.

    Apart from the loop so that the loop's lists stay plain locals (a list a
    comprehension reads becomes a closure cell, slower to reach).
    """
    back = _arrival_of(order)
    return Outcome(
        workload,
        submitted,
        [state[s] for s in back],
        [names[s] for s in back],
        [start_at[s] for s in back],
        [finish_at[s] for s in back],
        [warm_run[s] for s in back],
        {order[s]: why for s, why in reasons.items()},
    )


def _arrival_of(order: Sequence[int]) -> list[int]:
    """Workload index -> arrival number, from ``order`` (arrival number -> workload index)."""
    back = [0] * len(order)
    for s, i in enumerate(order):
        back[i] = s
    return back


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for a run.

    A run allocates millions of short-lived tuples and records and frees
    them by reference counting; the collector would still walk the growing
    heap again and again (about a fifth of a large run's time). The engine
    makes no reference cycles.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
