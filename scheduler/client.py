"""The Python client: submit tasks, follow them, cancel them.

(Over 400 lines: the client's public surface (Client, TaskHandle and their docstrings)
in one place, as users read it.)

Submissions are validated in full before anything is written, so a bad task
in a batch rejects the batch and leaves Redis as it was. Accepted tasks wait
in Redis until the dispatcher binds them to a worker.
"""

from __future__ import annotations

import getpass
import json
import logging
import socket
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from scheduler import placement
from scheduler.errors import (
    InvalidInputError,
    NotAppliedError,
    ResultTimeoutError,
    TaskCancelledError,
    TaskFailedError,
    TaskNotFoundError,
    UnknownTaskError,
)
from scheduler.logs import task_fields
from scheduler.models import (
    DEFAULT_PRIORITY,
    ActiveStrategy,
    StrategyVersion,
    TaskProgress,
    TaskRecord,
    TaskSpec,
    TaskState,
    check_pairs,
    validate_spec,
)
from scheduler.retry import RetryPolicy
from scheduler.settings import STRATEGY_NAMES, STRATEGY_PARAMS, Settings, load_settings
from scheduler.store import Store

log = logging.getLogger("yardmaster.client")

MAX_RATE = 100_000.0
_ANSWERED = {"idem": "idempotent", "coalesced": "coalesced"}
_POLL_START = 0.002
_POLL_MAX = 0.1


