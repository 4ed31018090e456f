"""The search: Optuna drives the simulator over the strategies' search spaces.

Why Optuna: it brings the samplers (TPE, seeded), pruning of trials that
are clearly worse part way through, and storage in any SQLAlchemy database
(an SQLite file by default), which gives resumption and inspection for free.
A study lives in that storage under its name; a run killed part way leaves
its finished trials there, and the same command continues the same study up
to the number of trials asked for (trials a killed process left running are
failed by Optuna's heartbeat).

A trial picks a strategy (when several are searched), then a point of its
space; the point is checked by the rules (a point they refuse is pruned with
the reason), then simulated segment by segment on the training part, the
objective so far reported after each segment for the median pruner. The
first trials are the baseline and each strategy's current settings, so the
search always weighs what runs today; the search processes evaluate them in
turn and add them as finished trials (not queued in the storage, where two
processes could take the same one). ``jobs`` processes share the study
through the storage, each with its own sampler seed.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from scheduler.errors import InvalidInputError
from scheduler.searchable import Choice, Range, Searchable
from scheduler.settings import Settings, load_settings
from scheduler.tuning import objectives
from scheduler.tuning.evaluate import simulate
from scheduler.tuning.objectives import TaskOutcomes
from scheduler.tuning.rules import Config, current_config, settings_for
from scheduler.tuning.space import SearchSpace, space_for
from scheduler.tuning.trace import load_trace, split_trace

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
HEARTBEAT = 2.0  # seconds between a running trial's heartbeats
GRACE = 10.0  # a running trial silent this long was left by a killed process
# Settings the simulation reads, passed to the search processes (a Settings
# object itself holds secrets that do not survive a round trip).
SIMULATED = (
    "priority_aging", "edf_late", "affinity_weight", "affinity_wait", "affinity_balance",
    "weights", "adaptive_mode",
    "adaptive_interval", "adaptive_objective", "adaptive_flow_margin", "adaptive_miss_margin",
    "ema_alpha", "default_duration", "sjf_overrun", "affinity_step", "warm_capacity",
    "warm_factor",
)  # fmt: skip


@dataclass(frozen=True)
class SearchJob:
    """What every search process needs to run trials of one study (picklable).

    Attributes:
        trace: The workload file.
        holdout: Share of the trace held out (never seen by the search).
        workers: Simulated workers.
        slots: Slots per worker.
        objective: What is minimised.
        strategies: The strategies searched.
        overrides: The user's narrowed dimensions.
        storage: The study's database URL.
        study: The study's name.
        seed: Base sampler seed (process ``i`` uses ``seed + i``).
        scale: Flow scale of ``misses_then_flow`` on the training part.
        base: The settings the simulation reads (:data:`SIMULATED`), in JSON form.
    """

    trace: str
    holdout: float
    workers: int
    slots: int
    objective: str
    strategies: tuple[str, ...]
    overrides: dict[str, Searchable]
    storage: str
    study: str
    seed: int
    scale: float
    base: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> Settings:
        """The base settings of every trial."""
        return load_settings({}, **self.base)


def base_values(settings: Settings) -> dict[str, Any]:
    """The settings a search process needs, in JSON form."""
    return settings.model_dump(mode="json", include=set(SIMULATED))


def storage_for(url: str) -> RDBStorage:
    """Open (creating when new) the study storage at ``url``.

    Raises:
        InvalidInputError: When the URL cannot be opened, naming it.
    """
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():  # the heartbeat is marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {},
                heartbeat_interval=int(HEARTBEAT),
                grace_period=int(GRACE),
            )
    except Exception as exc:  # SQLAlchemy's errors: a bad URL, a missing driver
        raise InvalidInputError(
            "--storage",
            url,
            "an SQLAlchemy database URL, e.g. sqlite:///.yardmaster/tune.db",
            problem=str(exc).splitlines()[0],
        ) from None


def counted(study: optuna.Study) -> int:
    """Trials that count towards the number asked for (complete or pruned)."""
    return len(study.get_trials(deepcopy=False, states=COUNTED))


def seed_configs(job: SearchJob, baseline: Config) -> list[Config]:
    """The baseline and each searched strategy's current settings, once each, inside their spaces."""
    base = job.settings()
    out: list[Config] = []
    for config in [baseline] + [current_config(s, base) for s in job.strategies]:
        if config.strategy not in job.strategies:
            continue
        if _trial_params(config, space_for(config.strategy, job.overrides)) is None:
            continue
        if all(config.key() != c.key() for c in out):
            out.append(config)
    return out


