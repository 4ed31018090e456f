"""Plain data that crosses layers: task states, submissions, and what strategies see.

(Over 400 lines: the types every layer shares, kept together so no layer imports another
to reach one.)

Submissions are pydantic models (they cross the wire); the records the
dispatcher keeps for every pending task, and the decisions about them, are
msgspec structs: a backlog can hold a million of them, and a struct is smaller
than a slotted dataclass and about three times faster to build (the simulator
builds one per task).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from sys import intern
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from scheduler import placement
from scheduler.errors import InvalidInputError
from scheduler.placement import Needs, fits
from scheduler.placement import needs as placement_needs
from scheduler.retry import RETRY_FIELDS, RetryPolicy

MIN_PRIORITY = 0
MAX_PRIORITY = 9
DEFAULT_PRIORITY = 5


class TaskState(StrEnum):
    """Where a task is in its life; the last four are terminal."""

    PENDING = "pending"
    WAITING = "waiting"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        """Whether no further transition can happen."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED, TaskState.EXPIRED}
)


class TaskSpec(BaseModel):
    """One submission, validated before anything is written to Redis."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: str = Field(min_length=1, max_length=200)
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(default=DEFAULT_PRIORITY, ge=MIN_PRIORITY, le=MAX_PRIORITY, strict=True)
    deadline: float | None = None
    expected_duration: float | None = Field(default=None, gt=0, le=7 * 86400)
    affinity_key: str | None = Field(default=None, min_length=1, max_length=200)
    duration_key: str | None = Field(default=None, min_length=1, max_length=200)
    cache_ttl: float | None = Field(default=None, gt=0, le=30 * 86400, allow_inf_nan=False)
    cache_version: str | None = Field(default=None, min_length=1, max_length=200)
    coalesce: bool = Field(default=False, strict=True)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    concurrency_key: str | None = Field(default=None, min_length=1, max_length=200)
    max_concurrent: int | None = Field(default=None, ge=1, le=100_000, strict=True)
    retry: RetryPolicy | None = None
    soft_time_limit: float | None = Field(default=None, gt=0, le=7 * 86400, allow_inf_nan=False)
    time_limit: float | None = Field(default=None, gt=0, le=7 * 86400, allow_inf_nan=False)
    message: dict[str, Any] | None = None
    """Celery message fields the run sees in its request (``priority``, ``expires``,
    ``headers``); set by the Celery publishing path (:mod:`workers.publishing`)."""
    # No bound on the count here: a batch's whole graph is bounded by YM_MAX_WORKFLOW.
    depends_on: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list
    )
    on_parent_failure: Literal["cancel", "run", "run_only"] = "cancel"
    """What a parent's failure (or cancellation) does: ``cancel`` this task, ``run`` it
    all the same, or ``run_only``: an errback (Celery's ``link_error``), released only
    by its parents' failure and cancelled when one succeeds or is cancelled."""
    pass_results: Annotated[bool, Strict()] | Literal["single", "id"] = False
    """``True``: the parents' results, a list in ``depends_on`` order, become the first
    argument; ``"single"``: the first parent's result itself (Celery's chain); ``"id"``:
    the first parent's id (Celery's errback call ``errback(task_id)``)."""
    resources: dict[str, float] | None = None
    labels: dict[str, str] | None = None
    queue: str | None = None
    """The Celery queue its worker must consume (``apply_async(queue=...)``, ``task_routes``)."""
    prefer: dict[str, str] | None = None
    """Labels a worker should carry (soft: never waited for)."""

    @field_validator("resources", mode="before")
    @classmethod
    def _resources(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            return placement.resources("resources", value) or None
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            return placement.labels("labels", value) or None
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("queue", mode="before")
    @classmethod
    def _queue(cls, value: Any) -> Any:
        try:
            return placement.queue("queue", value)
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("prefer", mode="before")
    @classmethod
    def _prefer(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            return placement.labels("prefer", value) or None
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None

    @property
    def needs(self) -> Needs | None:
        """Its placement requirements (None without any)."""
        return placement_needs(self.resources, self.labels, self.queue, self.prefer)

    @field_validator("time_limit")
    @classmethod
    def _hard_after_soft(cls, value: float | None, info: ValidationInfo) -> float | None:
        soft = info.data.get("soft_time_limit")
        if value is not None and soft is not None and soft >= value:
            raise ValueError(f"the hard limit must be longer than soft_time_limit ({soft:g})")
        return value

    def encoded_options(self) -> str:
        """Retry policy and time limits as JSON text for the task record ('' when none)."""
        options: dict[str, Any] = {}
        if self.retry is not None:
            options["retry"] = self.retry.as_json()
        if self.soft_time_limit is not None:
            options["soft_time_limit"] = self.soft_time_limit
        if self.time_limit is not None:
            options["time_limit"] = self.time_limit
        if self.message:
            options["message"] = self.message
        return json.dumps(options, separators=(",", ":")) if options else ""

    @field_validator("args", mode="before")
    @classmethod
    def _tuple_args(cls, value: Any) -> Any:
        return list(value) if isinstance(value, tuple) else value

    @field_validator("deadline", mode="before")
    @classmethod
    def _deadline_seconds(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("a datetime deadline must be timezone-aware")
            return value.timestamp()
        return value

    @field_validator("deadline")
    @classmethod
    def _deadline_future(cls, value: float | None) -> float | None:
        if value is not None:
            if not math.isfinite(value):
                raise ValueError("the deadline must be a finite number")
            if value <= time.time():
                raise ValueError("the deadline is already in the past")
        return value

    def encoded_args(self) -> tuple[str, str]:
        """Return ``(args, kwargs)`` as strict JSON text (no NaN, no objects)."""
        return _strict_json(self.args, "args"), _strict_json(self.kwargs, "kwargs")

    @property
    def deduplicated(self) -> bool:
        """Whether an identical call may answer it (solution cache or coalescing)."""
        return self.cache_ttl is not None or self.coalesce

    def call_digest(self) -> str:
        """SHA-256 of the call: task name, version string and canonical JSON of the arguments.

        Canonical means sorted object keys, no spaces and UTF-8 text, so two
        submissions of the same call give the same digest whatever the order
        their keyword arguments were written in.
        """
        body = json.dumps(
            [self.args, self.kwargs],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
        text = "\x00".join((self.name, self.cache_version or "", body))
        return hashlib.sha256(text.encode()).hexdigest()


_ALLOWED = {
    "name": "a registered task name, 1 to 200 characters",
    "args": "a list of JSON values",
    "kwargs": "an object of JSON values keyed by strings",
    "priority": f"an integer from {MIN_PRIORITY} to {MAX_PRIORITY} (higher runs first)",
    "deadline": "a future time: UNIX seconds or a timezone-aware datetime",
    "expected_duration": "seconds, greater than 0 and at most 604800",
    "affinity_key": "a string of 1 to 200 characters",
    "duration_key": "a string of 1 to 200 characters",
    "cache_ttl": "seconds the result stays cached, greater than 0 and at most 2592000",
    "resources": "resource name to amount, e.g. {'gpu': 1, 'mem': '4G'}: " + placement.AMOUNT_RULE,
    "labels": "label key to value, e.g. {'zone': 'eu'}: keys "
    + placement.NAME_RULE
    + "; values "
    + placement.VALUE_RULE,
    "queue": "a Celery queue name: " + placement.QUEUE_RULE,
    "prefer": "label key to value a worker should carry, e.g. {'zone': 'eu'}: keys "
    + placement.NAME_RULE
    + "; values "
    + placement.VALUE_RULE,
    "cache_version": "a string of 1 to 200 characters, used with cache_ttl or coalesce",
    "coalesce": "true or false",
    "idempotency_key": "a string of 1 to 200 characters",
    "concurrency_key": "a string of 1 to 200 characters, given together with max_concurrent",
    "max_concurrent": "an integer from 1 to 100000, given together with concurrency_key",
    "retry": "a RetryPolicy or an object with " + ", ".join(RETRY_FIELDS),
    "soft_time_limit": "seconds, greater than 0 and at most 604800",
    "time_limit": "seconds, greater than 0 and at most 604800, longer than soft_time_limit",
    "message": "an object of Celery message fields (priority, expires, headers)",
    "depends_on": "a list of task ids (1 to 200 characters each) that must finish first",
    "on_parent_failure": "'cancel' (the default), 'run' or 'run_only' (only on a failure)",
    "pass_results": (
        "true, false, 'single' or 'id' (the parents' results as the first argument: "
        "a list, or the first parent's result itself; or the first parent's id)"
    ),
}


def validate_spec(data: dict[str, Any], *, where: str = "") -> TaskSpec:
    """Validate one submission, raising an error that names field, value and rule.

    Args:
        data: The submission's fields.
        where: A prefix for the field name, such as ``tasks[3].`` in a batch.

    Raises:
        InvalidInputError: For the first field that is not acceptable.
    """
    try:
        spec = TaskSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"]
        name = str(loc[0]) if loc else "?"
        allowed = _ALLOWED.get(name, "no such field; fields are: " + ", ".join(_ALLOWED))
        problem = str(first["msg"]).removeprefix("Value error, ")
        value = first.get("input") if name in _ALLOWED else data.get(name)
        if name == "retry" and len(loc) > 1:  # a field inside the retry policy
            inner = str(loc[1])
            allowed = RETRY_FIELDS.get(
                inner, "no such field; fields are: " + ", ".join(RETRY_FIELDS)
            )
            name = f"retry.{inner}"
        raise InvalidInputError(where + name, value, allowed, problem=problem) from None
    check_pairs(spec, where)
    try:
        spec.encoded_args()
    except InvalidInputError as exc:
        raise InvalidInputError(
            where + exc.field, exc.value, exc.allowed, problem=exc.problem
        ) from None
    return spec


def check_pairs(spec: TaskSpec, where: str = "") -> None:
    """Refuse options that only mean something together when one comes alone.

    Raises:
        InvalidInputError: Naming the missing or pointless field.
    """
    if (spec.concurrency_key is None) != (spec.max_concurrent is None):
        name = "max_concurrent" if spec.max_concurrent is None else "concurrency_key"
        value = getattr(spec, name)
        raise InvalidInputError(
            where + name,
            value,
            _ALLOWED[name],
            problem="concurrency_key and max_concurrent go together",
        )
    if spec.cache_version is not None and spec.cache_ttl is None and not spec.coalesce:
        raise InvalidInputError(
            where + "cache_version",
            spec.cache_version,
            _ALLOWED["cache_version"],
            problem="a version has no effect without cache_ttl or coalesce=True",
        )
    if spec.depends_on:
        for name in ("cache_ttl", "idempotency_key"):
            if getattr(spec, name) is not None:
                raise InvalidInputError(
                    where + name,
                    getattr(spec, name),
                    _ALLOWED[name],
                    problem="cannot be combined with depends_on (the answer would skip the wait)",
                )
        if spec.coalesce:
            raise InvalidInputError(
                where + "coalesce",
                True,
                _ALLOWED["coalesce"],
                problem="cannot be combined with depends_on (the answer would skip the wait)",
            )


def _strict_json(value: Any, field_name: str) -> str:
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            field_name, value, _ALLOWED[field_name], problem=f"not JSON: {exc}"
        ) from None


class PendingTask(msgspec.Struct, gc=False):
    """What a strategy knows about one pending task.

    Attributes:
        id: Task id.
        name: Celery task name.
        priority: 0..9, higher first.
        seq: Cluster-wide submission sequence number (ties and FIFO order).
        submitted_at: Redis server time of submission, UNIX seconds.
        deadline: UNIX seconds, or None: the task's own deadline, or for a task
            in a workflow the one propagated back from the deadlines after it
            (its latest finish, :mod:`scheduler.workflow`) when that is sooner.
        expected_duration: The submitter's hint in seconds, or None.
        affinity_key: Groups tasks that run faster where the key is warm.
        duration_key: Key of the duration estimate; the task name unless given.
        concurrency_key: Tasks sharing it run at most ``max_concurrent`` at once.
        max_concurrent: The cap of its concurrency key.
        path: Its remaining path in a workflow (upward rank): the longest expected
            time from its start to the end of the workflow, its own run included;
            0 for a task outside any workflow. Strategies prefer the longer on ties.
    """

    id: str
    name: str
    priority: int
    seq: int
    submitted_at: float
    deadline: float | None = None
    expected_duration: float | None = None
    affinity_key: str | None = None
    duration_key: str | None = None
    concurrency_key: str | None = None
    max_concurrent: int | None = None
    path: float = 0.0
    # Placement requirements: None on a plain task, which so carries no slot for them;
    # a task with requirements is a PlacedTask (see there).
    needs: ClassVar[Needs | None] = None

    @property
    def estimate_key(self) -> str:
        """The key its duration estimate is learned under."""
        return self.duration_key or self.name

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> PendingTask:
        """Decode an inbox entry written by ``submit.lua`` or ``requeue.lua``.

        Keys: ``id``, ``n`` name, ``p`` priority, ``s`` sequence, ``t`` submitted
        at; optional ``d`` deadline, ``e`` expected duration, ``a`` affinity key,
        ``k`` duration key, ``c`` concurrency key, ``m`` its cap, ``r`` resources,
        ``l`` labels, ``q`` queue and ``f`` preferred labels (placement
        requirements: the task is then a :class:`PlacedTask`). An ``l``, empty
        without labels, comes with ``q`` or ``f``, so a plain task is told by two
        lookups, as before queues and preferences existed. A workflow task's entry
        has ``w``, its remaining path, and its ``d`` is then its propagated deadline
        when it has one (``submit_after.lua``); other entries carry neither.
        """
        # The texts are interned inline: three calls of ``interned`` would cost a
        # few percent of the decoding, once per task reaching the dispatcher.
        if "r" in data or "l" in data:  # a queue or a preference comes with an "l"
            return PlacedTask.placed(
                cls._plain(data), data.get("r"), data.get("l"), data.get("q"), data.get("f")
            )
        return cls._plain(data)

    @classmethod
    def _plain(cls, data: dict[str, Any]) -> PendingTask:
        affinity, duration, concurrency = data.get("a"), data.get("k"), data.get("c")
        path = data.get("w")
        return PendingTask(
            id=data["id"],
            name=intern(data["n"]),
            priority=int(data["p"]),
            seq=int(data["s"]),
            submitted_at=float(data["t"]),
            deadline=_opt_float(data.get("d")),
            expected_duration=_opt_float(data.get("e")),
            affinity_key=intern(affinity) if affinity else None,
            duration_key=intern(duration) if duration else None,
            concurrency_key=intern(concurrency) if concurrency else None,
            max_concurrent=int(data["m"]) if data.get("m") else None,
            path=float(path) if path else 0.0,
        )


class PlacedTask(PendingTask, gc=False):
    """A pending task with placement requirements (resources to hold, labels to match).

    A subclass, so that the plain tasks that make up most backlogs carry no
    slot for requirements they do not have.
    """

    needs: Needs | None = None  # type: ignore[misc]  # a field here, None on the base class

    @classmethod
    def placed(
        cls,
        task: PendingTask,
        resources: Any,
        labels: Any,
        queue: Any = None,
        prefer: Any = None,
    ) -> PendingTask:
        """``task`` with the requirements given as decoded JSON (a plain task when none)."""
        res = (
            {str(k): float(v) for k, v in resources.items()}
            if isinstance(resources, dict)
            else None
        )
        lab = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else None
        pref = {str(k): str(v) for k, v in prefer.items()} if isinstance(prefer, dict) else None
        found = placement_needs(res, lab, str(queue) if queue else None, pref)
        if found is None:
            return task
        fields = {f: getattr(task, f) for f in PendingTask.__struct_fields__}
        return cls(**fields, needs=found)


def interned(value: str | None) -> str | None:
    """``value`` as the one shared copy of that text (None for None or '').

    Task names and the keys that group tasks repeat across a backlog, but every
    decoded inbox entry or Redis reply brings its own copy: 50 to 70 bytes per
    pending task for a short name. The mirror keeps one copy of each text.
    """
    return intern(value) if value else None


def _opt_float(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


@dataclass(slots=True)
class WorkerView:
    """What a strategy knows about one worker at the moment of a decision.

    Attributes:
        name: Celery hostname of the worker (``w1@host``).
        slots: How many tasks it may hold at once (its concurrency).
        inflight: Tasks dispatched to it and not finished yet.
        succeeded: Lifetime successes (for the success rate).
        failed: Lifetime failures.
        resources: Capacity of each resource it declared (None: none).
        free_resources: What of them no task of its holds now (None: none declared).
        labels: Its labels (None: none).
        names: The task names it registered (None: it runs any).
        queues: The Celery queues it consumes (``-Q``; empty: none declared).
    """

    name: str
    slots: int
    inflight: int = 0
    succeeded: int = 0
    failed: int = 0
    resources: dict[str, float] | None = None
    free_resources: dict[str, float] | None = None
    labels: dict[str, str] | None = None
    names: frozenset[str] | None = None
    queues: frozenset[str] = frozenset()

    def can_take(self, task: PendingTask) -> bool:
        """Whether it registered ``task``'s name and has its labels and resources free now."""
        names = self.names
        if names is not None and task.name not in names:
            return False
        return fits(task.needs, self.labels, self.free_resources, self.queues)

    def hold(self, resources: dict[str, float] | None, sign: float = 1.0) -> None:
        """Take (``sign`` 1) or give back (-1) ``resources`` from its free ones."""
        free = self.free_resources
        if not resources or free is None:
            return
        for name, amount in resources.items():
            free[name] = free.get(name, 0.0) - sign * amount

    @property
    def free(self) -> int:
        """Free slots, never negative."""
        free = self.slots - self.inflight
        return free if free > 0 else 0

    def copy(self) -> WorkerView:
        """An independent copy (planning updates copies, not the driver's view)."""
        free = self.free_resources
        return WorkerView(
            self.name,
            self.slots,
            self.inflight,
            self.succeeded,
            self.failed,
            self.resources,
            None if free is None else dict(free),
            self.labels,
            self.names,
            self.queues,
        )

    @property
    def load(self) -> float:
        """Fraction of slots taken."""
        return self.inflight / self.slots if self.slots else 1.0

    @property
    def success_rate(self) -> float:
        """Share of finished tasks that succeeded; 1.0 before any finished."""
        done = self.succeeded + self.failed
        return self.succeeded / done if done else 1.0


class Decision(msgspec.Struct, frozen=True, gc=False):
    """Run ``task`` next on ``worker``; or, when ``expire`` is set, end it with that reason.

    An expiring decision takes no slot (its ``worker`` is empty).
    """

    task: PendingTask
    worker: str
    expire: str | None = None


@dataclass(slots=True)
class Estimates:
    """Learned duration estimates and affinity scores, read-only for strategies.

    Attributes:
        durations: Duration key -> EMA of run time in seconds.
        default_duration: Used for keys never seen.
        affinity: (affinity key, worker) -> score in [0, 1].
    """

    durations: dict[str, float] = field(default_factory=dict)
    default_duration: float = 1.0
    affinity: dict[tuple[str, str], float] = field(default_factory=dict)
    overrun: dict[str, float] = field(default_factory=dict)

    def duration(self, task: PendingTask) -> float:
        """Expected run time: the hint, else the learned estimate of its key."""
        if task.expected_duration is not None:
            return task.expected_duration
        return self.learned(task.estimate_key)

    def learned(self, key: str) -> float:
        """The EMA of ``key`` (else the default), raised while a run of that key
        outlasts it: with ``e`` the longest elapsed run still going (``overrun``)
        and ``m`` the EMA, the estimate is ``max(m, 2 * e - m)``.

        A run that outlasts the average is evidence the average is stale. Far
        past it, the estimate assumes the run is about half done (twice its
        elapsed time, as Dask does with finished runs); just past it, the
        estimate grows from the EMA continuously, so the ordinary spread of run
        times around their mean does not make a key's estimate jump.
        """
        base = self.durations.get(key, self.default_duration)
        running = self.overrun.get(key)
        if running is not None and running > base:
            return 2.0 * running - base
        return base

    def affinity_of(self, key: str | None, worker: str) -> float:
        """Affinity score of (key, worker); 0 when unknown or the task has no key."""
        if key is None:
            return 0.0
        return self.affinity.get((key, worker), 0.0)


@dataclass(frozen=True, slots=True)
class TaskProgress:
    """What a running task last reported with ``self.progress(done, total, note)``.

    Attributes:
        done: Units done so far.
        total: Units in all, when the task said (None otherwise).
        note: Free text the task gave with it.
        at: Redis server time of the write.
    """

    done: float
    total: float | None = None
    note: str = ""
    at: float | None = None

    @property
    def fraction(self) -> float | None:
        """``done / total`` in [0, 1], or None without a total."""
        if not self.total:
            return None
        return min(1.0, max(0.0, self.done / self.total))

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> TaskProgress | None:
        """From a task record's ``progress_*`` fields; None when it has none."""
        done = _opt_float(raw.get("progress_done"))
        if done is None:
            return None
        return cls(
            done,
            _opt_float(raw.get("progress_total")),
            raw.get("progress_note", ""),
            _opt_float(raw.get("progress_at")),
        )


@dataclass(slots=True)
class TaskRecord:
    """A task's record as stored in Redis, decoded for callers."""

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
    last_error: str | None = None
    reason: str | None = None
    not_before: float | None = None
    cancel_requested: bool = False
    max_attempts: int | None = None
    effects_error: str | None = None
    progress: TaskProgress | None = None
    depends_on: tuple[str, ...] = ()
    workflow: str | None = None
    released_at: float | None = None

    @property
    def wait(self) -> float | None:
        """Seconds from submission to start."""
        return None if self.started_at is None else self.started_at - self.submitted_at

    @property
    def flow(self) -> float | None:
        """Seconds from submission to finish."""
        return None if self.finished_at is None else self.finished_at - self.submitted_at

    @classmethod
    def from_hash(cls, task_id: str, raw: dict[str, str]) -> TaskRecord:
        """Decode the Redis hash of a task."""
        return cls(
            id=task_id,
            name=raw.get("name", "?"),
            state=TaskState(raw.get("state", "pending")),
            priority=int(raw.get("priority", DEFAULT_PRIORITY)),
            submitted_at=float(raw.get("submitted_at", 0.0)),
            worker=raw.get("worker") or None,
            dispatched_at=_opt_float(raw.get("dispatched_at")),
            started_at=_opt_float(raw.get("started_at")),
            finished_at=_opt_float(raw.get("finished_at")),
            runtime=_opt_float(raw.get("runtime")),
            attempt=int(raw.get("attempt", 0)),
            error=raw.get("error") or None,
            deadline=_opt_float(raw.get("deadline")),
            affinity_key=raw.get("affinity_key") or None,
            last_error=raw.get("last_error") or None,
            reason=raw.get("reason") or None,
            not_before=_opt_float(raw.get("not_before")),
            cancel_requested=raw.get("cancel_requested") == "1",
            max_attempts=_max_attempts(raw.get("opts")),
            effects_error=raw.get("effects_error") or None,
            progress=TaskProgress.from_hash(raw),
            depends_on=tuple(json.loads(raw["depends_on"])) if raw.get("depends_on") else (),
            workflow=raw.get("workflow") or None,
            released_at=_opt_float(raw.get("released_at")),
        )


def _max_attempts(options: str | None) -> int | None:
    """The ``max_attempts`` of a submission's own retry policy, if it has one."""
    if not options:
        return None
    retry = json.loads(options).get("retry")
    return None if retry is None else int(retry["max_attempts"])