class Client:
    """Submits tasks to a yardmaster cluster.

    Args:
        store: The state store of the cluster.
        known_tasks: Task names accepted besides those the workers registered
            (a Celery app passes its own registry here).
    """

    def __init__(self, store: Store, *, known_tasks: Iterable[str] = ()) -> None:
        self.store = store
        self._local_names = set(known_tasks)
        self._remote_names: set[str] = set()
        self._remote_read = 0.0

    @classmethod
    def connect(cls, redis_url: str, settings: Settings | None = None, **kwargs: Any) -> Client:
        """A client for the cluster at ``redis_url``."""
        settings = settings or load_settings()
        return cls(Store.from_url(redis_url, settings), **kwargs)

    # -- submitting ------------------------------------------------------------
    def submit(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        priority: int = DEFAULT_PRIORITY,
        deadline: float | datetime | None = None,
        expected_duration: float | None = None,
        affinity_key: str | None = None,
        duration_key: str | None = None,
        cache_ttl: float | None = None,
        cache_version: str | None = None,
        coalesce: bool = False,
        idempotency_key: str | None = None,
        concurrency_key: str | None = None,
        max_concurrent: int | None = None,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        soft_time_limit: float | None = None,
        time_limit: float | None = None,
        resources: Mapping[str, float | str] | None = None,
        labels: Mapping[str, str] | None = None,
        strict: bool = False,
    ) -> TaskHandle:
        """Submit one task and return its handle.

        Args:
            name: A registered Celery task name.
            args: Positional arguments (JSON values).
            kwargs: Keyword arguments (JSON values).
            priority: 0..9, higher runs first.
            deadline: When the task should be done: UNIX seconds or an aware datetime.
            expected_duration: Your estimate of its run time, in seconds.
            affinity_key: Tasks with the same key run faster where the key is warm.
            duration_key: Learn its duration under this key instead of the name.
            cache_ttl: Cache a successful result for this many seconds; an identical
                call (name, arguments, ``cache_version``) is then answered from the
                cache without running. Identical calls in flight are coalesced.
            cache_version: Part of the cache key: change it when the code changes.
            coalesce: Attach to an identical call still pending or running
                instead of running again (implied by ``cache_ttl``).
            idempotency_key: Return the task submitted with this key within
                ``YM_IDEMPOTENCY_WINDOW`` seconds instead of a new one.
            concurrency_key: Tasks sharing this key run at most ``max_concurrent``
                at once across the cluster, served round-robin with other keys.
            max_concurrent: The cap for ``concurrency_key`` (both or neither).
            retry: Its retry policy (``max_attempts``, ``backoff``, ``backoff_max``,
                ``jitter``, ``retry_on``); else the task's ``ym_retry`` option, else
                ``YM_RETRY_*``.
            soft_time_limit: Seconds after which ``SoftTimeLimitExceeded`` is raised
                inside the task (Celery's soft time limit).
            time_limit: Seconds after which the worker kills the run (hard limit).
            resources: Amounts it holds on its worker while it runs (``{"gpu": 1,
                "mem": "4G"}``); it goes only to a worker with that much free.
            labels: Labels its worker must carry (``{"zone": "eu"}``).
            strict: Refuse the task now (``InvalidInputError`` with the reason) when no
                live worker could ever run it, instead of letting it wait as unschedulable.

        Raises:
            InvalidInputError: A field is not acceptable (the error names it).
            UnknownTaskError: No worker or app registers ``name``.
        """
        fields: dict[str, Any] = {"name": name, "args": args, "kwargs": dict(kwargs or {})}
        fields.update(priority=priority, deadline=deadline, expected_duration=expected_duration)
        fields.update(affinity_key=affinity_key, duration_key=duration_key)
        fields.update(cache_ttl=cache_ttl, cache_version=cache_version, coalesce=coalesce)
        fields.update(idempotency_key=idempotency_key)
        fields.update(concurrency_key=concurrency_key, max_concurrent=max_concurrent)
        for key, value in (
            ("retry", retry),
            ("soft_time_limit", soft_time_limit),
            ("time_limit", time_limit),
            ("resources", resources),
            ("labels", labels),
        ):
            if value is not None:
                fields[key] = dict(value) if isinstance(value, Mapping) else value
        return self.submit_many([fields], strict=strict)[0]

    def submit_many(
        self, tasks: Iterable[Mapping[str, Any] | TaskSpec], *, strict: bool = False
    ) -> list[TaskHandle]:
        """Submit a batch in pipelined round trips; all are validated first.

        Each item is a :class:`TaskSpec` or a mapping with its fields
        (``name``, ``args``, ``kwargs``, ``priority``, ``resources``, ``labels``, ...).
        With ``strict``, a task no live worker could ever run (its name, labels or
        resources) refuses the whole batch.

        Raises:
            InvalidInputError: Naming ``tasks[i].field``; nothing is submitted.
        """
        specs: list[TaskSpec] = []
        for i, item in enumerate(tasks):
            if isinstance(item, TaskSpec):
                spec = item
                check_pairs(spec, f"tasks[{i}].")
            else:
                spec = validate_spec(dict(item), where=f"tasks[{i}].")
            self._check_name(spec.name, f"tasks[{i}].name")
            specs.append(spec)
        if strict:
            self._check_placement(specs)
        ids = [uuid.uuid4().hex for _ in specs]
        replies = self.store.tasks.submit(ids, specs)
        handles: list[TaskHandle] = []
        for task_id, reply in zip(ids, replies, strict=True):
            if isinstance(reply, str) and ":" in reply:
                how, existing = reply.split(":", 1)
                handles.append(TaskHandle(self, existing, _ANSWERED[how]))
            elif reply == "cached":
                handles.append(TaskHandle(self, task_id, "cached"))
            else:
                handles.append(TaskHandle(self, task_id))
        if log.isEnabledFor(logging.DEBUG):
            _log_submitted(specs, handles)
        return handles

    def _check_name(self, name: str, field: str) -> None:
        if name in self._local_names or name in self._remote_names:
            return
        if time.monotonic() - self._remote_read > 1.0:
            self._remote_names = self.store.workers.task_names()
            self._remote_read = time.monotonic()
        if name not in self._remote_names:
            raise UnknownTaskError(
                name, sorted(self._local_names | self._remote_names), field=field
            )

    def _check_placement(self, specs: Sequence[TaskSpec]) -> None:
        """Refuse (naming the task and the requirement) a task no live worker could ever run."""
        offers = [(w.task_names, w.labels, w.resources) for w in self.store.workers.load()]
        for i, spec in enumerate(specs):
            needs = spec.needs
            reason = placement.never_reason(spec.name, needs, offers)
            if reason is None and offers:
                continue
            text = reason or ""
            field = (
                "name"
                if not offers or text.startswith("no live worker registered")
                else "labels"
                if text.startswith("no live worker serving")
                else "resources"
            )
            value = {"name": spec.name, "labels": spec.labels, "resources": spec.resources}
            raise InvalidInputError(
                f"tasks[{i}].{field}",
                value[field],
                "requirements some live worker meets (strict=True)",
                problem=reason or "no worker is registered",
            )

    # -- following -------------------------------------------------------------
    def handle(self, task_id: str) -> TaskHandle:
        """A handle for a task submitted earlier (by any client)."""
        return TaskHandle(self, task_id)

    def wait(self, handles: Sequence[TaskHandle], timeout: float | None = None) -> list[TaskRecord]:
        """Wait until every task is terminal; return their records in order.

        Raises:
            ResultTimeoutError: For the first task still unfinished at ``timeout``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        remaining = [h.id for h in handles]
        delay = _POLL_START
        while remaining:
            # Poll only the state field; full records are read once, at the end.
            head = remaining[:5000]
            done: set[str] = set()
            for task_id, state in zip(head, self.store.tasks.states(head), strict=True):
                if state is None:
                    raise TaskNotFoundError(task_id)
                if TaskState(state).terminal:
                    done.add(task_id)
            remaining = [tid for tid in remaining if tid not in done]
            if not remaining:
                break
            if deadline is not None and time.monotonic() > deadline:
                state = self.store.tasks.outcome(remaining[0])[0] or "missing"
                raise ResultTimeoutError(remaining[0], timeout or 0.0, state)
            if len(done) < len(head):
                time.sleep(delay)
                delay = min(_POLL_MAX, delay * 2)
        out: list[TaskRecord] = []
        for start in range(0, len(handles), 5000):
            ids = [h.id for h in handles[start : start + 5000]]
            for task_id, rec in zip(ids, self.store.tasks.records(ids), strict=True):
                if rec is None:
                    raise TaskNotFoundError(task_id)
                out.append(rec)
        return out

    # -- global rate limits ----------------------------------------------------
    def set_rate_limit(self, name: str, per_second: float | None) -> None:
        """Limit how many tasks named ``name`` start per second across the cluster.

        The leading dispatcher applies it at once (None removes the limit).

        Raises:
            InvalidInputError: Unknown task name, or a rate outside (0, 100000].
            UnknownTaskError: No worker or app registers ``name``.
        """
        self._check_name(name, "name")
        if per_second is not None and (
            not isinstance(per_second, int | float)
            or isinstance(per_second, bool)
            or not 0 < per_second <= MAX_RATE
        ):
            raise InvalidInputError(
                "per_second",
                per_second,
                f"tasks per second, greater than 0 and at most {MAX_RATE:g}",
            )
        self.store.limits.set_rate_limit(name, None if per_second is None else float(per_second))

    def rate_limits(self) -> dict[str, float]:
        """Every global rate limit: task name -> tasks per second."""
        return self.store.limits.rate_limits()

    # -- circuit breakers ------------------------------------------------------
    def breakers(self) -> dict[str, dict[str, Any]]:
        """Each task name's circuit breaker as last recorded: ``state`` (closed, open,
        half_open), ``since``, ``reason`` and ``mode``. Names never tripped are absent."""
        return self.store.breakers.states()

    def breaker_transitions(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest breaker transitions, newest first (name, from, to, at, reason)."""
        return self.store.breakers.transitions(limit)

    # -- live steering ---------------------------------------------------------
    def strategy(self) -> StrategyVersion | None:
        """The latest strategy configuration version, or None when never steered."""
        return self.store.strategy.latest()

    def active_strategy(self) -> ActiveStrategy | None:
        """What the leading dispatcher runs now (None before a dispatcher led)."""
        return self.store.strategy.active()

    def strategy_history(self, limit: int = 0) -> list[StrategyVersion]:
        """Every configuration version, oldest first (the last ``limit`` when given)."""
        return self.store.strategy.history(limit)

    def set_strategy(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        who: str | None = None,
        note: str = "",
        expected_version: int | None = None,
        experiment: str = "",
        guard: float | None = None,
    ) -> StrategyVersion:
        """Switch the live strategy (and its parameters) without a restart.

        The change applies to every task still pending. It is stored as a new
        version (who, when, what), so it can be listed and rolled back.

        Args:
            name: A strategy name.
            params: Strategy settings to change, by setting name (``priority_aging``,
                ``edf_late``, ``affinity_weight``, ``weights``, ``adaptive_mode``,
                ``adaptive_interval``, ``adaptive_objective``, ``default_duration``);
                the rest keep the cluster's ``YM_*`` values.
            who: Recorded as the author; ``user@host`` by default.
            note: Free text kept with the version.
            expected_version: Apply only if this is still the current version.
            experiment: The tune experiment the configuration comes from, kept with it.
            guard: Watch the live metrics for this many seconds after the switch and roll
                back by itself if they regress (``scheduler.tuning.rollout``); None: not.

        Raises:
            InvalidInputError: Unknown strategy or parameter name, or a version conflict.
            SettingsError: A parameter value out of range, naming it and what is allowed.
        """
        clean = validate_strategy(name, params or {})
        record: dict[str, Any] = {
            "strategy": name, "params": clean, "who": who or _whoami(), "note": note,
        }  # fmt: skip
        latest = self.store.strategy.latest()
        if latest is None:
            # The first version keeps what it replaces, version 0, for a rollback to it.
            record["initial"] = self._unsteered_strategy()
        if experiment:
            record["experiment"] = experiment
        if guard is not None:
            if not guard > 0:
                raise InvalidInputError("guard", guard, "a window in seconds, greater than 0")
            previous = (
                {"strategy": record["initial"], "params": {}, "version": 0}
                if latest is None
                else {
                    "strategy": latest.strategy,
                    "params": latest.params,
                    "version": latest.version,
                }
            )
            record["guard"] = {"window": guard, "previous": previous}
        version, applied = self.store.strategy.steer(record, expected_version)
        if not applied:
            raise InvalidInputError(
                "expected_version",
                expected_version,
                f"the current version ({version})",
                problem="the configuration changed meanwhile",
            )
        config = self.store.strategy.latest()
        assert config is not None
        return config

    def rollback_strategy(
        self, to: int | None = None, *, who: str | None = None
    ) -> StrategyVersion:
        """Restore an earlier version (the one before the current by default) as a new version.

        Version 0 is the configuration before the first change: the strategy the
        dispatcher ran from its own settings (``YM_STRATEGY``, recorded with the first
        version) with every parameter from ``YM_*``. So the first change can be rolled
        back too.

        Raises:
            InvalidInputError: When there is no such version (or nothing was changed yet).
        """
        history = self.store.strategy.history()
        if not history:
            raise InvalidInputError(
                "to",
                to,
                "a version number",
                problem="there is no earlier version to roll back to: the strategy was never "
                "changed (it runs the cluster's settings, version 0)",
            )
        if to is None:
            to = history[-2].version if len(history) >= 2 else 0
        if to == 0:
            return self.set_strategy(
                history[0].initial or self.store.settings.strategy,
                {},
                who=who,
                note="rollback to version 0 (the cluster's settings)",
            )
        found = [v for v in history if v.version == to]
        if not found:
            versions = ", ".join(str(v.version) for v in history)
            raise InvalidInputError(
                "to", to, f"one of the versions: {versions}, or 0 (the cluster's settings)"
            )
        target = found[0]
        return self.set_strategy(
            target.strategy, target.params, who=who, note=f"rollback to version {target.version}"
        )

    def _unsteered_strategy(self) -> str:
        """What the dispatcher runs before any change: it says so itself once it has
        led (version 0 is its own ``YM_STRATEGY``); else this process's ``YM_STRATEGY``."""
        active = self.store.strategy.active()
        if active is not None and active.version == 0:
            return active.strategy
        return self.store.settings.strategy

    def wait_strategy_active(self, version: int, timeout: float = 10.0) -> ActiveStrategy:
        """Wait until the leading dispatcher runs configuration ``version`` (or a later one).

        Raises:
            NotAppliedError: When it has not within ``timeout`` seconds.
        """
        end = time.monotonic() + timeout
        while True:
            active = self.store.strategy.active()
            if active is not None and active.version >= version:
                return active
            if time.monotonic() > end:
                now = "nothing yet" if active is None else f"version {active.version}"
                raise NotAppliedError(version, timeout, now)
            time.sleep(0.02)


