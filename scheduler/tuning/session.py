"""One tune run, end to end: check, search (or ask an advisor), gate, record.

:func:`tune` is what ``yardmaster tune`` calls; it takes the baseline as an
input (the command line reads it from Redis when one is configured, else
from the settings), so the gate never assumes what runs today.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from scheduler.errors import InvalidInputError
from scheduler.searchable import Searchable
from scheduler.settings import STRATEGY_NAMES, Settings
from scheduler.tuning import experiments, objectives
from scheduler.tuning.advisors import Advisor, AdvisorRequest, consult, summarize
from scheduler.tuning.evaluate import replicates, simulate
from scheduler.tuning.objectives import check_objective
from scheduler.tuning.regression import Tolerances, judge
from scheduler.tuning.rules import Config, settings_for
from scheduler.tuning.search import (
    SearchJob,
    base_values,
    best_trial,
    counted,
    run_search,
    storage_for,
    trial_config,
)
from scheduler.tuning.space import check_overrides, space_for
from scheduler.tuning.trace import check_trace, digest, load_trace, split_trace


@dataclass(frozen=True)
class Baseline:
    """The configuration a candidate must beat.

    Attributes:
        config: Strategy and settings.
        source: ``settings`` (the ``YM_*`` values or defaults) or ``redis``
            (the live configuration).
        version: The live configuration's version (0: never steered; None
            without Redis).
    """

    config: Config
    source: str = "settings"
    version: int | None = None


@dataclass(frozen=True)
class TuneOptions:
    """What ``yardmaster tune`` was asked (see its ``--help``)."""

    trace: Path
    workers: int
    slots: int = 1
    objective: str = "misses_then_flow"
    strategies: tuple[str, ...] = STRATEGY_NAMES
    trials: int = 100
    jobs: int = 1
    storage: str = "sqlite:///.yardmaster/tune.db"
    seed: int = 0
    study: str | None = None
    overrides: Mapping[str, Searchable] = field(default_factory=dict)
    advisor: Advisor | None = None  # None: the search


def tune(
    options: TuneOptions,
    baseline: Baseline,
    settings: Settings,
    *,
    on_progress: Callable[[int], None] | None = None,
    warn: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Run one tune and return its experiment record (the ``--json`` output).

    Raises:
        InvalidInputError: For bad input, naming the option or field and value.
    """
    started = experiments.now()
    objective = check_objective(options.objective)
    _check_options(options)
    tasks = load_trace(options.trace)
    for message in check_trace(tasks, settings.tune_holdout):
        warn(message)
    split = split_trace(tasks, settings.tune_holdout)
    if objective == "max_lateness" and all(t.deadline is None for t in split.train):
        raise InvalidInputError(
            "--objective", objective, "an objective the trace can measure",
            problem="no task of the training part has a deadline",
        )  # fmt: skip
    check_overrides(options.overrides, options.strategies)
    spaces = [space_for(s, options.overrides) for s in options.strategies]
    for space in spaces:
        space.check(settings)
    settings_for(baseline.config, settings)  # the baseline itself must be valid
    trace_digest = digest(options.trace)
    run = dict(workers=options.workers, slots=options.slots)
    base_train = simulate(baseline.config, split.train, base=settings, **run)
    scale = objectives.value("mean_flow", base_train, 1.0) or 1.0
    study_name = options.study or _study_name(options, trace_digest, baseline, settings)
    job = SearchJob(
        str(options.trace), settings.tune_holdout, options.workers, options.slots, objective,
        options.strategies, dict(options.overrides), options.storage, study_name, options.seed,
        scale, base_values(settings),
    )  # fmt: skip
    study = _open_study(job, baseline)
    before = counted(study)
    experiments.begin(
        study,
        {
            "id": study_name, "started": started, "storage": options.storage,
            "study": study_name, "objective": objective, "strategies": list(options.strategies),
            "trace": {"path": str(options.trace), "digest": trace_digest, "tasks": len(tasks)},
        },
    )  # fmt: skip
    advisor = options.advisor or SearchAdvisor(
        job, options.trials, options.jobs, baseline.config, on_progress
    )
    request = AdvisorRequest(
        objective=objective, workers=options.workers, slots=options.slots,
        workload=summarize(split.train), current=baseline.config.as_dict(),
        strategies=list(options.strategies), spaces=[s.as_dict() for s in spaces],
    )  # fmt: skip
    retries = 0 if isinstance(advisor, SearchAdvisor) else settings.advisor_retries
    consultation = consult(advisor, request, settings, retries=retries)
    candidate = consultation.config or baseline.config
    held_base = simulate(baseline.config, split.holdout, base=settings, **run)
    held_cand = simulate(candidate, split.holdout, base=settings, **run)
    count = settings.tune_replicates if settings.tune_noise > 0 else 1

    def noisy(config: Config) -> list[objectives.TaskOutcomes]:
        return replicates(
            config, split.holdout, base=settings, workers=options.workers, slots=options.slots,
            noise=settings.tune_noise, count=count, seed=options.seed,
        )  # fmt: skip

    verdict = judge(
        noisy(baseline.config), noisy(candidate), objective, Tolerances.from_settings(settings),
        same_config=candidate.key() == baseline.config.key(), seed=options.seed,
    )  # fmt: skip
    if consultation.config is None:
        kinds = ", ".join(f"{n} {k}" for k, n in consultation.counts().items())
        reason = (
            f"not proposed: the {advisor.name} advisor gave no valid proposal in "
            f"{len(consultation.answers)} answers ({kinds}); keeping the current configuration"
        )
        verdict = dataclasses.replace(verdict, proposed=False, reason=reason)
    study = optuna.load_study(study_name=study_name, storage=storage_for(options.storage))
    trials = study.get_trials(deepcopy=False)
    record = {
        "id": study_name,
        "started": started,
        "finished": experiments.now(),
        "storage": options.storage,
        "study": study_name,
        "yardmaster": experiments.version(),
        "trace": {
            "path": str(options.trace),
            "digest": trace_digest,
            "tasks": len(tasks),
            "train": len(split.train),
            "holdout": len(split.holdout),
            "cut": split.cut,
            "segments": len(split.segments),
            "warnings": check_trace(tasks, settings.tune_holdout),
        },
        "cluster": run,
        "objective": objective,
        "strategies": list(options.strategies),
        "space": [s.as_dict() for s in spaces],
        "advisor": advisor.name,
        "advisor_answers": consultation.counts(),
        "advisor_note": consultation.note,
        "trials": {
            "asked": options.trials,
            "total": len(trials),
            "this_run": counted(study) - before,
            **{s.name.lower(): sum(t.state == s for t in trials) for s in TrialState},
        },
        "baseline": {
            **baseline.config.as_dict(),
            "source": baseline.source,
            "version": baseline.version,
            "holdout": verdict.baseline,
            "train": objectives.value(objective, base_train, scale),
            "metrics": held_base.metrics,
        },
        "best": {
            **candidate.as_dict(),
            "holdout": verdict.candidate,
            "metrics": held_cand.metrics,
        },
        "improvement": {
            "value": verdict.improvement,
            "interval": list(verdict.interval),
            "confidence": settings.tune_confidence,
            "replicates": verdict.replicates,
            "noise": settings.tune_noise,
        },
        "gate": verdict.as_dict(),
    }
    run_entry = {
        "started": started, "finished": record["finished"], "trials_added": counted(study) - before,
        "proposed": verdict.proposed,
    }  # fmt: skip
    experiments.save(study, record, run_entry)
    return record


