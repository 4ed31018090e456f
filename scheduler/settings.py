"""Validated settings, read from ``YM_*`` environment variables.

(Over 400 lines: one field per setting, each with its bounds and its help text; split, a
reader would hunt for a setting across files.)

Components take a :class:`Settings` object; none of them reads ``os.environ``.
:func:`load_settings` turns pydantic's validation report into a
:class:`~scheduler.errors.SettingsError` that names the variable, the value
and what is allowed, so a bad value stops a process at start-up, not later.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError as PydanticSettingsError

from scheduler import placement
from scheduler.breaker import BreakerPolicy
from scheduler.errors import InvalidInputError, SettingsError
from scheduler.redaction import HIDDEN, redact_url
from scheduler.retry import RetryPolicy
from scheduler.searchable import Choice, Range

StrategyName = Literal[
    "fifo", "priority", "sjf", "edf", "load_balance", "weighted", "adaptive", "critical_path"
]
STRATEGY_NAMES: tuple[str, ...] = (
    "fifo",
    "priority",
    "sjf",
    "edf",
    "load_balance",
    "weighted",
    "adaptive",
    "critical_path",
)
# Settings a strategy reads; these are what live steering may change.
STRATEGY_PARAMS: tuple[str, ...] = (
    "priority_aging",
    "default_duration",
    "edf_late",
    "affinity_weight",
    "affinity_wait",
    "affinity_balance",
    "weights",
    "adaptive_mode",
    "adaptive_interval",
    "adaptive_objective",
    "adaptive_flow_margin",
    "adaptive_miss_margin",
    "sjf_overrun",
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

    priority: Annotated[float, Range(0.01, 20.0, log=True)] = Field(
        default=1.0, ge=0.0, le=WEIGHT_LIMIT, allow_inf_nan=False
    )
    wait: Annotated[float, Range(0.001, 5.0, log=True)] = Field(
        default=0.1, ge=0.0, le=WEIGHT_LIMIT, allow_inf_nan=False
    )
    duration: Annotated[float, Range(0.0, 10.0)] = Field(
        default=1.0, ge=0.0, le=WEIGHT_LIMIT, allow_inf_nan=False
    )
    slack: Annotated[float, Range(0.0, 10.0)] = Field(
        default=2.0, ge=0.0, le=WEIGHT_LIMIT, allow_inf_nan=False
    )
    affinity: Annotated[float, Range(0.0, 5.0)] = Field(
        default=0.5, ge=0.0, le=WEIGHT_LIMIT, allow_inf_nan=False
    )

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


class ApiToken(BaseModel):
    """One bearer token of the HTTP API: its name (recorded as the author of a change; never
    the secret), its scope, and the secret itself (kept out of every repr and log)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    scope: Literal["read", "submit", "admin"]
    token: SecretStr = Field(min_length=16, max_length=512)


ENV_PREFIX = "YM_"
API_AUTH_OFF_WARNING = (
    "YM_API_AUTH=false: the HTTP API accepts every request WITHOUT A TOKEN, including strategy "
    "changes. Use this only on a machine nobody else can reach."
)


