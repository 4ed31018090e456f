"""The simulator's dependency semantics (docs/simulator.md, "Dependencies"), pure: no Redis."""

from __future__ import annotations

import pytest

from scheduler.errors import WorkloadError
from scheduler.models import PendingTask, WorkerView
from scheduler.simulator import Simulator, metrics
from scheduler.strategies import EdfStrategy, FifoStrategy, Snapshot
from scheduler.workload import WorkloadTask, parse_workload


def task(task_id, duration=1.0, *deps, **fields):
    return WorkloadTask(
        id=task_id, name=fields.pop("name", "x"), submit_at=fields.pop("submit_at", 0.0),
        duration=duration, depends_on=tuple(deps), **fields,
    )  # fmt: skip


def run(tasks, strategy=None, workers=2, **options):
    records = Simulator(strategy or FifoStrategy(), workers=workers, **options).run(tasks)
    return {r.task.id: r for r in records}


class Recording(FifoStrategy):
    """fifo that keeps what it was shown of each task at its decision."""

    def __init__(self) -> None:
        self.seen: dict[str, PendingTask] = {}

    def pick_worker(
        self, task: PendingTask, workers: list[WorkerView], snapshot: Snapshot
    ) -> WorkerView | None:
        self.seen[task.id] = task
        return super().pick_worker(task, workers, snapshot)


def test_a_child_starts_when_its_last_parent_finishes():
    # a diamond: top -> left, right -> bottom
    by_id = run(
        [
            task("top", 1.0),
            task("left", 2.0, "top"),
            task("right", 0.5, "top"),
            task("bottom", 1.0, "left", "right"),
        ]
    )
    assert by_id["left"].start == by_id["right"].start == 1.0
    assert by_id["bottom"].start == 3.0  # left's finish, the later parent
    assert all(r.state == "succeeded" for r in by_id.values())


def test_a_child_submitted_after_its_parents_finished_starts_at_its_own_submission():
    by_id = run([task("a", 1.0), task("b", 1.0, "a", submit_at=5.0)])
    assert by_id["b"].start == 5.0


def test_a_failed_parent_cancels_its_dependents_transitively_with_reasons_naming_the_parent():
    by_id = run(
        [
            task("a", 1.0, fails=True),
            task("b", 1.0, "a"),
            task("c", 1.0, "b"),
            task("free", 1.0),
        ]
    )
    assert by_id["a"].state == "failed"
    assert (by_id["b"].state, by_id["b"].reason) == ("cancelled", "parent a failed")
    assert (by_id["c"].state, by_id["c"].reason) == ("cancelled", "parent b cancelled")
    assert by_id["b"].start is None
    assert by_id["c"].start is None
    assert by_id["free"].state == "succeeded"


def test_a_dependent_that_runs_anyway_is_released_when_its_parent_fails():
    by_id = run(
        [
            task("a", 2.0, fails=True),
            task("b", 1.0, "a", on_parent_failure="run"),
            task("c", 1.0, "b"),
        ]
    )
    assert by_id["a"].state == "failed"
    assert (by_id["b"].state, by_id["b"].start) == ("succeeded", 2.0)
    assert (by_id["c"].state, by_id["c"].start) == ("succeeded", 3.0)


def test_a_dependent_that_runs_anyway_still_waits_for_its_other_parents():
    by_id = run(
        [
            task("bad", 1.0, fails=True),
            task("slow", 3.0),
            task("child", 1.0, "bad", "slow", on_parent_failure="run"),
        ]
    )
    assert by_id["child"].start == 3.0


def test_a_cancelled_parent_cancels_a_dependent_that_does_not_run_anyway_even_if_others_would():
    by_id = run(
        [
            task("a", 1.0, fails=True),
            task("b", 1.0, "a"),  # cancelled
            task("c", 1.0, "b", on_parent_failure="run"),  # runs anyway after b's cancellation
            task("d", 1.0, "b"),  # cancelled
        ]
    )
    assert by_id["b"].reason == "parent a failed"
    assert (by_id["c"].state, by_id["c"].start) == ("succeeded", 1.0)
    assert (by_id["d"].state, by_id["d"].reason) == ("cancelled", "parent b cancelled")


