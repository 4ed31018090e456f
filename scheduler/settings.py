"""Validated settings, read from ``YM_*`` environment variables.

Components take a :class:`Settings` object; none of them reads ``os.environ``.
:func:`load_settings` turns pydantic's validation report into a
:class:`~scheduler.errors.SettingsError` that names the variable, the value
and what is allowed, so a bad value stops a process at start-up, not later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from scheduler.errors import SettingsError

StrategyName = Literal["fifo", "priority", "sjf", "edf", "load_balance", "weighted", "adaptive"]
STRATEGY_NAMES: tuple[str, ...] = (
    "fifo",
    "priority",
    "sjf",
    "edf",
    "load_balance",
    "weighted",
    "adaptive",
)
# Settings a strategy reads; these are what live steering may change.
STRATEGY_PARAMS: tuple[str, ...] = (
    "priority_aging",
    "default_duration",
    "edf_late",
    "affinity_weight",
    "weights",
    "adaptive_mode",
    "adaptive_interval",
    "adaptive_objective",
)
WEIGHT_LIMIT = 1000.0
MIN_WAIT_WEIGHT = 1e-6


class Weights(BaseModel):
    """Weights of the ``weighted`` strategy's objective; a task's score is the sum of
    ``weight * term`` and the highest score runs first.

    Terms: ``priority`` is the level 0..9; ``wait`` is seconds waited (it grows
    without bound, so it is the one term that can lift any task past any
    other); ``duration`` is ``d / (d + expected)`` with ``d`` the default
    duration (1 for the shortest, towards 0 for long tasks); ``slack`` is the
    share of the time to its deadline a task needs, ``expected / (deadline -
    submitted)`` clipped to [0, 1] (0 without a deadline); ``affinity`` is the
    (affinity key, worker) score in [0, 1], used to choose the worker.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    priority: float = Field(default=1.0, ge=0.0, le=WEIGHT_LIMIT, allow_inf_nan=False)
    wait: float = Field(default=0.1, ge=0.0, le=WEIGHT_LIMIT, allow_inf_nan=False)
    duration: float = Field(default=1.0, ge=0.0, le=WEIGHT_LIMIT, allow_inf_nan=False)
    slack: float = Field(default=2.0, ge=0.0, le=WEIGHT_LIMIT, allow_inf_nan=False)
    affinity: float = Field(default=0.5, ge=0.0, le=WEIGHT_LIMIT, allow_inf_nan=False)

    @model_validator(mode="after")
    def _no_inversion(self) -> Weights:
        if not any((self.priority, self.wait, self.duration, self.slack, self.affinity)):
            raise ValueError("the weights are all zero; give at least one a positive weight")
        if 0.0 < self.wait < MIN_WAIT_WEIGHT:
            raise ValueError(
                f"wait ({self.wait:g}) must be 0 or at least {MIN_WAIT_WEIGHT:g}: smaller weights "
                "put the overtake window beyond any realistic wait"
            )
        bounded = self.duration + self.slack + self.affinity
        if self.wait == 0.0 and self.priority <= bounded:
            raise ValueError(
                "these weights let a low-priority task overtake a higher one forever: with "
                f"wait = 0, priority ({self.priority:g}) must be greater than duration + slack "
                f"+ affinity ({bounded:g}); raise priority or give wait a positive weight"
            )
        return self

    def overtake_window(self) -> float:
        """Seconds after which a task submitted later can no longer overtake one of higher
        priority (0: never; only finite when ``wait`` > 0 or priority dominates)."""
        gain = self.duration + self.slack + self.affinity - self.priority
        if gain <= 0:
            return 0.0
        return gain / self.wait


ENV_PREFIX = "YM_"