class Settings(BaseSettings):
    """Every tunable of a yardmaster cluster, with its allowed range."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    redis_url: str | None = Field(
        default=None,
        description=(
            "a redis://, rediss:// or unix:// URL, or sentinel://H:P;sentinel://H:P/DB for "
            "Redis behind Sentinel; unset means an embedded Redis"
        ),
    )
    sentinel_master: str = Field(
        default="mymaster",
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="the master's name the Sentinels monitor (1 to 64 letters, digits, . _ -)",
    )
    durable_replicas: int = Field(
        default=0,
        ge=0,
        le=16,
        description=(
            "replicas that must hold each accepted submission and recorded outcome "
            "(Redis WAIT), an integer from 0 (off) to 16"
        ),
    )
    durable_timeout: float = Field(
        default=1.0,
        gt=0.0,
        le=60.0,
        description="seconds to wait for those replicas, more than 0 and at most 60",
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
    priority_aging: Annotated[float, Range(0.0, 2.0)] = Field(
        default=0.1,
        ge=0.0,
        le=1000.0,
        description="priority levels gained per second of waiting, from 0 (strict) to 1000",
    )
    edf_late: Annotated[Literal["run", "expire"], Choice(("run", "expire"))] = Field(
        default="run",
        description="run or expire: what edf does with a task that can no longer meet its deadline",
    )
    deadline_margin: float = Field(
        default=0.0,
        ge=0.0,
        le=86400.0,
        allow_inf_nan=False,
        description=(
            "seconds, 0 to 86400: the safety margin a deadline propagated back through a "
            "workflow leaves before each ancestor's latest start"
        ),
    )
    affinity_weight: Annotated[float, Range(0.0, 5.0)] = Field(
        default=1.0,
        ge=0.0,
        le=100.0,
        description="how much affinity outweighs load in load_balance, from 0 to 100",
    )
    affinity_wait: Annotated[float, Range(0.0, 5.0)] = Field(
        default=1.0,
        ge=0.0,
        le=3600.0,
        allow_inf_nan=False,
        description=(
            "seconds, 0 to 3600: how long after submission a keyed task may wait for its "
            "key's home worker in load_balance and weighted (delay scheduling; 0 never waits)"
        ),
    )
    affinity_balance: Annotated[float, Range(0.0, 1.0)] = Field(
        default=0.0,
        ge=0.0,
        le=10.0,
        allow_inf_nan=False,
        description=(
            "0 to 10: eps of the home load bound; a worker becomes a new key's home only "
            "while it is home to fewer than (1 + eps) times the average number of keys"
        ),
    )
    weights: Weights = Field(
        default_factory=Weights,
        description=(
            "a JSON object with any of priority, wait, duration, slack, affinity (each 0..1000, "
            "not all 0; wait 0 or at least 1e-6; with wait 0, priority must exceed duration + "
            "slack + affinity)"
        ),
    )
    adaptive_mode: Annotated[Literal["simulate", "rules"], Choice(("simulate", "rules"))] = Field(
        default="simulate",
        description="simulate (try each strategy on the backlog) or rules (the fixed rules)",
    )
    adaptive_interval: Annotated[float, Range(0.1, 30.0, log=True)] = Field(
        default=2.0, ge=0.05, le=3600.0, description="seconds between reviews, 0.05 to 3600"
    )
    adaptive_flow_margin: Annotated[float, Range(0.0, 0.5)] = Field(
        default=0.1,
        ge=0.0,
        lt=1.0,
        description="share of mean flow a replay must cut to take over, 0 to below 1",
    )
    adaptive_miss_margin: Annotated[float, Range(0.0, 0.5)] = Field(
        default=0.1,
        ge=0.0,
        lt=1.0,
        description="share of deadline misses (and at least one) a replay must cut, 0 to below 1",
    )
    adaptive_objective: Annotated[
        Literal["misses_then_flow", "mean_flow", "max_lateness"],
        Choice(("misses_then_flow", "mean_flow", "max_lateness")),
    ] = Field(
        default="misses_then_flow",
        description="misses_then_flow, mean_flow or max_lateness",
    )
    ema_alpha: Annotated[float, Range(0.05, 1.0)] = Field(
        default=0.3, gt=0.0, le=1.0, description="a number greater than 0 and at most 1"
    )
    default_duration: Annotated[float, Range(0.01, 10.0, log=True)] = Field(
        default=1.0, gt=0.0, le=86400.0, description="seconds, greater than 0 and at most 86400"
    )
    sjf_overrun: Annotated[bool, Choice((True, False))] = Field(
        default=True,
        description="true or false: sjf raises a key's estimate while a run outlasts it",
    )
    affinity_step: Annotated[float, Range(0.01, 0.5, log=True)] = Field(
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
    worker_resources: str = Field(
        default="",
        description="name=amount pairs separated by commas (gpu=2,mem=16G; K/M/G/T are powers "
        "of 1024), '' for none",
    )
    worker_labels: str = Field(
        default="",
        description="key=value pairs separated by commas (zone=eu,arch=arm64), '' for none",
    )
    worker_queues: str = Field(
        default="",
        description="Celery queue names separated by commas (a worker consuming them runs "
        "tasks routed to them), '' for Celery's selection (-Q, else every declared queue)",
    )
    worker_timeout: float = Field(
        default=15.0, gt=0.0, le=3600.0, description="seconds without a heartbeat, up to 3600"
    )
    dispatcher_lease: float = Field(
        default=10.0, ge=1.0, le=600.0, description="seconds, from 1 to 600"
    )
    dispatch_timeout: float = Field(
        default=30.0,
        ge=1.0,
        le=86400.0,
        description="seconds a dispatched task may wait to start, from 1 to 86400",
    )
    drain_timeout: float = Field(
        default=60.0, ge=0.0, le=86400.0, description="seconds, from 0 to 86400"
    )
    visibility_timeout: int = Field(
        default=7 * 86400,
        ge=1,
        le=365 * 86400,
        description="seconds, from 1 to 31536000",
    )
    redis_retry: float = Field(
        default=30.0, ge=0.0, le=3600.0, description="seconds, from 0 to 3600"
    )
    client_timeout: float = Field(
        default=10.0, gt=0.0, le=3600.0, description="seconds, more than 0, at most 3600"
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
    max_pending: int = Field(
        default=0,
        ge=0,
        le=1_000_000_000,
        description="tasks waiting (pending or delayed) above which submissions are refused; "
        "0 = no bound",
    )
    memory_high_water: float = Field(
        default=0.85,
        ge=0.0,
        le=1.0,
        description="share of Redis's maxmemory above which submissions are refused, 0..1 "
        "(0 = no memory check)",
    )
    memory_low_water: float = Field(
        default=0.75,
        ge=0.0,
        le=1.0,
        description="share of Redis's maxmemory under which submissions are accepted again, "
        "0..1, at most YM_MEMORY_HIGH_WATER",
    )
    memory_sample_ms: int = Field(
        default=100,
        ge=0,
        le=10_000,
        description="milliseconds a reading of Redis's memory is reused by submissions, "
        "0 to 10000 (0: read every time)",
    )
    backpressure_retry_after: float = Field(
        default=1.0,
        gt=0.0,
        le=3600.0,
        description="seconds a refused submission is told to wait, more than 0, at most 3600",
    )
    max_workflow: int = Field(
        default=100_000,
        ge=1,
        le=1_000_000,
        description=(
            "an integer from 1 to 1000000: most tasks one submit_workflow (or one batch with "
            "dependencies) may hold; such a batch is stored in one atomic step"
        ),
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
        default=6.0,
        ge=1.0,
        le=3600.0,
        description="seconds an execution guard outlives a silent holder, from 1 to 3600",
    )
    early_start_window: float = Field(
        default=2.0,
        ge=0.0,
        le=600.0,
        description=(
            "seconds, 0 to 600; a first delivery younger than this (and than a quarter of "
            "YM_WORKER_TIMEOUT and of YM_DISPATCH_TIMEOUT) starts its body while its start is "
            "being recorded; 0 always waits for the start"
        ),
    )
    start_hold: float = Field(
        default=0.005,
        ge=0.0,
        le=1.0,
        description=(
            "seconds, 0 to 1; a first delivery that may start early holds its start back this "
            "long and sends it with its outcome when the body ends sooner; 0 sends it at once"
        ),
    )
    rate_burst: float = Field(
        default=0.1,
        ge=0.0,
        le=60.0,
        description="seconds of tokens a global rate limit may bank (at least one token), 0 to 60",
    )
    flower_port: int = Field(default=5555, ge=1, le=65535, description="a TCP port, 1..65535")
    # -- retries, breakers, timeouts, cancellation (docs/retries-and-cancellation.md) --
    retry_max_attempts: int = Field(
        default=1, ge=1, le=1000, description="attempts in all, 1 (no retries) to 1000"
    )
    retry_backoff: float = Field(
        default=1.0, ge=0.0, le=604800.0, description="seconds, from 0 to 604800"
    )
    retry_backoff_max: float = Field(
        default=600.0, ge=0.0, le=604800.0, description="seconds, from 0 to 604800"
    )
    retry_jitter: float = Field(default=0.1, ge=0.0, le=1.0, description="a share from 0 to 1")
    retry_on: tuple[str, ...] = Field(
        default=("Exception",),
        description='a JSON list of exception class names, e.g. ["OSError", "mymod.Busy"]',
    )
    breaker: bool = Field(
        default=True, description="true or false: keep a circuit breaker per task name"
    )
    breaker_failure_rate: float = Field(
        default=0.5, gt=0.0, le=1.0, description="a share greater than 0 and at most 1"
    )
    breaker_window: float = Field(
        default=60.0, gt=0.0, le=86400.0, description="seconds, greater than 0 and at most 86400"
    )
    breaker_min_calls: int = Field(
        default=20, ge=1, le=1_000_000, description="an integer from 1 to 1000000"
    )
    breaker_cooldown: float = Field(
        default=30.0, gt=0.0, le=86400.0, description="seconds, greater than 0 and at most 86400"
    )
    breaker_probes: int = Field(
        default=1, ge=1, le=10_000, description="an integer from 1 to 10000"
    )
    breaker_mode: Literal["wait", "fail"] = Field(
        default="wait", description="wait (tasks stay pending) or fail (tasks fail at once)"
    )
    breaker_overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description=(
            "a JSON object: task name -> any of enabled, failure_rate, window, min_calls, "
            "cooldown, probes, mode (unset fields take the YM_BREAKER_* values)"
        ),
    )
    soft_time_limit: float | None = Field(
        default=None, gt=0.0, le=604800.0, description="seconds, greater than 0; unset: none"
    )
    time_limit: float | None = Field(
        default=None, gt=0.0, le=604800.0, description="seconds, greater than 0; unset: none"
    )
    cancel_running: Literal["flag", "terminate"] = Field(
        default="flag",
        description="flag (the task may check it) or terminate (the worker kills the run)",
    )
    cancel_signal: Literal["SIGTERM", "SIGKILL", "SIGINT", "SIGUSR1"] = Field(
        default="SIGTERM", description="SIGTERM, SIGKILL, SIGINT or SIGUSR1"
    )
    # -- observability (docs/observability.md) --
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text or json (one JSON object per line)",
    )
    progress_interval: float = Field(
        default=0.5,
        ge=0.0,
        le=3600.0,
        description="seconds between two progress writes of one run, 0 (every call) to 3600",
    )
    otel: Literal["none", "console", "otlp", "file"] = Field(
        default="none",
        description="none, console, otlp or file: where this process exports its trace spans",
    )
    otel_file: str = Field(
        default="",
        max_length=4096,
        description="the JSON-lines file YM_OTEL=file appends spans to",
    )
    # -- tuning: the regression gate and advisors (docs/tuning.md) --
    tune_storage: str = Field(
        default="sqlite:///.yardmaster/tune.db",
        min_length=1,
        description="an SQLAlchemy database URL for tuning studies and experiments",
    )
    tune_holdout: float = Field(
        default=0.3, ge=0.1, le=0.9, description="share of the trace held out, 0.1 to 0.9"
    )
    tune_confidence: float = Field(
        default=0.95,
        ge=0.5,
        le=0.999,
        description="confidence of the gate's interval, 0.5 to 0.999",
    )
    tune_resamples: int = Field(
        default=2000, ge=100, le=100_000, description="bootstrap resamples, 100 to 100000"
    )
    tune_min_gain: float = Field(
        default=0.01,
        ge=0.0,
        lt=1.0,
        description="relative gain the interval's low end must exceed, 0 to below 1",
    )
    tune_miss_tolerance: float = Field(
        default=0.05,
        ge=0.0,
        le=10.0,
        description="relative rise in deadline misses a candidate may cause, 0 to 10",
    )
    tune_p99_tolerance: float = Field(
        default=0.05,
        ge=0.0,
        le=10.0,
        description="relative rise in p99 flow a candidate may cause, 0 to 10",
    )
    tune_replicates: int = Field(
        default=5,
        ge=1,
        le=100,
        description="noisy replicates of the held-out part the gate judges on, 1 to 100",
    )
    tune_noise: float = Field(
        default=0.1,
        ge=0.0,
        le=2.0,
        description="sigma of the log-normal run-time noise of the replicates, 0 to 2",
    )
    advisor_timeout: float = Field(
        default=10.0, gt=0.0, le=600.0, description="seconds, greater than 0 and at most 600"
    )
    advisor_retries: int = Field(
        default=2, ge=0, le=10, description="retries after a bad answer, 0 to 10"
    )

    api_host: str = Field(
        default="127.0.0.1", min_length=1, description="the address the HTTP API listens on"
    )
    api_port: int = Field(
        default=8000, ge=1, le=65535, description="the HTTP API's TCP port, 1..65535"
    )
    api_auth: bool = Field(
        default=True,
        description="true or false: false turns bearer-token checks off (local use only)",
    )
    api_tokens: tuple[ApiToken, ...] = Field(
        default=(),
        description=(
            'a JSON list of {"name", "scope" (read, submit or admin), "token" (16 to 512 '
            "characters)}; names unique"
        ),
    )
    api_max_body: int = Field(
        default=1_048_576,
        ge=1024,
        le=64 * 1_048_576,
        description="bytes of one request body, 1024 to 67108864",
    )
    api_max_args: int = Field(
        default=65_536,
        ge=2,
        le=16 * 1_048_576,
        description="bytes of one task's args and kwargs as JSON, 2 to 16777216",
    )
    api_max_batch: int = Field(
        default=1000, ge=1, le=100_000, description="tasks in one batch request, 1..100000"
    )
    api_rate: float = Field(
        default=50.0,
        gt=0.0,
        le=1_000_000.0,
        description="requests per second allowed per token, greater than 0 and at most 1000000",
    )
    api_burst: int = Field(
        default=100,
        ge=1,
        le=1_000_000,
        description="requests a token may send at once above its rate, 1..1000000",
    )

    @field_validator("worker_resources", "worker_labels", "worker_queues")
    @classmethod
    def _worker_placement(cls, value: str, info: ValidationInfo) -> str:
        # the worker's offers parse as --resources / --label / -Q would
        parse = {
            "worker_resources": placement.resources,
            "worker_labels": placement.labels,
            "worker_queues": placement.queues,
        }[str(info.field_name)]
        try:
            parse(str(info.field_name).removeprefix("worker_"), value)
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("retry_on", mode="before")
    @classmethod
    def _retry_names(cls, value: Any) -> Any:
        value = _json_text(value)
        try:
            return RetryPolicy.model_validate({"retry_on": value}).retry_on
        except ValidationError as exc:
            raise ValueError(str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None

    @field_validator("breaker_overrides", mode="before")
    @classmethod
    def _overrides_json(cls, value: Any) -> Any:
        return _json_text(value)

    @field_validator("breaker_overrides")
    @classmethod
    def _overrides(cls, value: dict[str, dict[str, Any]], info: ValidationInfo) -> Any:
        base = {
            key: info.data[f"breaker_{key}" if key != "enabled" else "breaker"]
            for key in BreakerPolicy.model_fields
            if (f"breaker_{key}" if key != "enabled" else "breaker") in info.data
        }
        for name, override in value.items():
            try:
                BreakerPolicy.model_validate({**base, **override})
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"{name}.{where}: {first['msg']}") from None
        return value

    def early_start_limit(self) -> float:
        """Seconds a first delivery may be old to start early (see ``early_start_window``)."""
        return min(self.early_start_window, self.worker_timeout / 4, self.dispatch_timeout / 4)

    def start_hold_limit(self) -> float:
        """Seconds a fresh first delivery holds its start back (0 when it may not start early).

        Never more than a tenth of the early-start window, so a held start still
        reaches Redis long before the delivery could be recovered as unstarted.
        """
        return min(self.start_hold, self.early_start_limit() / 10)

    def retry_policy(self) -> RetryPolicy:
        """The cluster's default retry policy (``YM_RETRY_*``)."""
        return RetryPolicy(
            max_attempts=self.retry_max_attempts,
            backoff=self.retry_backoff,
            backoff_max=self.retry_backoff_max,
            jitter=self.retry_jitter,
            retry_on=self.retry_on,
        )

    def breaker_policies(self) -> dict[str, BreakerPolicy]:
        """Per task name breaker policies (``YM_BREAKER_OVERRIDES`` over ``YM_BREAKER_*``)."""
        base = self.breaker_policy().model_dump()
        return {
            name: BreakerPolicy.model_validate({**base, **override})
            for name, override in self.breaker_overrides.items()
        }

    def breaker_policy(self) -> BreakerPolicy:
        """The cluster's breaker policy (``YM_BREAKER_*``)."""
        return BreakerPolicy(
            enabled=self.breaker,
            failure_rate=self.breaker_failure_rate,
            window=self.breaker_window,
            min_calls=self.breaker_min_calls,
            cooldown=self.breaker_cooldown,
            probes=self.breaker_probes,
            mode=self.breaker_mode,
        )

    monitor_port: int = Field(default=5556, ge=1, le=65535, description="a TCP port, 1..65535")
    monitor_interval: float = Field(
        default=1.0, ge=0.05, le=60.0, description="seconds between monitor polls, 0.05 to 60"
    )
    monitor_history: str | None = Field(
        default=None, description="a file path for the JSON Lines history; unset means none"
    )
    monitor_history_every: float = Field(
        default=10.0, ge=0.1, le=3600.0, description="seconds between metric snapshots, 0.1 to 3600"
    )
    monitor_history_bytes: int = Field(
        default=10_000_000, ge=10_000, le=10**10, description="bytes before rotation, 10000 to 1e10"
    )
    monitor_history_keep: int = Field(
        default=5, ge=1, le=100, description="rotated history files kept, 1 to 100"
    )
    monitor_short_window: float = Field(
        default=60.0, ge=1.0, le=3600.0, description="seconds, 1 to 3600"
    )
    monitor_long_window: float = Field(
        default=300.0, ge=2.0, le=86400.0, description="seconds, 2 to 86400, above the short window"
    )
    monitor_min_samples: int = Field(
        default=10, ge=1, le=100_000, description="an integer from 1 to 100000"
    )
    monitor_heartbeat_misses: float = Field(
        default=3.0, ge=1.0, le=100.0, description="heartbeat intervals, 1 to 100"
    )
    monitor_stall_factor: float = Field(
        default=5.0, ge=1.0, le=1000.0, description="times the EMA, 1 to 1000"
    )
    monitor_stall_min: float = Field(
        default=10.0, ge=0.0, le=86400.0, description="seconds, 0 to 86400"
    )
    monitor_drop_ratio: float = Field(
        default=0.5, gt=0.0, lt=1.0, description="a ratio greater than 0 and less than 1"
    )
    monitor_failure_ratio: float = Field(
        default=0.2, gt=0.0, le=1.0, description="a ratio greater than 0 and at most 1"
    )
    monitor_drift_ratio: float = Field(
        default=0.5, gt=0.0, le=1000.0, description="a relative error greater than 0, up to 1000"
    )
    monitor_drift_floor: float = Field(
        default=0.05, gt=0.0, le=3600.0, description="seconds, greater than 0 and at most 3600"
    )
    monitor_backlog_growth: int = Field(
        default=20, ge=1, le=10**9, description="tasks, an integer from 1 to 1e9"
    )
    monitor_max_task_labels: int = Field(
        default=50, ge=1, le=10_000, description="an integer from 1 to 10000"
    )
    monitor_trace: str | None = Field(
        default=None, description="a file path for the rolling trace; unset means none"
    )
    monitor_trace_bytes: int = Field(
        default=50_000_000, ge=10_000, le=10**11, description="bytes before rotation, 10000 to 1e11"
    )
    monitor_trace_keep: int = Field(
        default=3, ge=1, le=100, description="rotated trace files kept, 1 to 100"
    )
    plan_interval: float = Field(
        default=30.0, ge=0.0, le=86400.0, description="seconds between plans, 0 (none) to 86400"
    )
    plan_max_tasks: int = Field(
        default=2000, ge=10, le=1_000_000, description="backlog tasks planned, 10 to 1000000"
    )
    plan_min_adherence: float = Field(
        default=0.7, ge=0.0, le=1.0, description="a share of task pairs, 0 to 1"
    )
    plan_max_error: float = Field(
        default=0.5, gt=0.0, le=100.0, description="a relative error greater than 0, up to 100"
    )
    rollout_window: float = Field(
        default=300.0, ge=1.0, le=86400.0, description="seconds, 1 to 86400"
    )
    rollout_min_tasks: int = Field(
        default=30, ge=5, le=1_000_000, description="tasks per window, 5 to 1000000"
    )

    @field_validator("monitor_long_window")
    @classmethod
    def _windows_ordered(cls, value: float, info: ValidationInfo) -> float:
        short = info.data.get("monitor_short_window")
        if short is not None and value <= short:
            raise ValueError(f"it must be greater than YM_MONITOR_SHORT_WINDOW ({short:g})")
        return value

    @field_validator("memory_low_water")
    @classmethod
    def _waters_ordered(cls, value: float, info: ValidationInfo) -> float:
        high = info.data.get("memory_high_water")
        if high is not None and value > high:
            raise ValueError(f"it must be at most YM_MEMORY_HIGH_WATER ({high:g})")
        return value

    @field_validator("otel_file")
    @classmethod
    def _file_named(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("otel") == "file" and not value:
            raise ValueError("YM_OTEL=file needs a path here (YM_OTEL_FILE)")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("redis://", "rediss://", "unix://", "sentinel://")):
            raise ValueError("the URL must start with redis://, rediss://, unix:// or sentinel://")
        return value

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _tokens_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("api_tokens")
    @classmethod
    def _unique_names(cls, value: tuple[ApiToken, ...]) -> tuple[ApiToken, ...]:
        names = [t.name for t in value]
        if len(set(names)) != len(names):
            raise ValueError("two tokens share a name")
        secrets = [t.token.get_secret_value() for t in value]
        if len(set(secrets)) != len(secrets):
            raise ValueError("two tokens share a secret")
        return value