def _check_options(options: TuneOptions) -> None:
    for name in options.strategies:
        if name not in STRATEGY_NAMES:
            raise InvalidInputError(
                "--strategies", name, "names from: " + ", ".join(STRATEGY_NAMES)
            )
    if not options.strategies:
        raise InvalidInputError("--strategies", "", "one or more of: " + ", ".join(STRATEGY_NAMES))
    for option, value, low in (("--trials", options.trials, 1), ("--jobs", options.jobs, 1)):
        if value < low:
            raise InvalidInputError(option, value, f"an integer >= {low}")


def _study_name(options: TuneOptions, trace_digest: str, baseline: Baseline, s: Settings) -> str:
    """A name that is the same for the same question, so running again resumes."""
    question = {
        "workers": options.workers, "slots": options.slots, "objective": options.objective,
        "strategies": list(options.strategies), "seed": options.seed,
        "overrides": {k: repr(v) for k, v in sorted(options.overrides.items())},
        "baseline": baseline.config.as_dict(), "holdout": s.tune_holdout, "base": base_values(s),
    }  # fmt: skip
    text = json.dumps(question, sort_keys=True, default=str)
    return f"tune-{trace_digest[:10]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _open_study(job: SearchJob, baseline: Baseline) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=job.study, storage=storage_for(job.storage), load_if_exists=True
    )
    question = {
        "trace": job.trace, "workers": job.workers, "slots": job.slots,
        "objective": job.objective, "strategies": list(job.strategies),
        "overrides": {k: repr(v) for k, v in sorted(job.overrides.items())},
    }  # fmt: skip
    asked = study.user_attrs.get("question")
    if asked is not None and asked != question:
        raise InvalidInputError(
            "--study", job.study, "a new study name, or the options that study was made with",
            problem=f"the study was made for {json.dumps(asked, sort_keys=True)}",
        )  # fmt: skip
    study.set_user_attr("question", question)
    return study


class SearchAdvisor:
    """The search as an advisor: it proposes the best configuration its trials found.

    Args:
        job: The study and what its trials evaluate.
        trials: Counted trials the study should reach.
        jobs: Processes.
        baseline: Preferred on a tie.
        on_progress: See :func:`run_search`.
    """

    name = "search"

    def __init__(
        self,
        job: SearchJob,
        trials: int,
        jobs: int,
        baseline: Config,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.job = job
        self.trials = trials
        self.jobs = jobs
        self.baseline = baseline
        self.on_progress = on_progress
        self.study: optuna.Study | None = None
        self.best: FrozenTrial | None = None

    def answer(self, request: AdvisorRequest) -> dict[str, Any]:
        self.study = run_search(self.job, self.trials, self.jobs, self.baseline, self.on_progress)
        self.best = best_trial(self.study, self.baseline)
        if self.best is None:
            return {}  # every trial was pruned: nothing to propose
        config = trial_config(self.best)
        note = f"best of {counted(self.study)} trials: {self.job.objective} {self.best.value:.6g} on the training part"
        return {"strategy": config.strategy, "params": config.params, "note": note}