def run_search(
    job: SearchJob,
    trials: int,
    jobs: int,
    baseline: Config,
    on_progress: Callable[[int], None] | None = None,
) -> optuna.Study:
    """Run the study up to ``trials`` counted trials in ``jobs`` processes; return it.

    Args:
        job: The study and what its trials evaluate.
        baseline: Evaluated first (with each strategy's current settings).
        trials: Total counted trials the study should reach (earlier runs included).
        jobs: Processes (1 runs in this process).
        on_progress: Called with the counted trials, about twice a second.
    """
    storage = storage_for(job.storage)
    study = optuna.load_study(study_name=job.study, storage=storage)
    remaining = max(0, trials - counted(study))
    if remaining == 0:
        return study
    done = {t.user_attrs.get("config_key") for t in study.get_trials(deepcopy=False)}
    seeds = [c for c in seed_configs(job, baseline) if c.key() not in done][:remaining]
    if jobs <= 1:
        _optimize(job, remaining, seeds, 0, study, on_progress, child=False)
        return study
    shares = [remaining // jobs + (1 if i < remaining % jobs else 0) for i in range(jobs)]
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(target=_work, args=(job, share, seeds[i::jobs], i), daemon=True)
        for i, share in enumerate(shares)
        if share
    ]
    for proc in procs:
        proc.start()
    try:
        while any(proc.is_alive() for proc in procs):
            if on_progress is not None:
                on_progress(counted(study))
            for proc in procs:
                proc.join(timeout=0.5 / len(procs))
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
    failed = [proc.exitcode for proc in procs if proc.exitcode]
    if failed:
        raise RuntimeError(f"{len(failed)} search processes failed (exit codes {failed})")
    return study