def _json_text(value: Any) -> Any:
    """Decode a JSON text given for a structured setting (from a mapping of strings)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from None
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
    except PydanticSettingsError as exc:  # a structured variable that is not JSON
        found = re.search(r'field "(\w+)"', str(exc))
        name = found.group(1) if found else "?"
        field = Settings.model_fields.get(name)
        allowed = field.description if field is not None and field.description else "see docs"
        where = ENV_PREFIX + name.upper()
        raise SettingsError(where, HIDDEN, allowed, problem="not valid JSON") from None


def _settings_error(exc: ValidationError, overrides: Mapping[str, Any]) -> SettingsError:
    first = exc.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else "?"
    field = Settings.model_fields.get(name)
    allowed = field.description if field is not None and field.description else "see docs"
    where = name if name in overrides else ENV_PREFIX + name.upper()
    problem = str(first["msg"]).removeprefix("Value error, ")
    if len(first["loc"]) > 1:  # a field inside a nested setting, such as weights.wait
        where += "." + ".".join(str(part) for part in first["loc"][1:])
    value = first.get("input")
    if name == "api_tokens":  # secrets: never echo them
        value = HIDDEN
    elif name == "redis_url" and isinstance(value, str):
        value = redact_url(value)
    return SettingsError(where, value, allowed, problem=problem)
