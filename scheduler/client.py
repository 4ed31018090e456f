"""The Python client: submit tasks, follow them, cancel them.

(Over 400 lines: the client's public surface (Client and its docstrings) in one place,
as users read it; a task's handle is in :mod:`scheduler.handle`.)

Submissions are validated in full before anything is written, so a bad task
in a batch rejects the batch and leaves Redis as it was. Accepted tasks wait
in Redis until the dispatcher binds them to a worker.
"""

from __future__ import annotations

import getpass
import logging
import math
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from scheduler import placement, tracing
from scheduler.errors import (
    BackpressureError,
    InvalidInputError,
    NotAppliedError,
    ResultTimeoutError,
    TaskNotFoundError,
    UnknownTaskError,
)
from scheduler.handle import POLL_MAX, POLL_START
from scheduler.handle import TaskHandle as TaskHandle  # re-exported: users import it here
from scheduler.logs import task_fields
from scheduler.models import (
    DEFAULT_PRIORITY,
    TaskRecord,
    TaskSpec,
    TaskState,
    check_pairs,
    validate_spec,
)
from scheduler.retry import RetryPolicy
from scheduler.settings import STRATEGY_NAMES, STRATEGY_PARAMS, Settings, load_settings
from scheduler.store import Store
from scheduler.strategy_config import ActiveStrategy, StrategyVersion
from scheduler.workflow_client import (
    WorkflowStatus,
    cancel_workflow,
    check_id,
    store_dependent,
    workflow_status,
)

log = logging.getLogger("yardmaster.client")

_T = TypeVar("_T")

