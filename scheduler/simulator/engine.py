"""The simulation engine: the live dispatcher's decision loop on a simulated clock.

It calls the very :func:`~scheduler.strategies.plan` the dispatcher calls,
with the same strategy objects, so a prediction and a real run differ only in
what the world does (durations, overheads), not in what the scheduler decides.
Deterministic: the same workload and settings give the same schedule.
"""

from __future__ import annotations

import copy
import heapq
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from scheduler.models import Estimates, PendingTask, WorkerView
from scheduler.settings import Settings
from scheduler.strategies import Snapshot, Strategy, Switch, plan
from scheduler.workload import WorkloadTask


@dataclass(slots=True)
class SimulatedTask:
    """What happened to one workload task in the simulation.

    Attributes:
        task: The workload row.
        state: ``succeeded``, ``failed``, ``expired`` (the strategy gave up on its
            deadline) or ``cancelled`` (a dependency failed or expired).
        worker: Where it ran.
        start: Simulated start time (seconds from the workload's start).
        finish: Simulated finish time.
        warm: Whether its affinity key was warm on its worker.
    """

    task: WorkloadTask
    state: str = "pending"
    worker: str | None = None
    start: float | None = None
    finish: float | None = None
    warm: bool = False
    reason: str | None = None


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
        )

    def run(self, workload: Sequence[WorkloadTask]) -> list[SimulatedTask]:
        """Simulate the workload; returns one record per task, in workload order."""
        out = [SimulatedTask(task) for task in workload]
        by_id = {rec.task.id: rec for rec in out}
        # The submission sequence is arrival order, as the live submit script assigns it.
        arrival_order = sorted(range(len(out)), key=lambda i: (out[i].task.submit_at, i))
        seq_of = {out[i].task.id: n for n, i in enumerate(arrival_order)}
        waiting_on = {rec.task.id: set(rec.task.depends_on) for rec in out}
        dependents: dict[str, list[str]] = {}
        for rec in out:
            for dep in rec.task.depends_on:
                dependents.setdefault(dep, []).append(rec.task.id)

        workers = [WorkerView(f"w{i}", self.slots) for i in range(1, self.n_workers + 1)]
        worker_named = {w.name: w for w in workers}
        warm: dict[str, OrderedDict[str, None]] = {w.name: OrderedDict() for w in workers}
        if self.estimates is not None:
            estimates = copy.deepcopy(self.estimates)
        else:
            estimates = Estimates(default_duration=self.default_duration)
        queue = self.strategy.make_queue(estimates)
        arrivals = [out[i] for i in arrival_order]
        finishes: list[tuple[float, int, str]] = []  # (time, seq, task id)
        running: dict[str, SimulatedTask] = {}
        next_arrival = 0
        free = self.n_workers * self.slots  # free slots, kept as tasks start and finish
        released: set[str] = set()
        self.switches = []

        def release(rec: SimulatedTask) -> None:
            task = rec.task
            queue.add(
                PendingTask(
                    id=task.id,
                    name=task.name,
                    priority=task.priority,
                    seq=seq_of[task.id],
                    submitted_at=task.submit_at,
                    deadline=task.deadline,
                    expected_duration=task.expected_duration,
                    affinity_key=task.affinity_key,
                )
            )

        def cancel_dependents(task_id: str) -> None:
            for child in dependents.get(task_id, []):
                if by_id[child].state == "pending":
                    by_id[child].state = "cancelled"
                    cancel_dependents(child)

        while next_arrival < len(arrivals) or finishes:
            t_arrival = (
                arrivals[next_arrival].task.submit_at if next_arrival < len(arrivals) else None
            )
            t_finish = finishes[0][0] if finishes else None
            now = min(t for t in (t_arrival, t_finish) if t is not None)
            # completions first: a slot freed at `now` is free for what arrives at `now`
            while finishes and finishes[0][0] <= now:
                _, _, task_id = heapq.heappop(finishes)
                rec = by_id[task_id]
                del running[task_id]
                worker = worker_named[str(rec.worker)]
                worker.inflight -= 1
                free += 1
                rec.state = "failed" if rec.task.fails else "succeeded"
                self._learn_affinity(estimates, rec)
                if rec.state == "succeeded":
                    worker.succeeded += 1
                    self._learn(estimates, rec)
                    for child in dependents.get(task_id, []):
                        waiting_on[child].discard(task_id)
                        if not waiting_on[child] and child in released:
                            release(by_id[child])
                else:
                    worker.failed += 1
                    cancel_dependents(task_id)
            while next_arrival < len(arrivals) and arrivals[next_arrival].task.submit_at <= now:
                rec = arrivals[next_arrival]
                next_arrival += 1
                released.add(rec.task.id)
                if rec.state == "pending" and not waiting_on[rec.task.id]:
                    release(rec)
            if free and len(queue):
                if self.strategy.uses_estimates:
                    self._overrun(estimates, running, now)
                snapshot = Snapshot(now=now, workers=workers, estimates=estimates)
                decisions = plan(self.strategy, queue, snapshot, free)
                self.switches.extend(self.strategy.take_switches())
                for decision in decisions:
                    rec = by_id[decision.task.id]
                    if rec.state != "pending":
                        continue
                    if decision.expire is not None:
                        rec.state = "expired"
                        rec.reason = decision.expire
                        cancel_dependents(rec.task.id)
                        continue
                    worker = worker_named[decision.worker]
                    worker.inflight += 1
                    free -= 1
                    rec.worker = worker.name
                    rec.start = now + self.dispatch_overhead
                    rec.warm = self._touch(warm[worker.name], rec.task.affinity_key)
                    factor = self.warm_factor if rec.warm else 1.0
                    rec.finish = rec.start + rec.task.duration * factor
                    rec.state = "running"
                    running[rec.task.id] = rec
                    heapq.heappush(finishes, (rec.finish, seq_of[rec.task.id], rec.task.id))
        return out

    def _touch(self, keys: OrderedDict[str, None], key: str | None) -> bool:
        """LRU of a worker's affinity keys; True if ``key`` was warm."""
        if key is None:
            return False
        was_warm = key in keys
        keys[key] = None
        keys.move_to_end(key)
        while len(keys) > self.warm_capacity:
            keys.popitem(last=False)
        return was_warm

    def _learn_affinity(self, estimates: Estimates, rec: SimulatedTask) -> None:
        """The live ``finish.lua`` rule: +step on success, -step on failure, within [0, 1]."""
        key = rec.task.affinity_key
        if key is None or rec.worker is None:
            return
        old = estimates.affinity.get((key, rec.worker), 0.0)
        step = self.affinity_step if rec.state == "succeeded" else -self.affinity_step
        estimates.affinity[(key, rec.worker)] = min(1.0, max(0.0, old + step))

    @staticmethod
    def _overrun(estimates: Estimates, running: dict[str, SimulatedTask], now: float) -> None:
        """The longest elapsed run per task name, where it outlasts the learned estimate."""
        overrun: dict[str, float] = {}
        for rec in running.values():
            assert rec.start is not None
            elapsed = now - rec.start
            name = rec.task.name
            if elapsed > estimates.durations.get(name, estimates.default_duration):
                overrun[name] = max(elapsed, overrun.get(name, 0.0))
        estimates.overrun = overrun

    def _learn(self, estimates: Estimates, rec: SimulatedTask) -> None:
        assert rec.start is not None
        assert rec.finish is not None
        runtime = rec.finish - rec.start
        old = estimates.durations.get(rec.task.name)
        a = self.ema_alpha
        estimates.durations[rec.task.name] = runtime if old is None else a * runtime + (1 - a) * old
