"""The fast paths against the general ones they replace (pure: no Redis).

- the simulator's engine against the engine it replaced (``tests/reference_sim.py``:
  plain worker lists, a heap on ``sort_key``, one record per task), task by task;
- :class:`WorkerPool` against ``min`` over the free workers;
- :class:`SubmissionQueue` and :class:`RankQueue` against a heap on ``sort_key``;
- the metrics' percentiles by selection against a sort;
- the msgspec workload reader against the pydantic one.
"""

from __future__ import annotations

import ast
import io
import json
import math
import random
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.adaptive import build_strategy
from scheduler.errors import WorkloadError
from scheduler.models import Estimates, PendingTask, WorkerView
from scheduler.settings import STRATEGY_NAMES, load_settings
from scheduler.simulator import Simulator, metrics, outcome_metrics
from scheduler.stats import percentiles, sorted_percentile
from scheduler.strategies import (
    EdfStrategy,
    FifoStrategy,
    HeapQueue,
    LoadBalanceStrategy,
    PriorityStrategy,
    RankQueue,
    SubmissionQueue,
    WeightedStrategy,
    WorkerPool,
    by_load,
    least,
)
from scheduler.strategies.base import Snapshot
from scheduler.strategies.edf import DeadlineQueue
from scheduler.strategies.priority import by_load_then_reliability
from scheduler.workload import WorkloadTask, parse_fast, parse_workload
from scheduler.workload_dag import DagShape, generate_dag
from scheduler.workload_gen import KINDS, generate
from tests.reference_sim import reference_run

# -- the engine -------------------------------------------------------------------


@st.composite
def workloads(draw):
    n = draw(st.integers(1, 40))
    rows = []
    for i in range(n):
        submit = draw(st.one_of(st.integers(0, 12).map(lambda q: q / 4), st.floats(0, 3)))
        deps = ()
        if i and draw(st.booleans()) and draw(st.booleans()):
            deps = tuple(
                sorted({f"t{j}" for j in draw(st.lists(st.integers(0, i - 1), max_size=2))})
            )
        rows.append(
            WorkloadTask(
                id=f"t{i}",
                name=draw(st.sampled_from("abc")),
                submit_at=submit,
                duration=draw(st.floats(0.01, 3)),
                priority=draw(st.integers(0, 9)),
                deadline=draw(st.none() | st.floats(0, 4).map(lambda x, s=submit: s + x)),
                expected_duration=draw(st.none() | st.floats(0.01, 3)),
                affinity_key=draw(st.none() | st.sampled_from(["k0", "k1", "k2", "k3"])),
                depends_on=deps,
                fails=draw(st.integers(0, 9)) == 0,
                on_parent_failure=draw(st.sampled_from(["cancel", "run"])) if deps else "cancel",
            )
        )
    return rows


def _replay_against(fast, ref, ops):
    """Apply the same adds, pops and discards to a fast queue and its reference heap."""
    for op, task in ops:
        if op == "add":
            fast.add(task)
            ref.add(task)
        elif op == "discard":
            assert fast.discard(task.id) == ref.discard(task.id)
        else:
            assert fast.pop() == ref.pop()
        assert len(fast) == len(ref)
        assert sorted(t.id for t in fast.tasks()) == sorted(t.id for t in ref.tasks())


def _both(name, settings_values, workload, warm_capacity=4, **shape):
    """Records of the fast engine and of the reference, each with a fresh strategy."""
    cfg = load_settings({}, **settings_values)
    fast = Simulator.from_settings(build_strategy(name, cfg), cfg, **shape)
    ref = Simulator.from_settings(build_strategy(name, cfg), cfg, **shape)
    fast.warm_capacity = ref.warm_capacity = warm_capacity  # 0 too, which settings refuse
    outcome = fast.simulate(workload)
    expected = reference_run(ref, workload)
    return fast, outcome, ref, expected


def _assert_same(fast, outcome, ref, expected, slots_total):
    got = outcome.records()
    assert [(r.task.id, r.state, r.worker, r.start, r.finish, r.warm, r.reason) for r in got] == [
        (r.task.id, r.state, r.worker, r.start, r.finish, r.warm, r.reason) for r in expected
    ]
    assert fast.switches == ref.switches
    assert outcome_metrics(outcome, slots_total) == metrics(expected, slots_total)
    assert metrics(got, slots_total) == metrics(expected, slots_total)


