"""Workflows in the simulator against theory (pure: no Redis).

- on random DAGs, no strategy starts a task before all its parents have
  finished, and the same input gives the same schedule;
- on one worker, ``critical_path`` runs a topological order, always the ready
  task with the longest remaining path;
- on in-trees with unit durations it is optimal: its makespan equals the
  bound that Hu's level algorithm attains;
- on random layered DAGs its makespan is near the lower bound and at most the
  other strategies' (see docs/strategies.md for the one that can beat it);
- deadline back-propagation lets ``edf`` meet a deadline at the end of a long
  chain that it misses on the tasks' own deadlines.
"""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.adaptive import build_strategy
from scheduler.settings import STRATEGY_NAMES, load_settings
from scheduler.simulator import Simulator, outcome_metrics
from scheduler.strategies import CriticalPathStrategy, EdfStrategy
from scheduler.workflow import build_graph
from scheduler.workload import WorkloadTask, load_workload
from scheduler.workload_dag import DagShape, generate_dag

CHAIN = (
    Path(__file__).resolve().parent.parent
    / "examples"
    / "workloads"
    / "dag"
    / "deadline_chain.jsonl"
)
# Strategies whose order follows propagated deadlines when a workflow has one.
BY_DEADLINES = ("edf", "adaptive")


@st.composite
def dag_workloads(draw):
    n = draw(st.integers(1, 30))
    rows = []
    for i in range(n):
        deps = (
            tuple(f"t{j}" for j in sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))))
            if i
            else ()
        )
        rows.append(
            WorkloadTask(
                id=f"t{i}",
                name=draw(st.sampled_from("abc")),
                submit_at=draw(st.sampled_from([0.0, 0.0, 0.5, 1.0])),
                duration=draw(st.floats(0.01, 2)),
                priority=draw(st.integers(0, 9)),
                deadline=draw(st.none() | st.floats(0, 6)),
                expected_duration=draw(st.none() | st.floats(0.01, 2)),
                affinity_key=draw(st.none() | st.sampled_from(["k0", "k1"])),
                depends_on=deps,
                fails=draw(st.integers(0, 9)) == 0,
                on_parent_failure=draw(st.sampled_from(["cancel", "run"])),
            )
        )
    return rows


def simulate(name, tasks, workers, slots=1, **values):
    cfg = load_settings({}, **values)
    return Simulator.from_settings(build_strategy(name, cfg), cfg, workers=workers, slots=slots)


@settings(max_examples=40, deadline=None)
@given(
    dag_workloads(),
    st.integers(1, 3),
    st.integers(1, 2),
    st.sampled_from(["run", "expire"]),
)
def test_no_strategy_starts_a_task_before_its_parents_finish_and_runs_are_deterministic(
    tasks, workers, slots, late
):
    by_id = {t.id: t for t in tasks}
    for name in STRATEGY_NAMES:
        first = simulate(name, tasks, workers, slots, edf_late=late).simulate(tasks)
        again = simulate(name, tasks, workers, slots, edf_late=late).simulate(tasks)
        assert first == again, name
        finish = dict(zip((t.id for t in tasks), first.finish, strict=True))
        state = dict(zip((t.id for t in tasks), first.state, strict=True))
        for t, start in zip(tasks, first.start, strict=True):
            if start is None:
                continue
            for parent in t.depends_on:
                if finish[parent] is None:  # it never ran: cancelled, or expired by edf
                    assert state[parent] in ("cancelled", "expired"), (name, t.id)
                    assert by_id[t.id].on_parent_failure == "run", (name, t.id)
                    continue
                assert finish[parent] <= start, (name, t.id)
                if by_id[t.id].on_parent_failure == "cancel":
                    assert state[parent] == "succeeded", (name, t.id)


@settings(max_examples=60, deadline=None)
@given(dag_workloads())
def test_on_one_worker_critical_path_runs_the_ready_task_with_the_longest_path_in_topological_order(
    tasks,
):
    tasks = [
        msgspec.structs.replace(t, expected_duration=t.duration, fails=False, submit_at=0.0)
        for t in tasks
    ]
    outcome = Simulator(CriticalPathStrategy(), workers=1).simulate(tasks)
    graph = build_graph([t.id for t in tasks], [t.depends_on for t in tasks])
    rank = graph.ranks([t.duration for t in tasks])
    alone = [not graph.parents[i] and not graph.children[i] for i in range(len(tasks))]
    started = sorted(range(len(tasks)), key=lambda i: outcome.start[i])
    done: set[int] = set()
    for i in started:
        ready = [
            j
            for j in range(len(tasks))
            if j not in done and all(p in done for p in graph.parents[j])
        ]
        assert i in ready  # a topological order
        # the longest remaining path among the ready (a task alone is its own path)
        assert rank[i] == max(rank[j] for j in ready)
        assert alone[i] or rank[i] > 0
        done.add(i)


@st.composite
def in_trees(draw):
    """An in-tree: every task but the root has one child; leaves start, the root ends."""
    n = draw(st.integers(1, 40))
    child = [None] + [draw(st.integers(0, i - 1)) for i in range(1, n)]
    deps = [[f"t{i}" for i in range(n) if child[i] == j] for j in range(n)]
    return [
        WorkloadTask(id=f"t{j}", name="unit", submit_at=0.0, duration=1.0,
                     expected_duration=1.0, depends_on=tuple(deps[j]))
        for j in range(n)
    ], child  # fmt: skip


