"""The workflow graph module against brute force, and its errors (pure: no Redis)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.errors import InvalidInputError, WorkflowError
from scheduler.workflow import PathEstimates, build_graph, components


@st.composite
def dags(draw, max_size=12):
    """A random DAG: each task may depend on any earlier one (ids in a shuffled order)."""
    n = draw(st.integers(1, max_size))
    parents = [
        sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else [] for i in range(n)
    ]
    names = draw(st.permutations([f"t{i}" for i in range(n)]))
    durations = draw(st.lists(st.floats(0.01, 5), min_size=n, max_size=n))
    deadlines = draw(st.lists(st.none() | st.floats(0, 20), min_size=n, max_size=n))
    return names, [[names[p] for p in mine] for mine in parents], durations, deadlines


def paths_after(children, v):
    """Every path from v to a sink, as lists of tasks (brute force)."""
    if not children[v]:
        return [[v]]
    return [[v, *rest] for c in children[v] for rest in paths_after(children, c)]


@settings(max_examples=200, deadline=None)
@given(dags())
def test_the_order_puts_every_task_after_its_parents(dag):
    ids, deps, _, _ = dag
    graph = build_graph(ids, deps)
    position = {v: at for at, v in enumerate(graph.order)}
    assert sorted(graph.order) == list(range(len(ids)))
    for v, mine in enumerate(graph.parents):
        assert all(position[p] < position[v] for p in mine)
        assert [ids[p] for p in mine] == list(dict.fromkeys(deps[v]))


@settings(max_examples=200, deadline=None)
@given(dags())
def test_ranks_are_the_longest_path_to_a_sink_and_the_critical_path_is_the_longest(dag):
    ids, deps, durations, _ = dag
    graph = build_graph(ids, deps)
    ranks = graph.ranks(durations)
    for v in range(len(ids)):
        longest = max(sum(durations[u] for u in p) for p in paths_after(graph.children, v))
        assert ranks[v] == pytest.approx(longest)
    length, chain = graph.critical_path(durations)
    assert length == pytest.approx(max(ranks))
    index = {task_id: i for i, task_id in enumerate(ids)}
    steps = [index[c] for c in chain]
    assert sum(durations[u] for u in steps) == pytest.approx(length)
    assert all(b in graph.children[a] for a, b in itertools.pairwise(steps))
    assert not graph.parents[steps[0]]
    assert not graph.children[steps[-1]]


@settings(max_examples=200, deadline=None)
@given(dags(), st.sampled_from([0.0, 0.5]))
def test_latest_finish_is_each_later_deadline_less_the_longest_path_to_it_less_the_margin(
    dag, margin
):
    ids, deps, durations, deadlines = dag
    graph = build_graph(ids, deps)
    latest = graph.latest_finishes(durations, deadlines, margin)
    for v in range(len(ids)):
        # brute force: every path v -> ... -> s to a task s with a deadline
        bounds = []
        for path in paths_after(graph.children, v):
            for k, s in enumerate(path[1:], start=1):
                if deadlines[s] is not None:
                    after = sum(durations[u] for u in path[1 : k + 1])
                    bounds.append(deadlines[s] - after - margin)
        own = deadlines[v]
        want = min([*bounds, math.inf if own is None else own])
        if want == math.inf:
            assert latest[v] is None
        else:
            assert latest[v] == pytest.approx(want)


def test_a_chain_gives_each_ancestor_the_deadline_less_the_path_after_it_less_the_margin():
    graph = build_graph(["a", "b", "c"], [[], ["a"], ["b"]])
    latest = graph.latest_finishes([1.0, 2.0, 3.0], [None, None, 10.0], margin=0.5)
    # latest starts: c 7, b 5 - 0.5, a 4 - 0.5: the margin is taken once
    assert latest == [4.5, 6.5, 10.0]


@pytest.mark.parametrize(
    ("ids", "deps", "field", "named", "words"),
    [
        (["a", "b"], [[], ["zz"]], "b.depends_on", ("b", "zz"), "unknown parent 'zz' of task 'b'"),
        (["a", "b"], [["a"], []], "a.depends_on", ("a",), "task 'a' depends on itself"),
        (
            ["a", "b", "c", "d"],
            [["c"], ["a"], ["b"], []],
            "a.depends_on",
            ("a", "b", "c"),
            "cycle a -> b -> c -> a",
        ),
        (["a", "a"], [[], []], "id", ("a",), "repeated"),
    ],
)
def test_a_bad_workflow_is_refused_naming_the_ids_at_fault(ids, deps, field, named, words):
    with pytest.raises(WorkflowError) as exc:
        build_graph(ids, deps)
    assert exc.value.field == field
    assert set(exc.value.ids) == set(named)
    assert words in str(exc.value)
    assert isinstance(exc.value, InvalidInputError)


def test_a_cycle_downstream_of_good_tasks_is_named_without_them():
    ids = ["ok", "x", "y", "after"]
    with pytest.raises(WorkflowError) as exc:
        build_graph(ids, [[], ["ok", "y"], ["x"], ["y"]])
    assert exc.value.ids == ("x", "y")
    assert "cycle x -> y -> x" in str(exc.value)


def test_a_workflow_over_the_size_limit_is_refused_before_anything_else():
    with pytest.raises(WorkflowError, match="at most 3 tasks") as exc:
        build_graph(["a", "b", "c", "d"], [[], ["zz"], [], []], limit=3)
    assert exc.value.field == "workflow"
    assert exc.value.value == 4


def test_a_parent_outside_the_workflow_is_allowed_and_left_out_of_the_graph():
    graph = build_graph(["a", "b"], [["done-earlier"], ["a"]], outside={"done-earlier"})
    assert graph.parents == [[], [0]]
    assert graph.order == [0, 1]


def test_components_join_tasks_linked_in_either_direction():
    # 0 <- 1, 2 <- 1, 3 alone, 4 <- 5
    assert components([[], [0, 2], [], [], [], [4]]) == [0, 0, 0, 3, 4, 4]


def test_path_estimates_follow_a_key_when_first_learned_and_then_only_past_the_tolerance():
    paths = PathEstimates(default=1.0, tolerance=0.25)
    assert paths.get("x") == 1.0
    assert paths.observe("x", 0.2)  # first learned
    assert paths.get("x") == 0.2
    assert not paths.observe("x", 0.24)  # within 25 % of 0.2
    assert paths.get("x") == 0.2
    assert paths.observe("x", 0.26)
    assert paths.get("x") == 0.26
    assert paths.version == 2