@settings(max_examples=60, deadline=None)
@given(
    workloads(),
    st.sampled_from(STRATEGY_NAMES),
    st.integers(1, 4),
    st.integers(1, 3),
    st.sampled_from([0.0, 0.01]),
    st.fixed_dictionaries(
        {
            "edf_late": st.sampled_from(["run", "expire"]),
            "priority_aging": st.sampled_from([0.0, 0.1]),
            "adaptive_mode": st.sampled_from(["simulate", "rules"]),
            "affinity_weight": st.sampled_from([0.0, 1.0]),
            "deadline_margin": st.sampled_from([0.0, 0.5]),
        }
    ),
    st.integers(0, 3),
)
def test_the_fast_engine_makes_the_reference_engines_schedule(
    workload, name, workers, slots, overhead, values, warm
):
    shape = {
        "workers": workers,
        "slots": slots,
        "dispatch_overhead": overhead,
        "warm_capacity": warm,
    }
    _assert_same(*_both(name, values, workload, **shape), workers * slots)


@pytest.mark.parametrize("kind", KINDS)
def test_the_fast_engine_makes_the_reference_engines_schedule_on_generated_workloads(kind):
    # Long enough for adaptive's replays (it needs 100 recent arrivals) and backlogs.
    workload = generate(kind, 400, seed=5, workers=3, slots=2)
    for name in STRATEGY_NAMES:
        for late in ("run", "expire"):
            if late == "expire" and name not in ("edf", "adaptive"):
                continue
            both = _both(name, {"edf_late": late}, workload, workers=3, slots=2)
            _assert_same(*both, 6)


def test_the_fast_engine_makes_the_reference_engines_schedule_on_generated_dags():
    # Three workflows arriving over time, durations learned (paths computed again as
    # estimates are learned), sink deadlines propagated back, with a margin.
    workload = generate_dag(400, seed=5, workers=3, slots=2, shape=DagShape(dags=3, load=0.9))
    for name in STRATEGY_NAMES:
        for late in ("run", "expire"):
            if late == "expire" and name not in ("edf", "adaptive"):
                continue
            values = {"edf_late": late, "deadline_margin": 0.2}
            _assert_same(*_both(name, values, workload, workers=3, slots=2), 6)


# -- WorkerPool ---------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 3), st.integers(0, 3), st.integers(0, 5)), min_size=1, max_size=8
    ),
    st.lists(st.tuples(st.booleans(), st.integers(0, 7), st.booleans()), max_size=60),
    st.sampled_from([by_load, by_load_then_reliability]),
)
def test_a_pool_keeps_the_free_workers_and_their_least_as_min_finds_it(shape, steps, key):
    workers = [
        WorkerView(f"w{i}", slots, min(inflight, slots), succeeded=ok)
        for i, (slots, inflight, ok) in enumerate(shape)
    ]
    pool = WorkerPool(workers, key)
    for take, index, succeeded in steps:
        worker = workers[index % len(workers)]
        if take and worker.inflight < worker.slots:
            pool.take(worker)
        elif not take and worker.inflight > 0:
            worker.succeeded += succeeded
            worker.failed += not succeeded
            pool.release(worker)
        free = [w for w in workers if w.inflight < w.slots]
        assert sorted(w.name for w in pool) == sorted(w.name for w in free)
        assert pool.free_slots == sum(w.slots - w.inflight for w in free)
        if free:
            assert least(pool, key) is min(free, key=key)
            assert least(pool, by_load) is min(free, key=by_load)  # a key it is not ordered by


def test_a_pool_refuses_a_key_that_does_not_end_with_the_worker_name():
    key = lambda w: (w.load,)  # noqa: E731
    with pytest.raises(ValueError, match="end with the worker's name"):
        least(WorkerPool([WorkerView("w1", 1)], key), key)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 3), st.integers(0, 3)), min_size=1, max_size=8),
    st.lists(st.tuples(st.booleans(), st.integers(0, 7)), max_size=30),
    st.dictionaries(
        st.tuples(st.sampled_from(["a", "b"]), st.sampled_from([f"w{i}" for i in range(8)])),
        st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    ),
    st.sampled_from([None, "a", "b", "c"]),
)
def test_keyed_placement_from_the_pools_order_chooses_as_the_loop_over_workers(
    shape, steps, scores, key
):
    workers = [
        WorkerView(f"w{i}", slots, min(inflight, slots))
        for i, (slots, inflight) in enumerate(shape)
    ]
    pool = WorkerPool(workers, by_load)
    snapshot = Snapshot(0.0, workers, Estimates(affinity=scores))
    task = PendingTask("t", "x", 5, 1, 0.0, affinity_key=key)
    strategies = (
        EdfStrategy(),
        LoadBalanceStrategy(),
        LoadBalanceStrategy(0.0),
        LoadBalanceStrategy(0.4),
    )
    for take, index in steps:
        worker = workers[index % len(workers)]
        if take and worker.inflight < worker.slots:
            pool.take(worker)
        elif not take and worker.inflight > 0:
            pool.release(worker)
        if len(pool):
            for strategy in strategies:
                chosen = strategy.pick_worker(task, pool, snapshot)
                assert chosen is strategy.pick_worker(task, list(pool), snapshot)


