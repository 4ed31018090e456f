"""What a configuration is, and the rules every proposal must pass, whatever its source.

A :class:`Config` is a strategy name and the values of the settings that
strategy reads (``Strategy.settings_read``). :func:`settings_for` turns one
into the settings a simulation (or, later, the live dispatcher) runs with,
and refuses it unless it passes:

1. the settings' own rules: each value in its allowed range, and the
   ``weighted`` strategy's weights valid (no low priority overtaking high
   forever: :class:`~scheduler.settings.Weights`);
2. no priority inversion in the same situation: of two tasks alike in
   everything the strategy reads but their priority (submitted at the same
   instant, the same expected duration, deadline and affinity key), the one of
   higher priority runs first. ``priority`` keeps this for every aging (aging
   only lifts tasks that waited longer); ``weighted`` keeps it exactly when
   ``weights.priority > 0`` (with a zero weight the two tie and the earlier
   submission goes first, whatever the priorities). Strategies that do not
   read priority (``fifo``, ``sjf``, ``edf``, ``load_balance``, ``adaptive``)
   make no promise about it and are not refused by this rule: choose
   ``--strategies priority,weighted`` when priorities must be kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from scheduler.adaptive import build_strategy
from scheduler.errors import InvalidInputError
from scheduler.settings import STRATEGY_NAMES, Settings, load_settings


@dataclass(frozen=True)
class Config:
    """A strategy and the values of the settings it reads.

    Attributes:
        strategy: A strategy name.
        params: Setting name -> value, in JSON form (``weights`` is an object).
    """

    strategy: str
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form: ``{"strategy": ..., "params": {...}}``."""
        return {"strategy": self.strategy, "params": self.params}

    def key(self) -> str:
        """A canonical text of the configuration (equal configurations, equal keys)."""
        return json.dumps(self.as_dict(), sort_keys=True)


@cache
def settings_read(strategy: str) -> tuple[str, ...]:
    """The settings ``strategy`` reads (declared by its class).

    Raises:
        InvalidInputError: For an unknown strategy name.
    """
    if strategy not in STRATEGY_NAMES:
        raise InvalidInputError("strategy", strategy, "one of: " + ", ".join(STRATEGY_NAMES))
    return type(build_strategy(strategy, load_settings({}))).settings_read


def current_config(strategy: str, settings: Settings) -> Config:
    """The configuration ``settings`` give ``strategy``: every setting it reads, as set."""
    dumped = settings.model_dump(mode="json", include=set(settings_read(strategy)))
    return Config(strategy, dumped)


def settings_for(config: Config, base: Settings) -> Settings:
    """The settings ``config`` runs with: ``base``, with the configuration's values.

    A partial ``weights`` object is completed from ``base``'s weights.

    Raises:
        InvalidInputError: A parameter the strategy does not read, a value out of
            range or invalid weights (:class:`~scheduler.errors.SettingsError`),
            or a priority inversion; each names the parameter and value.
    """
    allowed = settings_read(config.strategy)
    params = dict(config.params)
    for name, value in params.items():
        if name not in allowed:
            raise InvalidInputError(
                f"params.{name}",
                value,
                f"a setting {config.strategy} reads: " + (", ".join(allowed) or "none"),
            )
    if isinstance(params.get("weights"), Mapping):
        params["weights"] = {**base.weights.model_dump(), **params["weights"]}
    checked = load_settings({}, strategy=config.strategy, **params)
    check_priority_order(config.strategy, checked)
    update = {name: getattr(checked, name) for name in params}
    return base.model_copy(update={**update, "strategy": config.strategy})


def check_priority_order(strategy: str, settings: Settings) -> None:
    """Refuse settings under which a lower-priority task runs before a higher one in the
    same situation (see the module docstring for the rule).

    Raises:
        InvalidInputError: Naming the weight and what would be accepted.
    """
    if strategy == "weighted" and settings.weights.priority <= 0.0:
        raise InvalidInputError(
            "params.weights.priority",
            settings.weights.priority,
            "a weight greater than 0",
            problem=(
                "priority inversion: of two tasks alike in all but priority and submitted "
                "together, the lower-priority one would run first when submitted first"
            ),
        )
