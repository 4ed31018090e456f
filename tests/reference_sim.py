"""The simulator as it was before it was made fast: the reference the fast engine must match.

It is the engine of commit f2ed45c, unchanged in what it does: at every event
it builds a snapshot, copies the workers with a free slot into a plain list
and calls the strategy's ``pick_worker`` on it (no WorkerPool, no sorted
order), sums free slots by hand, recomputes each name's longest run from
every run in flight, keeps one record object per task, and orders ``fifo``
and ``load_balance`` with a heap on their ``sort_key`` (no SubmissionQueue), and
``priority`` and ``weighted`` likewise (no RankQueue).
``tests/test_simulator_fast.py`` runs both on random workloads.
"""

from __future__ import annotations

import copy
import heapq
from collections import OrderedDict
from collections.abc import Sequence

from scheduler.models import Decision, Estimates, PendingTask, WorkerView
from scheduler.simulator import SimulatedTask, Simulator
from scheduler.strategies import (
    HeapQueue,
    RankQueue,
    Snapshot,
    Strategy,
    SubmissionQueue,
    TaskQueue,
)
from scheduler.workload import WorkloadTask


def reference_plan(
    strategy: Strategy, queue: TaskQueue, snapshot: Snapshot, limit: int
) -> list[Decision]:
    """The planning loop before WorkerPool: copies of the free workers in a list."""
    strategy.observe(queue, snapshot)
    workers = [w.copy() for w in snapshot.workers if w.inflight < w.slots]
    decisions: list[Decision] = []
    held: list[PendingTask] = []
    placed = 0
    while workers and placed < limit:
        task = queue.pop()
        if task is None:
            break
        reason = strategy.expire_reason(task, snapshot)
        if reason is not None:
            decisions.append(Decision(task, "", reason))
            continue
        worker = strategy.pick_worker(task, workers, snapshot)
        if worker is None:
            held.append(task)
            continue
        decisions.append(Decision(task, worker.name))
        placed += 1
        worker.inflight += 1
        if worker.inflight >= worker.slots:
            workers = [w for w in workers if w.inflight < w.slots]
    for task in held:
        queue.add(task)
    return decisions


def reference_run(sim: Simulator, workload: Sequence[WorkloadTask]) -> list[SimulatedTask]:
    """What ``sim.run(workload)`` returned before the fast engine (same parameters)."""
    strategy = sim.strategy
    out = [SimulatedTask(task) for task in workload]
    by_id = {rec.task.id: rec for rec in out}
    arrival_order = sorted(range(len(out)), key=lambda i: (out[i].task.submit_at, i))
    seq_of = {out[i].task.id: n for n, i in enumerate(arrival_order)}
    waiting_on = {rec.task.id: set(rec.task.depends_on) for rec in out}
    dependents: dict[str, list[str]] = {}
    for rec in out:
        for dep in rec.task.depends_on:
            dependents.setdefault(dep, []).append(rec.task.id)

    workers = [WorkerView(f"w{i}", sim.slots) for i in range(1, sim.n_workers + 1)]
    worker_named = {w.name: w for w in workers}
    warm: dict[str, OrderedDict[str, None]] = {w.name: OrderedDict() for w in workers}
    if sim.estimates is not None:
        estimates = copy.deepcopy(sim.estimates)
    else:
        estimates = Estimates(default_duration=sim.default_duration)
    queue = strategy.make_queue(estimates)
    if isinstance(queue, (SubmissionQueue, RankQueue)):
        queue = HeapQueue(strategy.sort_key)
    arrivals = [out[i] for i in arrival_order]
    finishes: list[tuple[float, int, str]] = []
    running: dict[str, SimulatedTask] = {}
    next_arrival = 0
    free = sim.n_workers * sim.slots
    released: set[str] = set()
    sim.switches = []

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
        t_arrival = arrivals[next_arrival].task.submit_at if next_arrival < len(arrivals) else None
        t_finish = finishes[0][0] if finishes else None
        now = min(t for t in (t_arrival, t_finish) if t is not None)
        while finishes and finishes[0][0] <= now:
            _, _, task_id = heapq.heappop(finishes)
            rec = by_id[task_id]
            del running[task_id]
            worker = worker_named[str(rec.worker)]
            worker.inflight -= 1
            free += 1
            rec.state = "failed" if rec.task.fails else "succeeded"
            key = rec.task.affinity_key
            if key is not None:
                old = estimates.affinity.get((key, worker.name), 0.0)
                step = sim.affinity_step if rec.state == "succeeded" else -sim.affinity_step
                estimates.affinity[(key, worker.name)] = min(1.0, max(0.0, old + step))
            if rec.state == "succeeded":
                worker.succeeded += 1
                assert rec.start is not None
                assert rec.finish is not None
                sim._learn(estimates, rec.task, rec.finish - rec.start)
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
            if strategy.uses_estimates:
                overrun: dict[str, float] = {}
                for run in running.values():
                    assert run.start is not None
                    elapsed = now - run.start
                    name = run.task.name
                    if elapsed > estimates.durations.get(name, estimates.default_duration):
                        overrun[name] = max(elapsed, overrun.get(name, 0.0))
                estimates.overrun = overrun
            snapshot = Snapshot(now=now, workers=workers, estimates=estimates)
            decisions = reference_plan(strategy, queue, snapshot, free)
            sim.switches.extend(strategy.take_switches())
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
                rec.start = now + sim.dispatch_overhead
                rec.warm = _touch(warm[worker.name], rec.task.affinity_key, sim.warm_capacity)
                factor = sim.warm_factor if rec.warm else 1.0
                rec.finish = rec.start + rec.task.duration * factor
                rec.state = "running"
                running[rec.task.id] = rec
                heapq.heappush(finishes, (rec.finish, seq_of[rec.task.id], rec.task.id))
    return out


def _touch(keys: OrderedDict[str, None], key: str | None, capacity: int) -> bool:
    if key is None:
        return False
    was_warm = key in keys
    keys[key] = None
    keys.move_to_end(key)
    while len(keys) > capacity:
        keys.popitem(last=False)
    return was_warm