def hu_bound(child, machines):
    """The optimal makespan of an in-tree of unit tasks on ``machines``: Hu's bound.

    With ``level`` the tasks on the path from a task to the root (the root is
    1) and ``L`` the largest, the ``Q(k)`` tasks of the top ``k`` levels need
    ``ceil(Q(k) / m)`` steps, and the last of them has ``L - k`` more tasks
    after it: ``max_k ceil(Q(k) / m) + L - k``. Hu's algorithm attains it.
    """
    level = []
    for parent_child in child:
        level.append(1 if parent_child is None else level[parent_child] + 1)
    top = max(level)
    return max(
        math.ceil(sum(1 for x in level if x >= top - k + 1) / machines) + top - k
        for k in range(1, top + 1)
    )


@settings(max_examples=150, deadline=None)
@given(in_trees(), st.integers(1, 4))
def test_critical_path_is_optimal_on_in_trees_with_unit_durations(tree, machines):
    tasks, child = tree
    outcome = Simulator(CriticalPathStrategy(), workers=machines).simulate(tasks)
    makespan = outcome_metrics(outcome, machines)["makespan"]
    assert makespan == hu_bound(child, machines)


def lower_bound(tasks, slots):
    graph = build_graph([t.id for t in tasks], [t.depends_on for t in tasks])
    longest, _ = graph.critical_path([t.duration for t in tasks])
    return max(longest, sum(t.duration for t in tasks) / slots)


def makespans(tasks, workers):
    return {
        name: outcome_metrics(simulate(name, tasks, workers).simulate(tasks), workers)["makespan"]
        for name in STRATEGY_NAMES
    }


def instance(seed, deadlines=True):
    """One random layered DAG of the quality benchmark (benchmarks/dag_quality.py)."""
    from benchmarks.dag_quality import draw_instance

    tasks, workers = draw_instance(seed)
    if not deadlines:
        tasks = [msgspec.structs.replace(t, deadline=None) for t in tasks]
    return tasks, workers


@pytest.mark.parametrize("deadlines", [True, False])
def test_on_random_layered_dags_critical_path_is_near_the_bound_and_at_most_the_others(deadlines):
    samples = 40
    at_most_all = at_most_rest = 0
    for seed in range(samples):
        tasks, workers = instance(seed, deadlines)
        spans = makespans(tasks, workers)
        mine = spans.pop("critical_path")
        assert mine <= 1.3 * lower_bound(tasks, workers), seed
        assert mine <= 1.03 * min(spans.values()), seed
        at_most_all += mine <= min(spans.values()) + 1e-9
        rest = [span for name, span in spans.items() if name not in BY_DEADLINES]
        at_most_rest += mine <= min(rest) + 1e-9
    assert at_most_rest >= 0.9 * samples
    if not deadlines:  # then edf too orders by the remaining path (its tie-break)
        assert at_most_all >= 0.9 * samples


def test_edf_meets_a_deadline_behind_a_long_chain_only_with_propagated_deadlines():
    tasks = load_workload(CHAIN)
    sink = next(t for t in tasks if t.deadline is not None and t.depends_on)
    outcomes = {}
    for propagate in (True, False):
        sim = Simulator(EdfStrategy(), workers=2, propagate_deadlines=propagate)
        outcomes[propagate] = {r.task.id: r for r in sim.run(tasks)}
    assert outcomes[True][sink.id].finish <= sink.deadline
    assert outcomes[False][sink.id].finish > sink.deadline
    # and the short tasks that compete with the chain still meet theirs
    for t in tasks:
        if not t.depends_on and t.deadline is not None and t.id != sink.id:
            assert outcomes[True][t.id].finish <= t.deadline, t.id


def test_generated_dags_are_deterministic_connected_and_keep_their_fan_limits():
    shape = DagShape(dags=3, width=5, fan_in=2, fan_out=2, slack=1.5)
    tasks = generate_dag(300, 7, workers=3, shape=shape)
    assert tasks == generate_dag(300, 7, workers=3, shape=shape)
    assert tasks != generate_dag(300, 8, workers=3, shape=shape)
    assert len(tasks) == 300
    by_workflow: dict[str, list[WorkloadTask]] = {}
    for t in tasks:
        by_workflow.setdefault(t.id.split(".")[0], []).append(t)
    assert len(by_workflow) == 3
    for rows in by_workflow.values():
        graph = build_graph([t.id for t in rows], [t.depends_on for t in rows])
        assert sum(1 for p in graph.parents if not p) == 1  # one start task
        assert max(len(p) for p in graph.parents) <= 2
        assert max(len(c) for c in graph.children) <= 2
        assert len({t.submit_at for t in rows}) == 1  # submitted together
        sinks = [rows[i] for i in range(len(rows)) if not graph.children[i]]
        assert all(t.deadline is not None for t in sinks)
        assert all(t.deadline is None for t in rows if t not in sinks)
        bound = lower_bound(rows, 3)
        assert sinks[0].deadline == pytest.approx(rows[0].submit_at + 1.5 * bound, abs=1e-5)