# -- SubmissionQueue ---------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["add", "pop", "discard"]), st.integers(0, 30)), max_size=80)
)
def test_the_submission_queue_pops_in_the_order_of_a_heap_on_sort_key(ops):
    for strategy in (FifoStrategy(), LoadBalanceStrategy()):
        fast, ref = strategy.make_queue(), HeapQueue(strategy.sort_key)
        assert isinstance(fast, SubmissionQueue)
        _replay_against(
            fast, ref, [(op, PendingTask(f"t{s}", "x", 5, s, float(s))) for op, s in ops]
        )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "pop", "discard"]),
            st.integers(0, 30),
            st.integers(0, 9),
            st.sampled_from([0.0, 0.5, 2.0]),
        ),
        max_size=80,
    )
)
def test_the_rank_queue_pops_in_the_order_of_a_heap_on_sort_key(ops):
    for strategy in (PriorityStrategy(), PriorityStrategy(aging=0.0), WeightedStrategy()):
        fast, ref = strategy.make_queue(), HeapQueue(strategy.sort_key)
        assert isinstance(fast, RankQueue)
        tasks = [(op, PendingTask(f"t{s}", "x", p, s, at + s % 3)) for op, s, p, at in ops]
        _replay_against(fast, ref, tasks)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "pop", "discard"]),
            st.integers(0, 30),
            st.sampled_from([None, 0.0, 1.5, 3.0]),
        ),
        max_size=80,
    )
)
def test_the_deadline_queue_pops_in_the_order_of_a_heap_on_sort_key(ops):
    strategy = EdfStrategy()
    fast, ref = strategy.make_queue(), HeapQueue(strategy.sort_key)
    assert isinstance(fast, DeadlineQueue)
    _replay_against(
        fast, ref, [(op, PendingTask(f"t{s}", "x", 5, s, float(s), d)) for op, s, d in ops]
    )


# -- percentiles --------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 60_000),
    st.sampled_from(["uniform", "few values", "heavy tail", "sorted", "reversed"]),
    st.integers(0, 2**32 - 1),
)
def test_percentiles_by_selection_are_those_of_a_sort(n, shape, seed):
    rng = random.Random(seed)
    values = [rng.random() for _ in range(n)]
    if shape == "few values":
        values = [float(round(x * 4)) for x in values]
    elif shape == "heavy tail":
        values = [x**-3 for x in values if x > 0] or [1.0]
    elif shape == "sorted":
        values.sort()
    elif shape == "reversed":
        values.sort(reverse=True)
    qs = (50, 95, 99, 0, 100, 12.5, 99.99)
    ordered = sorted(values)
    assert percentiles(values, qs) == [sorted_percentile(ordered, q) for q in qs]


def test_percentiles_fall_back_to_a_sort_for_nan():
    values = [float(i % 1000) for i in range(30_000)]
    values[7] = math.nan
    ordered = sorted(values)
    assert percentiles(values, (50, 99)) == [sorted_percentile(ordered, q) for q in (50, 99)]


# -- the workload reader ------------------------------------------------------------

_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    st.floats(allow_nan=False),
    st.floats(0, 10),
    st.text(max_size=3),
    st.sampled_from(["", "0.5", "t0", "t1", "a"]),
    st.lists(st.sampled_from(["t0", "t1", "t2", "t9"]), max_size=2),
    st.sampled_from(["cancel", "run", "Run"]),
)
_FIELDS = [
    "id", "name", "submit_at", "duration", "priority", "deadline", "expected_duration",
    "affinity_key", "depends_on", "fails", "on_parent_failure",
]  # fmt: skip


@st.composite
def rows(draw, i):
    row = {
        "id": f"t{i}",
        "name": draw(st.sampled_from(["resize", "ocr"])),
        "submit_at": draw(st.floats(0, 100) | st.integers(0, 5)),
        "duration": draw(st.floats(1e-6, 10)),
    }
    for field in ("priority", "deadline", "expected_duration", "affinity_key", "fails"):
        if draw(st.booleans()):
            row[field] = {
                "priority": draw(st.integers(0, 9)),
                "deadline": draw(st.floats(0, 1e6)),
                "expected_duration": draw(st.floats(1e-3, 5)),
                "affinity_key": draw(st.sampled_from(["u1", "u2"])),
                "fails": draw(st.booleans()),
            }[field]
    if i and draw(st.integers(0, 4)) == 0:
        row["depends_on"] = [f"t{draw(st.integers(0, i - 1))}"]
        if draw(st.booleans()):
            row["on_parent_failure"] = draw(st.sampled_from(["cancel", "run"]))
    if draw(st.integers(0, 3)) == 0:  # one field spoiled: any value, or one unknown field
        field = draw(st.sampled_from([*_FIELDS, "colour"]))
        row[field] = draw(_value)
    return row