def test_an_expired_parent_cancels_its_dependents_and_one_that_runs_anyway_starts_at_once():
    tasks = [
        task("busy", 5.0),
        task("late", 1.0, deadline=0.5, expected_duration=1.0),
        task("after", 1.0, "late"),
        task("anyway", 1.0, "late", on_parent_failure="run"),
    ]
    by_id = run(tasks, EdfStrategy(late="expire"), workers=2)
    assert by_id["late"].state == "expired"
    assert (by_id["after"].state, by_id["after"].reason) == ("cancelled", "parent late expired")
    # released by the expiry at time 0 and placed in the same instant on the free slot
    assert (by_id["anyway"].state, by_id["anyway"].start) == ("succeeded", 0.0)


def test_a_task_whose_parent_failed_before_it_was_submitted_is_cancelled():
    by_id = run([task("a", 1.0, fails=True), task("b", 1.0, "a", submit_at=4.0)])
    assert (by_id["b"].state, by_id["b"].reason) == ("cancelled", "parent a failed")


def test_released_tasks_carry_their_remaining_path_from_hints_and_learned_estimates():
    strategy = Recording()
    tasks = [
        task("warm", 0.2, name="fast"),  # teaches the key "fast" (0.2) first
        task("a", 1.0, "warm", name="slow", expected_duration=3.0),
        task("b", 0.2, "a", name="fast"),
        task("c", 0.2, "b", name="unknown"),
        task("alone", 1.0, submit_at=10.0),
    ]
    Simulator(strategy, workers=1, default_duration=1.0).run(tasks)
    seen = strategy.seen
    # at time 0 nothing is learned: warm -> a (hint 3) -> b (default 1) -> c (default 1)
    assert seen["warm"].path == pytest.approx(1.0 + 3.0 + 1.0 + 1.0)
    # released at 0.2, after "fast" was learned as 0.2
    assert seen["a"].path == pytest.approx(3.0 + 0.2 + 1.0)
    assert seen["b"].path == pytest.approx(0.2 + 1.0)
    assert seen["c"].path == pytest.approx(1.0)
    assert seen["alone"].path == 0.0  # outside any workflow


def test_a_sink_deadline_is_propagated_to_ancestors_with_the_margin_and_can_be_switched_off():
    tasks = [
        task("a", 1.0, expected_duration=1.0),
        task("b", 2.0, "a", expected_duration=2.0),
        task("c", 3.0, "b", expected_duration=3.0, deadline=10.0),
        task("own", 1.0, deadline=4.0),
    ]
    strategy = Recording()
    Simulator(strategy, workers=1, deadline_margin=0.5).run(tasks)
    assert [strategy.seen[t].deadline for t in ("a", "b", "c", "own")] == [4.5, 6.5, 10.0, 4.0]
    strategy = Recording()
    Simulator(strategy, workers=1, propagate_deadlines=False).run(tasks)
    assert [strategy.seen[t].deadline for t in ("a", "b", "c", "own")] == [None, None, 10.0, 4.0]


def test_workflow_metrics_count_workflows_and_those_that_missed_a_deadline():
    tasks = [
        task("a", 1.0),
        task("b", 1.0, "a", deadline=1.5),  # finishes at 2: missed
        task("c", 1.0),
        task("d", 1.0, "c", deadline=5.0),  # met
        task("e", 1.0, fails=True),
        task("f", 1.0, "e", deadline=9.0),  # cancelled: missed
        task("alone", 1.0, deadline=0.1),  # not a workflow
    ]
    m = metrics(Simulator(FifoStrategy(), workers=3).run(tasks), 3)
    assert (m["workflows"], m["workflow_deadline_misses"]) == (3, 2)
    independent = metrics(Simulator(FifoStrategy(), workers=3).run(tasks[-1:]), 3)
    assert "workflows" not in independent


def test_on_parent_failure_is_read_from_a_workload_row_and_a_bad_value_is_named():
    good = '{"id": "a", "name": "x", "submit_at": 0, "duration": 1}\n'
    good += '{"id": "b", "name": "x", "submit_at": 0, "duration": 1, "depends_on": ["a"], "on_parent_failure": "run"}'
    assert parse_workload(good.splitlines())[1].on_parent_failure == "run"
    with pytest.raises(WorkloadError) as exc:
        parse_workload(good.replace('"run"', '"retry"').splitlines(), "w.jsonl")
    assert exc.value.field == "w.jsonl:2: on_parent_failure"
    assert "cancel or run" in str(exc.value)
