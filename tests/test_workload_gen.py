"""Workload generation: deterministic, valid, and each kind shows what it is for (pure: no Redis)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from itertools import pairwise

import pytest

from scheduler.adaptive import build_strategy
from scheduler.errors import InvalidInputError
from scheduler.settings import STRATEGY_NAMES, load_settings
from scheduler.simulator import Simulator, metrics
from scheduler.strategies import PURE_STRATEGY_NAMES, FifoStrategy
from scheduler.workload import load_workload, parse_workload
from scheduler.workload_gen import (
    BURST_SPREAD,
    KINDS,
    TASK_TYPES,
    generate,
    phase_sizes,
    to_jsonl,
)

CLI = [sys.executable, "-m", "scheduler.cli"]


def simulate(tasks, strategy, workers, slots=1):
    if isinstance(strategy, str):
        strategy = build_strategy(strategy, load_settings())
    return Simulator(strategy, workers=workers, slots=slots).run(tasks)


def bursts(tasks, spread=BURST_SPREAD):
    """Groups of tasks whose submissions lie within ``spread`` of the group's first."""
    groups: list[list] = []
    for t in sorted(tasks, key=lambda t: t.submit_at):
        if groups and t.submit_at - groups[-1][0].submit_at <= spread:
            groups[-1].append(t)
        else:
            groups.append([t])
    return groups


@pytest.mark.parametrize("kind", KINDS)
def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not(kind):
    first = to_jsonl(generate(kind, 300, seed=7, workers=3, slots=2))
    again = to_jsonl(generate(kind, 300, seed=7, workers=3, slots=2))
    other = to_jsonl(generate(kind, 300, seed=8, workers=3, slots=2))
    assert first == again
    assert first != other


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [3, 41, 1000])
def test_every_kind_parses_back_with_exactly_n_tasks(kind, n):
    text = to_jsonl(generate(kind, n, seed=1, workers=4), header="a comment")
    tasks = parse_workload(text.splitlines(), f"{kind}.jsonl")
    assert len(tasks) == n
    assert tasks == generate(kind, n, seed=1, workers=4)
    assert [t.submit_at for t in tasks] == sorted(t.submit_at for t in tasks)


@pytest.mark.parametrize("kind", KINDS)
def test_scale_multiplies_every_duration(kind):
    base = generate(kind, 200, seed=3)
    slow = generate(kind, 200, seed=3, scale=2.0)
    for a, b in zip(base, slow, strict=True):
        assert b.duration == pytest.approx(2 * a.duration, abs=2e-6)
        assert b.submit_at == pytest.approx(2 * a.submit_at, rel=1e-5, abs=1e-5)


def test_mixed_has_stable_types_priorities_keys_some_deadlines_and_85_percent_load():
    tasks = generate("mixed", 4000, seed=2, workers=4)
    base = {t.name: t.duration for t in TASK_TYPES}
    assert set(Counter(t.name for t in tasks)) == set(base)
    for t in tasks:
        assert 0.9 * base[t.name] - 1e-6 <= t.duration <= 1.1 * base[t.name] + 1e-6
    assert {t.priority for t in tasks} == set(range(10))
    assert 0.2 < sum(t.affinity_key is not None for t in tasks) / len(tasks) < 0.45
    assert 0.15 < sum(t.deadline is not None for t in tasks) / len(tasks) < 0.25
    load = sum(t.duration for t in tasks) / (4 * tasks[-1].submit_at)
    assert 0.78 < load < 0.92


def test_bursty_submits_bursts_that_drain_before_the_next_one():
    tasks = generate("bursty", 1000, seed=4, workers=2, slots=2)
    groups = bursts(tasks)
    assert len(groups) >= 10
    assert sum(len(g) for g in groups[:-1]) / (len(groups) - 1) >= 20  # ten per slot
    for name in STRATEGY_NAMES:
        finish = {r.task.id: r.finish for r in simulate(tasks, name, workers=2, slots=2)}
        for group, following in pairwise(groups):
            assert max(finish[t.id] for t in group) <= following[0].submit_at