def _log_submitted(specs: Sequence[TaskSpec], handles: Sequence[TaskHandle]) -> None:
    for spec, handle in zip(specs, handles, strict=True):
        how = f", answered as {handle.answered_by}" if handle.answered_by else ""
        fields = task_fields(handle.id, event="submitted")
        log.debug("task %s (%s) submitted%s", handle.id, spec.name, how, extra=fields)


def validate_strategy(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Check a strategy name and parameters; return the parameters in JSON form.

    Raises:
        InvalidInputError: Unknown strategy or parameter name.
        SettingsError: A parameter value out of range.
    """
    if name not in STRATEGY_NAMES:
        raise InvalidInputError("strategy", name, "one of: " + ", ".join(STRATEGY_NAMES))
    for key, value in params.items():
        if key not in STRATEGY_PARAMS:
            raise InvalidInputError(f"params.{key}", value, "one of: " + ", ".join(STRATEGY_PARAMS))
    settings = load_settings({}, strategy=name, **params)
    dumped = settings.model_dump(mode="json")
    return {key: dumped[key] for key in params}


def _whoami() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class TaskHandle:
    """A submitted task: ask its state, wait for its result, cancel it.

    Attributes:
        answered_by: How the submission was answered without a new run:
            ``cached`` (a solution-cache hit, already succeeded), ``coalesced``
            (attached to an identical task in flight) or ``idempotent`` (the task
            its idempotency key named); None for a new task.
    """

    __slots__ = ("answered_by", "client", "id")

    def __init__(self, client: Client, task_id: str, answered_by: str | None = None) -> None:
        self.client = client
        self.id = task_id
        self.answered_by = answered_by

    def __repr__(self) -> str:
        return f"TaskHandle({self.id!r})"

    def status(self) -> TaskState:
        """The task's current state."""
        state = self.client.store.tasks.outcome(self.id)[0]
        if state is None:
            raise TaskNotFoundError(self.id)
        return TaskState(state)

    def record(self) -> TaskRecord:
        """The task's full record: state, worker, timestamps, attempt."""
        rec = self.client.store.tasks.records([self.id])[0]
        if rec is None:
            raise TaskNotFoundError(self.id)
        return rec

    def progress(self) -> TaskProgress | None:
        """What the task last reported with ``self.progress(done, total, note)`` (``.done``,
        ``.total``, ``.note``, ``.at``, ``.fraction``); None when it has not reported any."""
        return self.record().progress

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the task to finish and return what it returned.

        Raises:
            TaskFailedError: The task raised; ``error`` carries the worker's report.
            TaskCancelledError: It was cancelled or expired.
            ResultTimeoutError: Still unfinished after ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = _POLL_START
        while True:
            state, result, error = self.client.store.tasks.outcome(self.id)
            if state is None:
                raise TaskNotFoundError(self.id)
            if state == TaskState.SUCCEEDED:
                return json.loads(result or "null")
            if state == TaskState.FAILED:
                raise TaskFailedError(self.id, error or "unknown error")
            if state in (TaskState.CANCELLED, TaskState.EXPIRED):
                raise TaskCancelledError(self.id, state, error or "")
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeoutError(self.id, timeout or 0.0, state)
            time.sleep(delay)
            delay = min(_POLL_MAX, delay * 2)

    def cancel(self, terminate: bool | None = None, *, timeout: float = 30.0) -> bool:
        """Cancel the task. True if it is now cancelled (see :meth:`record` for the reason).

        A pending task, or a dispatched one whose message still waits in its
        worker's queue, is cancelled at once and never runs. A running one (or a
        dispatched one its worker has already taken) is flagged (the body may call ``self.check_cancelled()``); with
        ``terminate`` (default: ``YM_CANCEL_RUNNING=terminate``) the worker holding
        it also kills the run with ``YM_CANCEL_SIGNAL``, and this call waits up to
        ``timeout`` seconds for the task to end.

        Raises:
            TaskNotFoundError: No such task.
        """
        store = self.client.store
        reply = store.tasks.cancel(self.id)
        if reply == "missing":
            raise TaskNotFoundError(self.id)
        if reply != "running":
            return reply == "cancelled"
        settings = store.settings
        if not (settings.cancel_running == "terminate" if terminate is None else terminate):
            return False
        end = time.monotonic() + timeout
        asked = False
        while True:
            if not asked:  # a delivery its worker has taken is terminated once it runs
                state, worker, attempt = store.tasks.running_on(self.id)
                if state == TaskState.RUNNING:
                    store.workers.request_terminate(
                        worker, self.id, attempt, settings.cancel_signal
                    )
                    asked = True
            state = store.tasks.outcome(self.id)[0] or "missing"
            if TaskState(state).terminal or time.monotonic() > end:
                return state == TaskState.CANCELLED
            time.sleep(0.02)