@st.composite
def files(draw):
    n = draw(st.integers(0, 12))
    lines = [json.dumps(draw(rows(i))) for i in range(n)]
    if draw(st.booleans()):
        lines.insert(0, "# a header")
    if draw(st.integers(0, 5)) == 0 and lines:  # an odd line somewhere
        odd = draw(st.sampled_from(["", "   ", "#x", "  # y", "[1]", "{", "{} {}", "\r", "NaN"]))
        lines.insert(draw(st.integers(0, len(lines))), odd)
    ending = draw(st.sampled_from(["\n", "\r\n"])) if draw(st.integers(0, 5)) == 0 else "\n"
    return ending.join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))


def _reference(text):
    try:  # the lines as a file opened in text mode gives them (universal newlines)
        return parse_workload(io.StringIO(text, newline=None), "w.jsonl")
    except WorkloadError as exc:
        return exc


@settings(max_examples=150, deadline=None)
@given(files())
def test_the_fast_reader_accepts_only_what_the_reference_accepts_with_the_same_rows(text):
    fast = parse_fast(text.encode())
    expected = _reference(text)
    if fast is None:  # the reference decides, and reports any error itself
        return
    assert not isinstance(expected, WorkloadError), expected
    assert fast == expected
    for a, b in zip(fast, expected, strict=True):  # equal, and the same floats to the bit
        for field in ("submit_at", "duration", "deadline", "expected_duration"):
            x, y = getattr(a, field), getattr(b, field)
            assert (x is None and y is None) or (
                type(x) is type(y) is float and math.copysign(1, x) == math.copysign(1, y)
            )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1e9) | st.floats(0, 1e-3) | st.integers(0, 2**60), min_size=1))
def test_the_fast_reader_reads_numbers_as_python_does(numbers):
    text = "".join(
        json.dumps({"id": f"t{i}", "name": "x", "submit_at": x, "duration": 1}) + "\n"
        for i, x in enumerate(numbers)
    )
    fast = parse_fast(text.encode())
    assert fast is not None
    assert [t.submit_at for t in fast] == [float(x) for x in numbers]


def test_the_fast_reader_takes_a_generated_file_and_leaves_odd_ones_to_the_reference():
    from scheduler.workload_gen import to_jsonl

    text = to_jsonl(generate("mixed", 50, seed=1, workers=2), header="workload gen")
    assert parse_fast(text.encode()) == parse_workload(text.splitlines(), "w")
    for odd in ("\n\n", "\r\n", "\n  \n", "\n  # indented comment\n"):
        assert parse_fast(text.replace("\n", odd, 3).encode()) is None


def test_the_fast_reader_reads_in_place_with_comments_on_top_and_copies_with_others():
    from scheduler.workload import _plain_body
    from scheduler.workload_gen import to_jsonl

    text = to_jsonl(generate("mixed", 50, seed=2, workers=2), header="workload gen")
    lines = text.splitlines()
    on_top = "# another header\n#\n" + text + "\n"
    below = "\n".join([*lines[:10], "# a note", *lines[10:]]) + "\n"
    spaced = "\n\n" + text + " \n"
    for variant in (text, on_top, below, spaced):
        assert parse_fast(variant.encode()) == parse_workload(variant.splitlines(), "w")
    assert _plain_body(text.encode()) is not None
    assert _plain_body(on_top.encode()) is not None
    assert _plain_body(below.encode()) is None  # read from a copy without the note
    assert _plain_body(b"# \xff\n" + text.encode()) is None  # not UTF-8: the copy decides
    assert parse_fast(b"# \xff\n" + text.encode()) is None


# -- the command line --------------------------------------------------------------


def test_simulate_starts_without_celery_redis_fastapi_or_rich(tmp_path):
    path = tmp_path / "w.jsonl"
    path.write_text('{"id": "a", "name": "x", "submit_at": 0, "duration": 1}\n')
    script = (
        "import sys\n"
        "from scheduler.cli import main\n"
        f"sys.argv = ['yardmaster', 'simulate', {str(path)!r}, '--strategy', 'fifo', '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    *report, modules = out.strip().splitlines()
    assert json.loads("\n".join(report))["fifo"]["tasks"] == 1
    loaded = set(ast.literal_eval(modules))
    assert not loaded & {"celery", "kombu", "redis", "fastapi", "uvicorn", "flower", "rich"}


def test_every_command_is_mapped_to_the_module_that_registers_it():
    from scheduler.cli import COMMANDS, app

    found = {}
    for info in app.registered_commands:
        name = info.name or info.callback.__name__.replace("_", "-")
        found[name] = info.callback.__module__
    for group in app.registered_groups:
        name = group.name or group.typer_instance.info.name
        found[name] = group.typer_instance.registered_commands[0].callback.__module__
    assert {name: module.rsplit(".", 1)[1] for name, module in found.items()} == COMMANDS
