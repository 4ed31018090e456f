"""Tuning's pure parts: search spaces, rules, the trace split, objectives and the gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scheduler.errors import InvalidInputError
from scheduler.searchable import Choice, Range
from scheduler.settings import Settings, load_settings
from scheduler.simulator import Simulator, outcome_metrics
from scheduler.strategies import create_strategy
from scheduler.tuning import objectives
from scheduler.tuning.evaluate import simulate, task_outcomes
from scheduler.tuning.objectives import TaskOutcomes
from scheduler.tuning.regression import Tolerances, judge
from scheduler.tuning.rules import Config, current_config, settings_for
from scheduler.tuning.session import Baseline, TuneOptions, tune
from scheduler.tuning.space import parse_override, space_for
from scheduler.tuning.trace import check_trace, load_trace, split_trace
from scheduler.workload import WorkloadTask
from scheduler.workload_gen import generate, to_jsonl

BASE = load_settings({})


def settings_of(space) -> set[str]:
    return {d.setting for d in space.dimensions}


def test_each_strategy_declares_its_search_space_beside_its_settings():
    assert settings_of(space_for("priority")) == {"priority_aging"}
    assert {"weights.priority", "weights.wait", "weights.duration", "weights.slack"} <= settings_of(
        space_for("weighted")
    )
    assert {"default_duration", "sjf_overrun", "ema_alpha"} <= settings_of(space_for("sjf"))
    assert "edf_late" in settings_of(space_for("edf"))
    assert {"affinity_weight", "affinity_step"} <= settings_of(space_for("load_balance"))
    assert {"adaptive_interval", "adaptive_flow_margin", "adaptive_miss_margin"} <= settings_of(
        space_for("adaptive")
    )
    assert space_for("fifo").dimensions == ()
    # The range comes from the setting's own declaration.
    aging = Settings.model_fields["priority_aging"].metadata
    assert space_for("priority").dimensions[0].domain in aging


def test_a_point_becomes_the_settings_a_simulation_runs_with():
    space = space_for("weighted")
    config = space.config({"weights.priority": 3.0, "ema_alpha": 0.5})
    assert config.params == {"weights": {"priority": 3.0}, "ema_alpha": 0.5}
    settings = settings_for(config, BASE)
    assert settings.weights.priority == 3.0
    assert settings.weights.slack == BASE.weights.slack  # completed from the base
    assert settings.ema_alpha == 0.5
    assert settings.strategy == "weighted"


def test_a_space_with_no_valid_point_is_refused_naming_the_rule():
    overrides = {
        "weights.wait": Choice((0.0,)),
        "weights.duration": Range(1.0, 2.0),
        "weights.priority": Range(0.01, 0.5),
    }
    with pytest.raises(InvalidInputError) as caught:
        space_for("weighted", overrides).check(BASE)
    text = str(caught.value)
    assert "search space of weighted" in text
    assert "weights.wait" in text
    assert "overtake" in text


def test_a_space_narrowed_out_of_the_settings_range_is_refused():
    with pytest.raises(InvalidInputError, match="priority_aging"):
        space_for("priority", {"priority_aging": Range(-5.0, -1.0)}).check(BASE)


def test_space_overrides_parse_ranges_choices_and_fixed_values():
    assert parse_override("priority_aging=0..0.5") == ("priority_aging", Range(0.0, 0.5))
    assert parse_override("edf_late=expire") == ("edf_late", Choice(("expire",)))
    assert parse_override("sjf_overrun=true,false") == ("sjf_overrun", Choice((True, False)))
    for bad in ("priority_aging", "x=2..1", "x=a..b"):
        with pytest.raises(InvalidInputError, match="--space"):
            parse_override(bad)


def test_weights_that_ignore_priority_are_a_priority_inversion():
    with pytest.raises(InvalidInputError, match="priority inversion") as caught:
        settings_for(Config("weighted", {"weights": {"priority": 0.0}}), BASE)
    assert caught.value.field == "params.weights.priority"
    # The settings' own rule: low priority overtaking high forever.
    with pytest.raises(InvalidInputError, match="overtake"):
        settings_for(Config("weighted", {"weights": {"wait": 0.0, "duration": 3.0}}), BASE)
    # A setting the strategy does not read.
    with pytest.raises(InvalidInputError, match=r"params\.weights"):
        settings_for(Config("priority", {"weights": {}}), BASE)


def test_the_trace_is_split_by_time_and_crossing_dependencies_are_dropped():
    tasks = [
        WorkloadTask(id=f"t{i}", name="a" if i % 2 else "b", submit_at=float(100 - i), duration=0.1)
        for i in range(100)
    ]
    tasks[0] = WorkloadTask(id="t0", name="b", submit_at=100.0, duration=0.1, depends_on=("t99",))
    split = split_trace(tasks, 0.3)
    assert len(split.train) == 70
    assert len(split.holdout) == 30
    assert max(t.submit_at for t in split.train) < min(t.submit_at for t in split.holdout)
    last = next(t for t in split.holdout if t.id == "t0")
    assert last.depends_on == ()  # its parent t99 trained
    assert sum(len(s) for s in split.segments) == len(split.train)


def test_an_empty_trace_and_a_tiny_one_are_refused(tmp_path: Path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("# nothing\n")
    with pytest.raises(InvalidInputError, match="holds no task"):
        load_trace(empty)
    tiny = generate("mixed", 10, 1)
    with pytest.raises(InvalidInputError, match="too few tasks"):
        check_trace(tiny, 0.3)


def test_a_trace_of_one_task_name_is_warned_or_refused():
    alike = [
        WorkloadTask(id=f"t{i}", name="a", submit_at=i * 0.1, duration=0.2) for i in range(100)
    ]
    with pytest.raises(InvalidInputError, match="tuning cannot help"):
        check_trace(alike, 0.3)
    varied = [
        WorkloadTask(id=f"t{i}", name="a", submit_at=i * 0.1, duration=0.2, priority=i % 10)
        for i in range(100)
    ]
    (warning,) = check_trace(varied, 0.3)
    assert "every task is named 'a'" in warning
    assert "priorities" in warning


def test_an_unknown_objective_is_refused_naming_it(tmp_path: Path):
    trace = tmp_path / "w.jsonl"
    trace.write_text(to_jsonl(generate("mixed", 100, 1)))
    options = TuneOptions(
        trace, workers=2, objective="fastest", storage=f"sqlite:///{tmp_path}/t.db"
    )
    with pytest.raises(InvalidInputError) as caught:
        tune(options, Baseline(current_config("priority", BASE)), BASE)
    assert caught.value.field == "--objective"
    assert caught.value.value == "fastest"
    assert "mean_flow" in str(caught.value)


def test_max_lateness_without_deadlines_is_refused(tmp_path: Path):
    trace = tmp_path / "w.jsonl"
    trace.write_text(to_jsonl(generate("bursty", 200, 1)))
    options = TuneOptions(
        trace, workers=2, objective="max_lateness", storage=f"sqlite:///{tmp_path}/t.db"
    )
    with pytest.raises(InvalidInputError, match="deadline"):
        tune(options, Baseline(current_config("priority", BASE)), BASE)


def test_the_objectives_agree_with_the_simulators_metrics():
    tasks = generate("deadlines", 600, 3, workers=2)
    sim = Simulator.from_settings(create_strategy("edf", BASE), BASE, workers=2)
    outcome = sim.simulate(tasks)
    metrics = outcome_metrics(outcome, 2)
    per_task = task_outcomes(outcome, 2)
    assert objectives.value("mean_flow", per_task, 1.0) == pytest.approx(metrics["mean_flow"])
    assert objectives.value("p95_flow", per_task, 1.0) == pytest.approx(metrics["p95_flow"])
    assert objectives.value("max_lateness", per_task, 1.0) == pytest.approx(metrics["max_lateness"])
    assert per_task.missed.sum() == metrics["deadline_misses"]
    score = objectives.value("misses_then_flow", per_task, 1.0)
    assert int(score) == metrics["deadline_misses"]


def outcomes(flow, missed=None) -> TaskOutcomes:
    flow = np.asarray(flow, dtype=float)
    missed = np.zeros(len(flow)) if missed is None else np.asarray(missed, dtype=float)
    return TaskOutcomes(flow, np.full(len(flow), np.nan), missed)


def test_the_gate_never_proposes_the_baseline_against_itself():
    rng = np.random.default_rng(1)
    same = outcomes(rng.exponential(1.0, 2000))
    verdict = judge(same, same, "mean_flow", Tolerances())
    assert not verdict.proposed
    assert verdict.improvement == 0.0
    assert verdict.interval == (0.0, 0.0)


def test_the_gate_proposes_a_clear_gain_and_refuses_noise():
    rng = np.random.default_rng(2)
    base = rng.exponential(1.0, 3000)
    better = outcomes(base * 0.8)
    verdict = judge(outcomes(base), better, "mean_flow", Tolerances())
    assert verdict.proposed
    assert verdict.interval[0] > 0.1
    assert "proposed: mean_flow better by +20.0%" in verdict.reason
    noisy = outcomes(base * rng.lognormal(0.0, 0.3, len(base)))
    verdict = judge(outcomes(base), noisy, "mean_flow", Tolerances())
    assert not verdict.proposed
    assert verdict.interval[0] < 0.0 < verdict.interval[1] or verdict.interval[1] < 0


def test_the_gate_refuses_a_gain_that_costs_deadline_misses():
    rng = np.random.default_rng(3)
    base = rng.exponential(1.0, 3000)
    missed_base = np.zeros(3000)
    missed_base[:20] = 1
    missed_cand = np.zeros(3000)
    missed_cand[:40] = 1
    verdict = judge(
        outcomes(base, missed_base), outcomes(base * 0.7, missed_cand), "mean_flow", Tolerances()
    )
    assert not verdict.proposed
    assert "worsens deadline_misses 40 against 20 (limit 21)" in verdict.reason
    assert [g.held for g in verdict.guards] == [False, True]


def test_simulate_runs_the_strategy_code_on_a_part():
    tasks = generate("bursty", 400, 1, workers=2)
    per_task = simulate(Config("sjf", {}), tasks, base=BASE, workers=2, slots=1)
    sim = Simulator.from_settings(create_strategy("sjf", BASE), BASE, workers=2)
    assert per_task.metrics == outcome_metrics(sim.simulate(tasks), 2)