class Settings(BaseSettings):
    """Every tunable of a yardmaster cluster, with its allowed range."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    redis_url: str | None = Field(
        default=None,
        description="a redis://, rediss:// or unix:// URL; unset means an embedded Redis",
    )
    namespace: str = Field(
        default="ym",
        pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description="1 to 32 letters, digits, '_' or '-'",
    )
    slots: int = Field(default=2, ge=1, le=512, description="an integer from 1 to 512")
    strategy: StrategyName = Field(
        default="priority", description="one of: " + ", ".join(STRATEGY_NAMES)
    )
    priority_aging: float = Field(
        default=0.1,
        ge=0.0,
        le=1000.0,
        description="priority levels gained per second of waiting, from 0 (strict) to 1000",
    )
    edf_late: Literal["run", "expire"] = Field(
        default="run",
        description="run or expire: what edf does with a task that can no longer meet its deadline",
    )
    affinity_weight: float = Field(
        default=1.0,
        ge=0.0,
        le=100.0,
        description="how much affinity outweighs load in load_balance, from 0 to 100",
    )
    weights: Weights = Field(
        default_factory=Weights,
        description=(
            "a JSON object with any of priority, wait, duration, slack, affinity (each 0..1000, "
            "not all 0; wait 0 or at least 1e-6; with wait 0, priority must exceed duration + "
            "slack + affinity)"
        ),
    )
    adaptive_mode: Literal["simulate", "rules"] = Field(
        default="simulate",
        description="simulate (try each strategy on the backlog) or rules (the fixed rules)",
    )
    adaptive_interval: float = Field(
        default=2.0, ge=0.05, le=3600.0, description="seconds between reviews, 0.05 to 3600"
    )
    adaptive_objective: Literal["misses_then_flow", "mean_flow", "max_lateness"] = Field(
        default="misses_then_flow",
        description="misses_then_flow, mean_flow or max_lateness",
    )
    ema_alpha: float = Field(
        default=0.3, gt=0.0, le=1.0, description="a number greater than 0 and at most 1"
    )
    default_duration: float = Field(
        default=1.0, gt=0.0, le=86400.0, description="seconds, greater than 0 and at most 86400"
    )
    affinity_step: float = Field(
        default=0.1, gt=0.0, le=1.0, description="a number greater than 0 and at most 1"
    )
    warm_capacity: int = Field(
        default=4, ge=1, le=1024, description="how many affinity keys a worker keeps warm, 1..1024"
    )
    warm_factor: float = Field(
        default=0.5, gt=0.0, le=1.0, description="a number greater than 0 and at most 1"
    )
    dispatch_batch: int = Field(
        default=256, ge=1, le=10000, description="claims per round trip, an integer 1..10000"
    )
    handoff: bool = Field(
        default=True,
        description="true or false: let a finishing worker take the next task itself",
    )
    handoff_depth: int = Field(
        default=32, ge=1, le=10000, description="tasks kept ready for freed slots, 1..10000"
    )
    heartbeat_interval: float = Field(
        default=2.0, gt=0.0, le=300.0, description="seconds, greater than 0 and at most 300"
    )
    worker_timeout: float = Field(
        default=15.0, gt=0.0, le=3600.0, description="seconds without a heartbeat, up to 3600"
    )
    dispatcher_lease: float = Field(
        default=10.0, ge=1.0, le=600.0, description="seconds, from 1 to 600"
    )
    redis_retry: float = Field(
        default=30.0, ge=0.0, le=3600.0, description="seconds, from 0 to 3600"
    )
    result_ttl: int = Field(
        default=86400, ge=60, le=30 * 86400, description="seconds, from 60 to 2592000"
    )
    events_maxlen: int = Field(
        default=100_000, ge=1000, le=10_000_000, description="an integer from 1000 to 10000000"
    )
    submit_chunk: int = Field(
        default=1000, ge=1, le=100_000, description="tasks per Redis call in submit_many, 1..100000"
    )
    cache_max_entries: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="cached results kept before the least recently used are evicted, 1..10000000",
    )
    idempotency_window: int = Field(
        default=86400,
        ge=1,
        le=30 * 86400,
        description="seconds an idempotency key returns its task, 1 to 2592000",
    )
    guard_ttl: float = Field(
        default=30.0,
        ge=1.0,
        le=3600.0,
        description="seconds an execution guard outlives a silent holder, from 1 to 3600",
    )
    rate_burst: float = Field(
        default=0.1,
        ge=0.0,
        le=60.0,
        description="seconds of tokens a global rate limit may bank (at least one token), 0 to 60",
    )
    flower_port: int = Field(default=5555, ge=1, le=65535, description="a TCP port, 1..65535")

    @field_validator("redis_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("the URL must start with redis://, rediss:// or unix://")
        return value


def load_settings(env: Mapping[str, str] | None = None, /, **overrides: Any) -> Settings:
    """Build settings from the environment (or ``env``) plus keyword overrides.

    Raises:
        SettingsError: naming the ``YM_`` variable (or keyword), its value and
            what is allowed, for the first invalid field.
    """
    try:
        if env is None:
            return Settings(**overrides)
        values: dict[str, Any] = {
            key[len(ENV_PREFIX) :].lower(): value
            for key, value in env.items()
            if key.startswith(ENV_PREFIX)
            and key[len(ENV_PREFIX) :].lower() in Settings.model_fields
        }
        values.update(overrides)
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise _settings_error(exc, overrides) from None


def _settings_error(exc: ValidationError, overrides: Mapping[str, Any]) -> SettingsError:
    first = exc.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else "?"
    field = Settings.model_fields.get(name)
    allowed = field.description if field is not None and field.description else "see docs"
    where = name if name in overrides else ENV_PREFIX + name.upper()
    problem = str(first["msg"]).removeprefix("Value error, ")
    if len(first["loc"]) > 1:  # a field inside a nested setting, such as weights.wait
        where += "." + ".".join(str(part) for part in first["loc"][1:])
    return SettingsError(where, first.get("input"), allowed, problem=problem)