def best_trial(study: optuna.Study, baseline: Config) -> FrozenTrial | None:
    """The best complete trial; on a tie, the baseline's, then the earliest."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not done:
        return None
    key = baseline.key()
    return min(
        done,
        key=lambda t: (t.value, t.user_attrs.get("config_key") != key, t.number),
    )


def trial_config(trial: FrozenTrial) -> Config:
    """The configuration a trial evaluated."""
    raw = trial.user_attrs["config"]
    return Config(raw["strategy"], raw["params"])


def _work(job: SearchJob, share: int, seeds: list[Config], index: int) -> None:
    """A search process: its seeds, then the rest of its share, with its own sampler seed."""
    study = optuna.load_study(study_name=job.study, storage=storage_for(job.storage))
    _optimize(job, share, seeds, index, study, None, child=True)


def _optimize(
    job: SearchJob,
    share: int,
    seeds: list[Config],
    index: int,
    study: optuna.Study,
    on_progress: Callable[[int], None] | None,
    *,
    child: bool,
) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    study.sampler = optuna.samplers.TPESampler(seed=job.seed + index, constant_liar=True)
    study.pruner = optuna.pruners.MedianPruner(n_startup_trials=8, n_warmup_steps=0)
    objective = _Objective(job)
    for config in seeds:  # finished trials of their own: nothing queued to race for
        study.add_trial(objective.finished(config))
        if on_progress is not None:
            on_progress(counted(study))
    share -= len(seeds)
    if share <= 0:
        return
    parent = os.getppid()
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = []
    if child:

        def orphaned(study: optuna.Study, _: FrozenTrial) -> None:
            if os.getppid() != parent:  # the tune command is gone: stop with it
                study.stop()

        callbacks.append(orphaned)
    if on_progress is not None:
        callbacks.append(lambda s, _: on_progress(counted(s)))
    study.optimize(objective, n_trials=share, callbacks=callbacks, gc_after_trial=False)


class _Objective:
    """One trial: a strategy, a point of its space, simulated on the training segments."""

    def __init__(self, job: SearchJob) -> None:
        self.job = job
        self.base = job.settings()
        split = split_trace(load_trace(job.trace), job.holdout)
        self.segments = split.segments
        self.spaces = {s: space_for(s, job.overrides) for s in job.strategies}
        self.seen: dict[str, float] = {}
        self.started = time.monotonic()

    def finished(self, config: Config) -> FrozenTrial:
        """A complete trial of ``config``, evaluated here (for the first, fixed trials)."""
        space = self.spaces[config.strategy]
        params = _trial_params(config, space) or {}
        dists: dict[str, BaseDistribution] = {
            f"{config.strategy}:{d.setting}": _distribution(d.domain) for d in space.dimensions
        }
        if len(self.job.strategies) > 1:
            params["strategy"] = config.strategy
            dists["strategy"] = optuna.distributions.CategoricalDistribution(
                list(self.job.strategies)
            )
        score = self.score(config, None)
        attrs = {"config": config.as_dict(), "config_key": config.key(), "first": True}
        return optuna.trial.create_trial(
            params=params, distributions=dists, value=score, user_attrs=attrs
        )

    def __call__(self, trial: optuna.Trial) -> float:
        job = self.job
        if len(job.strategies) > 1:
            strategy = str(trial.suggest_categorical("strategy", list(job.strategies)))
        else:
            strategy = job.strategies[0]
        space = self.spaces[strategy]
        point = {
            d.setting: _suggest(trial, f"{strategy}:{d.setting}", d.domain)
            for d in space.dimensions
        }
        config = space.config(point)
        trial.set_user_attr("config", config.as_dict())
        trial.set_user_attr("config_key", config.key())
        try:
            settings_for(config, self.base)
        except InvalidInputError as exc:
            trial.set_user_attr("invalid", str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        return self.score(config, trial)

    def score(self, config: Config, trial: optuna.Trial | None) -> float:
        """The objective of ``config`` on the training segments, reported to ``trial``."""
        job = self.job
        if config.key() in self.seen:  # the simulator is deterministic: same point, same value
            return self.seen[config.key()]
        parts: list[TaskOutcomes] = []
        score = 0.0
        for step, segment in enumerate(self.segments):
            parts.append(
                simulate(config, segment, base=self.base, workers=job.workers, slots=job.slots)
            )
            score = objectives.value(job.objective, TaskOutcomes.concat(parts), job.scale)
            if trial is not None and step + 1 < len(self.segments):
                trial.report(score, step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"worse than the median after segment {step + 1}")
        self.seen[config.key()] = score
        return score


def _suggest(trial: optuna.Trial, name: str, domain: Searchable) -> Any:
    if isinstance(domain, Choice):
        return trial.suggest_categorical(name, list(domain.values))
    if domain.integer:
        return trial.suggest_int(name, int(domain.low), int(domain.high), log=domain.log)
    return trial.suggest_float(name, domain.low, domain.high, log=domain.log)


def _distribution(domain: Searchable) -> BaseDistribution:
    """The Optuna distribution :func:`_suggest` samples ``domain`` from."""
    if isinstance(domain, Choice):
        return optuna.distributions.CategoricalDistribution(list(domain.values))
    if domain.integer:
        return optuna.distributions.IntDistribution(
            int(domain.low), int(domain.high), log=domain.log
        )
    return optuna.distributions.FloatDistribution(domain.low, domain.high, log=domain.log)


def _trial_params(config: Config, space: SearchSpace) -> dict[str, Any] | None:
    """Optuna's parameters for ``config``; None when a value lies outside its dimension."""
    params: dict[str, Any] = {}
    for d in space.dimensions:
        outer, dot, inner = d.setting.partition(".")
        value = config.params.get(outer)
        if dot and isinstance(value, dict):
            value = value.get(inner)
        if value is None or not _inside(value, d.domain):
            return None
        params[f"{config.strategy}:{d.setting}"] = value
    return params


def _inside(value: Any, domain: Searchable) -> bool:
    if isinstance(domain, Choice):
        return value in domain.values
    assert isinstance(domain, Range)
    return isinstance(value, int | float) and domain.low <= value <= domain.high