def test_bursty_rewards_shortest_first_on_mean_flow():
    tasks = generate("bursty", 1000, seed=4, workers=2)
    flow = {name: metrics(simulate(tasks, name, 2), 2)["mean_flow"] for name in PURE_STRATEGY_NAMES}
    assert flow["sjf"] < 0.85 * min(flow[name] for name in PURE_STRATEGY_NAMES if name != "sjf")


def test_every_deadlines_task_has_a_deadline_after_its_submission_and_edf_misses_fewer():
    tasks = generate("deadlines", 1500, seed=5, workers=4)
    for t in tasks:
        assert t.deadline is not None
        assert t.deadline >= t.submit_at + 1.2 * t.duration - 1e-5
    misses = {
        name: metrics(simulate(tasks, name, 4), 4)["deadline_misses"] for name in ("fifo", "edf")
    }
    assert misses["edf"] < 0.7 * misses["fifo"]


class _PinnedByKey(FifoStrategy):
    """Each affinity key belongs to one worker; a task waits for its owner."""

    name = "pinned"

    def pick_worker(self, task, workers, snapshot):
        names = sorted(w.name for w in snapshot.workers)
        owner = names[int(task.affinity_key.split("-")[1]) % len(names)]
        return next((w for w in workers if w.name == owner), None)


def test_affinity_keys_outnumber_one_workers_warm_set_and_placement_by_key_pays():
    tasks = generate("affinity", 2000, seed=6, workers=4)
    keys = {t.affinity_key for t in tasks}
    assert None not in keys
    assert 4 < len(keys) <= 4 * 4
    fifo = metrics(simulate(tasks, FifoStrategy(), 4), 4)
    pinned = metrics(simulate(tasks, _PinnedByKey(), 4), 4)
    assert pinned["affinity_hits"] > 2 * fifo["affinity_hits"]
    assert pinned["mean_flow"] < 0.8 * fifo["mean_flow"]


@pytest.mark.parametrize(("n", "workers", "slots", "seed"), [(400, 2, 1, 1), (1200, 4, 2, 2)])
def test_phases_are_separated_and_each_has_a_different_winner(n, workers, slots, seed):
    tasks = generate("phases", n, seed=seed, workers=workers, slots=slots)
    phase = {p: [t for t in tasks if t.id.startswith(p)] for p in "abc"}
    assert tuple(len(phase[p]) for p in "abc") == phase_sizes(n)
    assert all(t.deadline is not None for t in phase["a"])
    assert all(t.deadline is None for t in phase["b"] + phase["c"])
    assert len(bursts(phase["b"])) == 1
    assert len(phase["b"]) - workers * slots > 50
    assert max(t.priority for t in phase["c"]) - min(t.priority for t in phase["c"]) == 9
    assert {t.priority for t in phase["a"] + phase["b"]} == {5}
    misses, flow_b = {}, {}
    for name in PURE_STRATEGY_NAMES:
        records = simulate(tasks, name, workers, slots)
        of = {p: [r for r in records if r.task.id.startswith(p)] for p in "abc"}
        for before, after in ("ab", "bc"):
            assert max(r.finish for r in of[before]) < min(t.submit_at for t in phase[after])
        misses[name] = metrics(of["a"], workers * slots)["deadline_misses"]
        flow_b[name] = metrics(of["b"], workers * slots)["mean_flow"]
    for name in PURE_STRATEGY_NAMES:
        if name != "edf":
            assert misses["edf"] < 0.6 * misses[name]
        # weighted's duration term makes it shortest-first too when priorities are equal
        if name not in ("sjf", "weighted"):
            assert flow_b["sjf"] < 0.8 * flow_b[name]


def test_the_cli_writes_a_file_that_simulate_accepts(tmp_path):
    out = tmp_path / "w.jsonl"
    gen = [*CLI, "workload", "gen", "--kind", "phases", "--n", "90", "--seed", "3"]
    subprocess.run([*gen, "--out", str(out)], check=True, timeout=60)
    printed = subprocess.run(gen, capture_output=True, text=True, check=True, timeout=60).stdout
    assert printed == out.read_text()
    assert printed.startswith(
        "# made by: yardmaster workload gen --kind phases --n 90 --seed 3 --workers 2"
    )
    assert len(load_workload(out)) == 90
    sim = [*CLI, "simulate", str(out), "--workers", "2", "--strategy", "all", "--json"]
    result = json.loads(
        subprocess.run(sim, capture_output=True, text=True, check=True, timeout=60).stdout
    )
    assert set(result) == set(STRATEGY_NAMES)
    assert all(values["tasks"] == 90 for values in result.values())


