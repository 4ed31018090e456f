"""The simulator as it was before it was made fast: the reference the fast engine must match.

It is the engine of commit f2ed45c, unchanged in what it does: at every event
it builds a snapshot, copies the workers with a free slot into a plain list
and calls the strategy's ``pick_worker`` on it (no WorkerPool, no sorted
order), sums free slots by hand, recomputes each name's longest run from
every run in flight, keeps one record object per task, and orders ``fifo``
and ``load_balance`` with a heap on their ``sort_key`` (no SubmissionQueue), and
``priority``, ``weighted``, ``edf`` and ``critical_path`` likewise (no
RankQueue, DeadlineQueue or PathQueue).

Dependencies follow docs/simulator.md ("Dependencies"), written the plain
way: a released task's remaining path and propagated deadline are computed
from scratch, by recursion over its descendants, from the path estimates as
they stand at its release (no stored values, no recomputation on changes);
a parent that ends without success cancels its dependents with a reason, or
releases those that run anyway, which are placed at the same instant.
``tests/test_simulator_fast.py`` runs both on random workloads.

Delay scheduling, added later, is modelled the plain way too: after each
planning round the strategy's ``wake_at`` becomes one more event time.
"""

from __future__ import annotations

import copy
import heapq
import math
from collections import OrderedDict
from collections.abc import Sequence

from scheduler.models import Decision, Estimates, PendingTask, WorkerView
from scheduler.simulator import SimulatedTask, Simulator
from scheduler.strategies import (
    HeapQueue,
    PathQueue,
    RankQueue,
    Snapshot,
    Strategy,
    SubmissionQueue,
    TaskQueue,
)
from scheduler.strategies.edf import DeadlineQueue
from scheduler.workflow import PathEstimates
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
    for i in sorted(range(len(out)), key=lambda i: (out[i].task.submit_at, i)):
        for dep in dict.fromkeys(out[i].task.depends_on):  # children in arrival order
            dependents.setdefault(dep, []).append(out[i].task.id)

    workers = [WorkerView(f"w{i}", sim.slots) for i in range(1, sim.n_workers + 1)]
    worker_named = {w.name: w for w in workers}
    warm: dict[str, OrderedDict[str, None]] = {w.name: OrderedDict() for w in workers}
    if sim.estimates is not None:
        estimates = copy.deepcopy(sim.estimates)
    else:
        estimates = Estimates(default_duration=sim.default_duration)
    strategy.forget()
    queue = strategy.make_queue(estimates)
    if isinstance(queue, (SubmissionQueue, RankQueue, DeadlineQueue, PathQueue)):
        queue = HeapQueue(strategy.sort_key)
    paths = PathEstimates(estimates.default_duration, estimates.durations)
    in_workflow = {rec.task.id for rec in out if rec.task.depends_on} | set(dependents)
    arrivals = [out[i] for i in arrival_order]
    finishes: list[tuple[float, int, str]] = []
    running: dict[str, SimulatedTask] = {}
    next_arrival = 0
    free = sim.n_workers * sim.slots
    released: set[str] = set()
    sim.switches = []

    def expected(task_id: str) -> float:
        task = by_id[task_id].task
        hint = task.expected_duration
        return hint if hint is not None else paths.get(task.name)

    def path(task_id: str, memo: dict[str, float]) -> float:
        if task_id not in memo:
            kids = dependents.get(task_id, [])
            memo[task_id] = expected(task_id) + max((path(c, memo) for c in kids), default=0.0)
        return memo[task_id]

    def inherited(task_id: str, memo: dict[str, float]) -> float:
        return min(
            (due(c, memo) - expected(c) for c in dependents.get(task_id, [])), default=math.inf
        )

    def due(task_id: str, memo: dict[str, float]) -> float:
        if task_id not in memo:
            own = by_id[task_id].task.deadline
            memo[task_id] = min(math.inf if own is None else own, inherited(task_id, memo))
        return memo[task_id]

    def release(rec: SimulatedTask) -> None:
        task = rec.task
        deadline = task.deadline
        rank = 0.0
        if task.id in in_workflow:
            rank = path(task.id, {})  # from scratch at each release (memo per call)
            later = inherited(task.id, {})
            if sim.propagate_deadlines and later < math.inf:
                later -= sim.deadline_margin
                deadline = later if deadline is None else min(deadline, later)
        queue.add(
            PendingTask(
                id=task.id,
                name=task.name,
                priority=task.priority,
                seq=seq_of[task.id],
                submitted_at=task.submit_at,
                deadline=deadline,
                expected_duration=task.expected_duration,
                affinity_key=task.affinity_key,
                path=rank,
            )
        )

    def cancel_dependents(task_id: str) -> list[SimulatedTask]:
        """Dependents of a task that ended without success, breadth-first from it:
        cancelled, or released (returned) when they run anyway."""
        released_now = []
        ended = [task_id]
        for parent in ended:  # grows as the cascade reaches further
            for child in dependents.get(parent, []):
                rec = by_id[child]
                if rec.state != "pending":
                    continue
                if rec.task.on_parent_failure == "run":
                    waiting_on[child].discard(parent)
                    if not waiting_on[child] and child in released:
                        released_now.append(rec)
                    continue
                rec.state = "cancelled"
                rec.reason = f"parent {parent} {by_id[parent].state}"
                ended.append(child)
        return released_now

    wake: float | None = None  # when a task the strategy held back may run anywhere
    while next_arrival < len(arrivals) or finishes or wake is not None:
        t_arrival = arrivals[next_arrival].task.submit_at if next_arrival < len(arrivals) else None
        t_finish = finishes[0][0] if finishes else None
        now = min(t for t in (t_arrival, t_finish, wake) if t is not None)
        if wake is not None and wake <= now:
            wake = None
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
                paths.observe(rec.task.name, estimates.durations[rec.task.name])
                for child in dependents.get(task_id, []):
                    waiting_on[child].discard(task_id)
                    if not waiting_on[child] and child in released:
                        release(by_id[child])
            else:
                worker.failed += 1
                for child_rec in cancel_dependents(task_id):
                    release(child_rec)
        while next_arrival < len(arrivals) and arrivals[next_arrival].task.submit_at <= now:
            rec = arrivals[next_arrival]
            next_arrival += 1
            released.add(rec.task.id)
            if rec.state == "pending" and not waiting_on[rec.task.id]:
                release(rec)
        while free and len(queue):  # again when an expiry released run-anyway dependents
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
            held_until = strategy.wake_at()
            if held_until is not None and (wake is None or held_until < wake):
                wake = held_until
            sim.switches.extend(strategy.take_switches())
            released_now: list[SimulatedTask] = []
            for decision in decisions:
                rec = by_id[decision.task.id]
                if rec.state != "pending":
                    continue
                if decision.expire is not None:
                    rec.state = "expired"
                    rec.reason = decision.expire
                    released_now += cancel_dependents(rec.task.id)
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
            for child_rec in released_now:
                release(child_rec)
            if not released_now:
                break
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