MAX_RATE = 100_000.0
_ANSWERED = {"idem": "idempotent", "coalesced": "coalesced"}


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
        block: bool = False,
        timeout: float | None = None,
        depends_on: Sequence[str] = (),
        on_parent_failure: str = "cancel",
        pass_results: bool | str = False,
        resources: Mapping[str, float | str] | None = None,
        labels: Mapping[str, str] | None = None,
        queue: str | None = None,
        prefer: Mapping[str, str] | None = None,
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
            block: When the cluster refuses the submission (backpressure), wait as it
                says and try again instead of raising at once.
            timeout: With ``block``, give up after this many seconds (None: never).
            depends_on: Ids of tasks that must finish first; it waits (state
                ``waiting``) and is released when the last one succeeds.
            on_parent_failure: ``cancel`` (default): a parent that fails, is
                cancelled or expires cancels it; ``run``: it runs anyway;
                ``run_only``: an errback, run only when its parents fail (a parent
                that succeeds, is cancelled or expires cancels it).
            pass_results: The parents' results (a list in ``depends_on`` order,
                null for a parent that did not succeed) become its first argument;
                ``"single"``: the first parent's result itself; ``"id"``: the first
                parent's id (an errback's argument, with ``run_only``).
            resources: Amounts it holds on its worker while it runs (``{"gpu": 1,
                "mem": "4G"}``); it goes only to a worker with that much free.
            labels: Labels its worker must carry (``{"zone": "eu"}``).
            queue: A Celery queue its worker must consume (``yardmaster worker -Q``).
            prefer: Labels a worker should carry (``{"zone": "eu"}``): among the free
                workers that can run it, one carrying them is chosen; never waited for.
            strict: Refuse the task now (``InvalidInputError`` with the reason) when no
                live worker could ever run it, instead of letting it wait as unschedulable.

        Raises:
            InvalidInputError: A field is not acceptable (the error names it).
            UnknownTaskError: No worker or app registers ``name``.
            BackpressureError: The cluster is full (``YM_MAX_PENDING`` or Redis memory);
                nothing was stored. With ``block``, only once ``timeout`` has passed.
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
            ("queue", queue),
            ("prefer", prefer),
        ):
            if value is not None:
                fields[key] = dict(value) if isinstance(value, Mapping) else value
        if depends_on or on_parent_failure != "cancel" or pass_results:
            fields.update(depends_on=list(depends_on), on_parent_failure=on_parent_failure)
            fields.update(pass_results=pass_results)
        return self.submit_many([fields], block=block, timeout=timeout, strict=strict)[0]

    def submit_many(
        self,
        tasks: Iterable[Mapping[str, Any] | TaskSpec],
        *,
        ids: Sequence[str] | None = None,
        not_before: float | None = None,
        block: bool = False,
        timeout: float | None = None,
        strict: bool = False,
    ) -> list[TaskHandle]:
        """Submit a batch in pipelined round trips; all are validated first.

        Each item is a :class:`TaskSpec` or a mapping with its fields
        (``name``, ``args``, ``kwargs``, ``priority``, ``depends_on``, ``resources``,
        ``labels``, ...). A
        mapping may carry its own ``id``, which other items' ``depends_on`` may
        name; a batch with dependencies or own ids is stored in one atomic step
        (docs/workflows.md). The batch is accepted or refused as a whole (see
        docs/reliability.md, "Backpressure").

        Args:
            tasks: The submissions.
            ids: Their task ids (Celery's ``task_id``); new random ids by default. An id
                already taken raises, and nothing is submitted with it. Not with
                ``depends_on`` (give the items their own ``id`` instead).
            not_before: UNIX seconds before which none of them starts (Celery's
                ``countdown`` / ``eta``): they wait in Redis, held by no worker, until
                then. Not with the cache, coalescing, an idempotency key or ``depends_on``.
            block: When the cluster refuses the batch (backpressure), wait as it says
                and try again instead of raising at once.
            timeout: With ``block``, give up after this many seconds (None: never).
            strict: Refuse the whole batch when a task in it could never run on any live
                worker (its name, labels or resources; see docs/placement.md).

        Raises:
            InvalidInputError: Naming ``tasks[i].field``; nothing is submitted.
            WorkflowError: A cycle, a self-dependency, a repeated id, too many
                tasks, or a parent missing or expired; nothing is submitted.
            BackpressureError: The cluster is full; nothing of the batch was stored.
                With ``block``, only once ``timeout`` has passed.
        """
        if timeout is not None and not timeout >= 0:
            raise InvalidInputError("timeout", timeout, "seconds, 0 or more, or None")
        if ids is not None or not_before is not None:
            return self._submit_exactly(list(tasks), ids, not_before, block, timeout, strict)
        return self._submit_batch(tasks, block=block, timeout=timeout, strict=strict)

    def _submit_batch(
        self,
        tasks: Iterable[Mapping[str, Any] | TaskSpec],
        workflow_id: str = "",
        *,
        block: bool = False,
        timeout: float | None = None,
        strict: bool = False,
    ) -> list[TaskHandle]:
        specs: list[TaskSpec] = []
        ids: list[str] = []
        own_ids = bool(workflow_id)
        for i, item in enumerate(tasks):
            if isinstance(item, TaskSpec):
                spec = item
                check_pairs(spec, f"tasks[{i}].")
                ids.append(uuid.uuid4().hex)
            else:
                data = dict(item)
                given = data.pop("id", None)
                if given is not None:
                    own_ids = True
                    ids.append(check_id(given, f"tasks[{i}].id"))
                else:
                    ids.append(uuid.uuid4().hex)
                spec = validate_spec(data, where=f"tasks[{i}].")
            self._check_name(spec.name, f"tasks[{i}].name")
            specs.append(spec)
        if strict:
            self._check_placement(specs)
        if own_ids or any(spec.depends_on for spec in specs):
            _refuse_placement(specs, "dependencies or ids of its own")
            self._admitted(
                specs,
                lambda trace: store_dependent(self.store, ids, specs, workflow_id, trace=trace),
                block,
                timeout,
            )
            handles: list[TaskHandle] = [TaskHandle(self, task_id) for task_id in ids]
            if log.isEnabledFor(logging.DEBUG):
                _log_submitted(specs, handles)
            return handles
        replies = self._admitted(
            specs, lambda trace: self.store.tasks.submit(ids, specs, trace=trace), block, timeout
        )
        handles = []
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

    def _submit_exactly(
        self,
        tasks: list[Mapping[str, Any] | TaskSpec],
        ids: Sequence[str] | None,
        not_before: float | None,
        block: bool,
        timeout: float | None,
        strict: bool = False,
    ) -> list[TaskHandle]:
        """Submit with given ids and/or a start time: every one a new task."""
        if not_before is not None and (
            not isinstance(not_before, int | float)
            or isinstance(not_before, bool)
            or not math.isfinite(not_before)
        ):
            raise InvalidInputError("not_before", not_before, "UNIX seconds, a finite number")
        if ids is None:
            ids = [uuid.uuid4().hex for _ in tasks]
        if len(ids) != len(tasks):
            raise InvalidInputError("ids", len(ids), f"one id per task ({len(tasks)})")
        for i, task_id in enumerate(ids):
            if not isinstance(task_id, str) or not 1 <= len(task_id) <= 200:
                raise InvalidInputError(f"ids[{i}]", task_id, "a string of 1 to 200 characters")
        specs = self._validated(tasks)
        if strict:
            self._check_placement(specs)
        given = list(ids)
        for i, spec in enumerate(specs):
            if spec.depends_on:
                raise InvalidInputError(
                    f"tasks[{i}].depends_on",
                    list(spec.depends_on),
                    "no dependencies with ids= or not_before= (give each item its own 'id')",
                )
        if not_before is not None:
            for i, spec in enumerate(specs):
                if spec.deduplicated or spec.idempotency_key:
                    raise InvalidInputError(
                        f"tasks[{i}].not_before",
                        not_before,
                        "no start time with cache_ttl, coalesce or idempotency_key",
                        problem="a delayed task cannot be answered by an earlier one",
                    )
            due = not_before
            replies: list[int | str] = list(
                self._admitted(
                    specs,
                    lambda trace: self.store.tasks.submit_delayed(given, specs, due, trace=trace),
                    block,
                    timeout,
                )
            )
        else:
            replies = self._admitted(
                specs,
                lambda trace: self.store.tasks.submit(given, specs, trace=trace),
                block,
                timeout,
            )
        handles: list[TaskHandle] = []
        for task_id, reply in zip(ids, replies, strict=True):
            if reply == 0:
                raise InvalidInputError("task_id", task_id, "an id no other task has")
            if isinstance(reply, str) and ":" in reply:
                how, existing = reply.split(":", 1)
                handles.append(TaskHandle(self, existing, _ANSWERED[how]))
            else:
                handles.append(TaskHandle(self, task_id, "cached" if reply == "cached" else None))
        if log.isEnabledFor(logging.DEBUG):
            _log_submitted(specs, handles)
        return handles

    def _admitted(
        self,
        specs: list[TaskSpec],
        store: Callable[[dict[str, Any] | None], _T],
        block: bool,
        timeout: float | None,
    ) -> _T:
        """What ``store`` (one of the submission routes, given the submit span's context)
        returns for the batch, inside the submit span, waiting out backpressure when
        ``block``."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                with tracing.submit(self.store.settings, [s.name for s in specs]) as trace:
                    return store(trace)
            except BackpressureError as exc:
                if not block:
                    raise
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    raise
                time.sleep(exc.retry_after if left is None else min(exc.retry_after, left))

    def _validated(self, tasks: Iterable[Mapping[str, Any] | TaskSpec]) -> list[TaskSpec]:
        specs: list[TaskSpec] = []
        for i, item in enumerate(tasks):
            if isinstance(item, TaskSpec):
                spec = item
                check_pairs(spec, f"tasks[{i}].")
            else:
                spec = validate_spec(dict(item), where=f"tasks[{i}].")
            self._check_name(spec.name, f"tasks[{i}].name")
            specs.append(spec)
        return specs

    def submit_workflow(
        self,
        tasks: Iterable[Mapping[str, Any] | TaskSpec],
        workflow_id: str | None = None,
        *,
        block: bool = False,
        timeout: float | None = None,
    ) -> tuple[str, list[TaskHandle]]:
        """Submit a workflow: a batch of tasks with dependencies, as one unit.

        Items are as for :meth:`submit_many` (give each an ``id`` its children
        name in ``depends_on``). The graph is validated first: unknown parents,
        cycles, self-dependencies, repeated ids and more than
        ``YM_MAX_WORKFLOW`` tasks are refused with an error naming the ids, and
        nothing is stored. Every record carries the workflow's id. It passes
        admission control as a whole, as :meth:`submit_many` does.

        Args:
            tasks: The workflow's tasks.
            workflow_id: Its id (a new random one by default).
            block: When the cluster refuses the workflow (backpressure), wait as it
                says and try again instead of raising at once.
            timeout: With ``block``, give up after this many seconds (None: never).

        Returns:
            The workflow's id and the tasks' handles, in the order given.

        Raises:
            BackpressureError: The cluster is full; nothing of the workflow was
                stored. With ``block``, only once ``timeout`` has passed.
        """
        if timeout is not None and not timeout >= 0:
            raise InvalidInputError("timeout", timeout, "seconds, 0 or more, or None")
        wf = workflow_id or uuid.uuid4().hex
        check_id(wf, "workflow_id")
        return wf, self._submit_batch(tasks, wf, block=block, timeout=timeout)

    def workflow(self, workflow_id: str) -> WorkflowStatus:
        """A workflow's status: its tasks' states and the counts by state."""
        return workflow_status(self.store, workflow_id)

    def cancel_workflow(self, workflow_id: str) -> int:
        """Cancel every unfinished task of a workflow; returns how many were cancelled
        (running ones are flagged, as :meth:`TaskHandle.cancel` without terminate does)."""
        return cancel_workflow(self.store, workflow_id)

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
        offers = [
            (w.task_names, w.labels, w.resources, frozenset(w.queues))
            for w in self.store.workers.load()
        ]
        for i, spec in enumerate(specs):
            needs = spec.needs
            reason = placement.never_reason(spec.name, needs, offers)
            if reason is None and offers:
                continue
            text = reason or ""
            field = (
                "name"
                if not offers or text.startswith("no live worker registered")
                else "queue"
                if "consumes the queue" in text
                else "labels"
                if text.startswith("no live worker serving")
                else "resources"
            )
            value = {
                "name": spec.name,
                "labels": spec.labels,
                "resources": spec.resources,
                "queue": spec.queue,
            }
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
        delay = POLL_START
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
                delay = min(POLL_MAX, delay * 2)
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
                ``edf_late``, ``affinity_weight``, ``affinity_wait``, ``affinity_balance``,
                ``weights``, ``adaptive_mode``,
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


def _refuse_placement(specs: Sequence[TaskSpec], route: str) -> None:
    """Placement requirements travel only on the plain submission route so far: refuse
    them on another rather than drop them (docs/placement.md, "Not built yet")."""
    for i, spec in enumerate(specs):
        if spec.needs is not None:
            field, value = next(
                (f, v)
                for f, v in (
                    ("resources", spec.resources),
                    ("labels", spec.labels),
                    ("queue", spec.queue),
                    ("prefer", spec.prefer),
                )
                if v
            )
            raise InvalidInputError(
                f"tasks[{i}].{field}",
                value,
                f"no placement requirements on a task with {route} yet",
            )
