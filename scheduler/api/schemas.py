"""What crosses the HTTP API: one pydantic model per request and response body.

A submission is the client's :class:`~scheduler.models.TaskSpec` itself
(subclassed only for its name in the OpenAPI document), so a field added to
``TaskSpec`` is accepted over HTTP with no change here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from scheduler.models import TaskProgress, TaskRecord, TaskSpec, TaskState
from scheduler.settings import StrategyName
from scheduler.store import WorkerSummary

ErrorCode = Literal[
    "invalid_input",
    "unknown_task",
    "too_large",
    "invalid_json",
    "unsupported_media_type",
    "body_too_large",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "conflict",
    "rate_limited",
    "backpressure",
    "unavailable",
    "internal",
]


class ErrorBody(BaseModel):
    """Every error the API returns: a stable code, the field at fault (when one is), and a
    message saying what was wrong, with which value, and what is allowed."""

    code: ErrorCode
    field: str | None = None
    message: str


class SubmitRequest(TaskSpec):
    """One task to submit: its registered name, JSON arguments and scheduling hints."""

    # Strict: JSON types as declared (no "5" for 5, no true for 1).
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        title="SubmitRequest",
        json_schema_extra={
            "examples": [
                {"name": "noop"},
                {"name": "sleep", "args": [0.01], "priority": 7, "affinity_key": "user-3"},
            ]
        },
    )
    strict: bool = Field(
        default=False,
        description="refuse the task (422) when no live worker could ever run it, "
        "instead of letting it wait as unschedulable",
    )

    # Celery message fields come from Celery's own calls only (workers/publishing.py).
    message: SkipJsonSchema[None] = None


class BatchRequest(BaseModel):
    """Tasks submitted together: all are accepted or none (the first bad one is named)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    tasks: list[SubmitRequest] = Field(min_length=1)


class Submitted(BaseModel):
    """An accepted task: its id, and its state (pending until a worker slot frees).

    ``answered_by`` is set when no new task was made: ``cached`` (a new record,
    succeeded with the cached result), ``coalesced`` (the identical task still
    in flight) or ``idempotent`` (the task submitted with the same key).
    """

    id: str
    state: TaskState
    answered_by: str | None = None


class BatchSubmitted(BaseModel):
    """Accepted tasks, in the order they were given."""

    tasks: list[Submitted]


class TaskInfo(BaseModel):
    """A task's record: state, worker, timestamps (Redis server time, UNIX seconds).

    ``attempt`` counts dispatches; ``last_error`` is the error of the latest failed
    attempt that was retried, ``not_before`` the earliest start of a retry waiting out
    its backoff, ``max_attempts`` the retry policy's bound, and ``reason`` why a task
    ended as it did where the state alone does not say (``timeout``, ``terminated``,
    ``breaker_open``, an expiry or an orphan policy). ``progress`` is what the task
    last reported with ``self.progress(done, total, note)`` (``at`` in Redis time), or
    null when it never did.
    """

    id: str
    name: str
    state: TaskState
    priority: int
    submitted_at: float
    worker: str | None = None
    dispatched_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    runtime: float | None = None
    attempt: int = 0
    error: str | None = None
    deadline: float | None = None
    affinity_key: str | None = None
    reason: str | None = None
    last_error: str | None = None
    not_before: float | None = None
    max_attempts: int | None = None
    effects_error: str | None = None
    progress: TaskProgress | None = None
    depends_on: list[str] = Field(
        default_factory=list, description="The tasks it waited for (docs/workflows.md)."
    )
    workflow: str | None = Field(default=None, description="The workflow it belongs to.")

    @classmethod
    def of(cls, rec: TaskRecord) -> TaskInfo:
        """From the store's record (the fields this model shows)."""
        return cls.model_validate({name: getattr(rec, name) for name in cls.model_fields})


class TaskResult(BaseModel):
    """A task's outcome: ``done`` once terminal; ``result`` is what it returned (succeeded),
    ``error`` why it failed, was cancelled or expired."""

    id: str
    state: TaskState
    done: bool
    result: Any = None
    error: str | None = None