def test_the_cli_says_what_it_wrote_to_a_file(tmp_path):
    out = tmp_path / "w.jsonl"
    gen = [
        *CLI,
        "workload",
        "gen",
        "--kind",
        "mixed",
        "--n",
        "25",
        "--seed",
        "4",
        "--out",
        str(out),
    ]
    done = subprocess.run(gen, capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout == f"wrote 25 tasks (mixed, seed 4) to {out}\n"
    assert len(load_workload(out)) == 25


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--kind", "spiky", "--n", "10"],
            "--kind='spiky' is not accepted; allowed: one of: mixed",
        ),
        (["--kind", "mixed", "--n", "0"], "--n=0 is not accepted; allowed: an integer from 1"),
        (["--kind", "phases", "--n", "2"], "--n=2 is not accepted; allowed: an integer from 3"),
        (["--kind", "mixed", "--n", "5", "--scale", "0"], "--scale=0.0 is not accepted"),
        (["--kind", "mixed", "--n", "5", "--workers", "0"], "--workers=0 is not accepted"),
    ],
)
def test_bad_options_are_named_with_their_value_and_what_is_allowed(args, message, tmp_path):
    out = tmp_path / "never.jsonl"
    proc = subprocess.run(
        [*CLI, "workload", "gen", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert message in " ".join(proc.stderr.split())
    assert not out.exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "nope", "n": 5}, "kind"),
        ({"kind": "mixed", "n": -1}, "n"),
        ({"kind": "mixed", "n": 2.5}, "n"),
        ({"kind": "mixed", "n": 5, "slots": 0}, "slots"),
        ({"kind": "mixed", "n": 5, "scale": -1.0}, "scale"),
    ],
)
def test_generate_refuses_bad_arguments_naming_the_argument(kwargs, field):
    with pytest.raises(InvalidInputError) as exc:
        generate(seed=0, **kwargs)
    assert exc.value.field == field


def test_the_dag_kind_writes_the_same_bytes_for_a_seed_with_its_options_in_the_header(tmp_path):
    gen = [*CLI, "workload", "gen", "--kind", "dag", "--n", "120", "--seed", "4"]
    gen += ["--dags", "2", "--fan-in", "2", "--hints"]
    first = subprocess.run(gen, capture_output=True, text=True, check=True, timeout=60).stdout
    again = subprocess.run(gen, capture_output=True, text=True, check=True, timeout=60).stdout
    assert first == again
    assert first.startswith(
        "# made by: yardmaster workload gen --kind dag --n 120 --seed 4 --workers 2 --slots 1 "
        "--scale 1 --dags 2 --fan-in 2 --hints"
    )
    out = tmp_path / "dag.jsonl"
    out.write_text(first)
    tasks = load_workload(out)
    assert len(tasks) == 120
    assert all(t.expected_duration is not None for t in tasks)
    assert max(len(t.depends_on) for t in tasks) <= 2
    sim = [*CLI, "simulate", str(out), "--strategy", "critical_path", "--json"]
    result = json.loads(subprocess.run(sim, capture_output=True, text=True, check=True).stdout)
    assert result["critical_path"]["workflows"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "mixed", "--n", "10", "--width", "3"], "--width=3 is not accepted; allowed: only with --kind dag"),
        (["--kind", "dag", "--n", "10", "--fan-out", "0"], "--fan-out=0 is not accepted; allowed: an integer from 1"),
        (["--kind", "dag", "--n", "10", "--slack", "0.5"], "--slack=0.5 is not accepted; allowed: a number from 1 to 1000"),
        (["--kind", "dag", "--n", "3", "--dags", "4"], "--n=3 is not accepted; allowed: an integer from 4 (one per DAG)"),
    ],
)  # fmt: skip
def test_bad_dag_options_are_named_with_their_value_and_what_is_allowed(args, message, tmp_path):
    out = tmp_path / "never.jsonl"
    proc = subprocess.run(
        [*CLI, "workload", "gen", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert message in " ".join(proc.stderr.split())
    assert not out.exists()
