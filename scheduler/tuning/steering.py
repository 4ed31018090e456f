"""From tune's configurations to the live strategy versions, and back.

:func:`live_config` reads what the cluster runs as a tune configuration (the
baseline of a tune run, the configuration a plan simulates). :func:`apply`
makes an experiment's candidate a new strategy version carrying the
experiment's id, guarded by default (:mod:`scheduler.tuning.rollout` watches
it). Only strategy parameters can be steered live: ``ema_alpha`` and
``affinity_step`` are cluster-wide learning settings that ``finish.lua``
applies on every worker with the worker's own ``YM_*`` value, so a candidate
that changes them is refused, naming the value and what to do; ``tune
--apply`` keeps them at the cluster's values (:func:`fixed_learning`) so that
what it proposes can be applied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from scheduler.client import Client
from scheduler.errors import InvalidInputError
from scheduler.searchable import Choice, Searchable
from scheduler.settings import STRATEGY_PARAMS, Settings, load_settings
from scheduler.store import Store
from scheduler.strategy_config import StrategyVersion
from scheduler.tuning.rules import Config, current_config, settings_for, settings_read
from scheduler.tuning.space import searchable_settings

NOT_STEERABLE = ("ema_alpha", "affinity_step")
GUARD_WHO = "yardmaster guard"


UNWATCHED = (
    "warning: no `yardmaster monitor` runs on this cluster, and the guard runs in the "
    "monitor: nothing watches this version until one starts"
)


def unwatched_warning(store: Store) -> str | None:
    """The warning to give with a guarded version when no monitor runs its guard."""
    return None if store.strategy.watched() else UNWATCHED


def live_config(store: Store, settings: Settings | None = None) -> tuple[Config, int]:
    """What the cluster runs, as a configuration over ``settings`` (the store's by default),
    and its version (0: never steered, the dispatcher's own ``YM_STRATEGY``)."""
    base = settings or store.settings
    stored = store.strategy.latest()
    if stored is None:
        active = store.strategy.active()
        name = base.strategy if active is None or active.version != 0 else active.strategy
        return current_config(name, base), 0
    read = settings_read(stored.strategy)
    params = {k: v for k, v in stored.params.items() if k in read}
    return current_config(stored.strategy, run_settings(Config(stored.strategy, params), base)), (
        stored.version
    )


def run_settings(config: Config, base: Settings) -> Settings:
    """The settings the dispatcher runs ``config`` with: its values over ``base`` (a version
    set by hand past the tuning rules, such as a zero priority weight, runs as it is)."""
    try:
        return settings_for(config, base)
    except InvalidInputError:
        values = {**base.model_dump(), **config.params, "strategy": config.strategy}
        return load_settings({}, **values)


def fixed_learning(
    overrides: Mapping[str, Searchable], strategies: tuple[str, ...], settings: Settings
) -> dict[str, Searchable]:
    """``overrides`` with each cluster-wide learning setting the search would vary fixed at
    the cluster's value (unless the user narrowed it), so the candidate can be applied."""
    out = dict(overrides)
    searchable = searchable_settings(strategies)
    for name in NOT_STEERABLE:
        if name in searchable and name not in out:
            out[name] = Choice((getattr(settings, name),))
    return out


def steerable(config: Config, settings: Settings) -> dict[str, Any]:
    """The parameters of ``config`` a strategy version can carry.

    Learning settings equal to the cluster's are dropped (nothing to change).

    Raises:
        InvalidInputError: For a learning setting with another value, naming it, the
            cluster's value and what to do.
    """
    params: dict[str, Any] = {}
    for name, value in config.params.items():
        if name in NOT_STEERABLE:
            current = getattr(settings, name)
            if isinstance(value, int | float) and math.isclose(value, current, rel_tol=1e-9):
                continue
            env = "YM_" + name.upper()
            raise InvalidInputError(
                f"params.{name}", value, f"the cluster's value {current:g}",
                problem=(
                    f"{name} is a cluster-wide learning setting, not a live strategy parameter: "
                    f"every worker applies its own {env} when a task ends. Set {env}={value:g} "
                    f"on the workers and restart them, or tune again with --apply (or --space "
                    f"{name}={current:g}) so the candidate keeps the cluster's value"
                ),
            )  # fmt: skip
        elif name in STRATEGY_PARAMS:
            params[name] = value
    return params


def apply(
    client: Client,
    record: Mapping[str, Any],
    *,
    guard: float | None,
    who: str | None = None,
    force: bool = False,
) -> StrategyVersion:
    """Make an experiment's candidate (``record["best"]``) the live strategy, a new version
    carrying the experiment's id, guarded for ``guard`` seconds (None: not guarded).

    Raises:
        InvalidInputError: The gate did not propose it (unless ``force``), or a parameter
            cannot be steered live (see :func:`steerable`).
    """
    experiment = str(record.get("id", ""))
    gate = record.get("gate") or {}
    if (
        record.get("status", "finished") != "finished"
    ):  # the stored record says; a fresh one has ended
        raise InvalidInputError(
            "--from-experiment", experiment, "an experiment that finished",
            problem=f"its record says {record.get('status')!r}",
        )  # fmt: skip
    if not gate.get("proposed") and not force:
        raise InvalidInputError(
            "--from-experiment", experiment, "an experiment whose candidate the gate proposed "
            "(or --force)", problem=str(gate.get("reason", "the gate gave no verdict")),
        )  # fmt: skip
    best = record["best"]
    config = Config(str(best["strategy"]), dict(best.get("params") or {}))
    params = steerable(config, client.store.settings)
    improvement = record.get("improvement") or {}
    value = improvement.get("value")
    gain = (
        "" if value is None else f" ({record.get('objective')} {value:+.1%} on its held-out part)"
    )
    return client.set_strategy(
        config.strategy, params, who=who, experiment=experiment, guard=guard,
        note=f"candidate of experiment {experiment}{gain}",
    )  # fmt: skip