class CancelReply(BaseModel):
    """What a cancel did: ``cancelled`` is true when the task will never run.

    A running task is not interrupted (``cancelled`` false, state ``running``); a
    finished one keeps its terminal state.
    """

    id: str
    cancelled: bool
    state: TaskState


class TaskPage(BaseModel):
    """One page of tasks in a state; pass ``next_cursor`` back to get the next page
    (null when there is none)."""

    state: TaskState
    tasks: list[TaskInfo]
    next_cursor: str | None = None


class WorkerInfo(BaseModel):
    """A registered worker: slots, tasks it holds, heartbeat age, lifetime counters, and
    what it offers for placement (resource capacities, labels, the task names it registered;
    ``task_names`` null for a worker that did not say)."""

    name: str
    slots: int
    in_flight: int
    free: int
    host: str
    pid: int
    heartbeat_age: float
    succeeded: int
    failed: int
    resources: dict[str, float] = {}
    labels: dict[str, str] = {}
    queues: list[str] = []
    task_names: list[str] | None = None

    @classmethod
    def of(cls, w: WorkerSummary, now: float) -> WorkerInfo:
        """From the store's summary, with ``now`` the Redis server time."""
        same = ("name", "slots", "free", "host", "pid", "succeeded", "failed", "resources")
        values: dict[str, object] = {name: getattr(w, name) for name in same}
        values["labels"] = w.labels
        values["queues"] = list(w.queues)
        values["task_names"] = None if w.task_names is None else sorted(w.task_names)
        values.update(in_flight=w.inflight, heartbeat_age=round(w.heartbeat_age(now), 3))
        return cls.model_validate(values)


class WorkerList(BaseModel):
    """Every registered worker."""

    workers: list[WorkerInfo]


class StrategyVersionInfo(BaseModel):
    """One version of the live strategy configuration."""

    version: int
    strategy: str
    params: dict[str, Any]
    who: str
    at: float
    note: str = ""
    experiment: str = Field(default="", description="The tune experiment it came from, if any.")
    guard: dict[str, Any] | None = Field(
        default=None,
        description="Its guarded rollout: the window in seconds and the version it replaced.",
    )


class ActiveStrategyInfo(BaseModel):
    """What the leading dispatcher runs now (version 0: the cluster's YM_STRATEGY)."""

    strategy: str
    version: int
    since: float
    dispatcher: str


class StrategyState(BaseModel):
    """The requested configuration (null before any change) and what the dispatcher runs."""

    config: StrategyVersionInfo | None
    active: ActiveStrategyInfo | None
    rollout: dict[str, Any] | None = Field(
        default=None,
        description="The verdict of the latest guarded rollout (version, state, reason, ...).",
    )
    guard_running: bool = Field(
        default=False, description="Whether a `yardmaster monitor` runs the rollout guard now."
    )


class StrategyHistory(BaseModel):
    """Configuration versions, oldest first."""

    versions: list[StrategyVersionInfo]


class StrategySet(BaseModel):
    """A new live strategy configuration; it applies to every task still pending."""

    model_config = ConfigDict(extra="forbid", strict=True)

    strategy: StrategyName
    params: dict[str, Any] = Field(default_factory=dict)
    note: str = Field(default="", max_length=1000)
    expected_version: int | None = Field(default=None, ge=0)
    guard: bool = Field(
        default=False,
        description="Watch the live metrics after the switch and roll back if they regress "
        "(the guard runs in `yardmaster monitor`).",
    )
    window: float | None = Field(
        default=None,
        ge=1.0,
        le=86400.0,
        description="Seconds the guard watches (default YM_ROLLOUT_WINDOW); only with guard.",
    )


class Rollback(BaseModel):
    """Restore version ``to`` (the one before the current when null; 0 is the cluster's
    settings, before the first change) as a new version."""

    model_config = ConfigDict(extra="forbid", strict=True)

    to: int | None = Field(default=None, ge=0)


class Liveness(BaseModel):
    """The API process answers."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Whether the cluster can run work: Redis answers, a dispatcher leads, a worker is alive."""

    ready: bool
    redis: bool
    dispatcher_leader: bool
    workers: int
