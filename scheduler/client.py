"""The Python client: submit tasks, follow them, cancel them.

Submissions are validated in full before anything is written, so a bad task
in a batch rejects the batch and leaves Redis as it was. Accepted tasks wait
in Redis until the dispatcher binds them to a worker.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from scheduler.errors import (
    ResultTimeoutError,
    TaskCancelledError,
    TaskFailedError,
    TaskNotFoundError,
    UnknownTaskError,
)
from scheduler.models import DEFAULT_PRIORITY, TaskRecord, TaskSpec, TaskState, validate_spec
from scheduler.settings import Settings, load_settings
from scheduler.store import StateStore, connect

_POLL_START = 0.002
_POLL_MAX = 0.1


class Client:
    """Submits tasks to a yardmaster cluster.

    Args:
        store: The state store of the cluster.
        known_tasks: Task names accepted besides those the workers registered
            (a Celery app passes its own registry here).
    """

    def __init__(self, store: StateStore, *, known_tasks: Iterable[str] = ()) -> None:
        self.store = store
        self._local_names = set(known_tasks)
        self._remote_names: set[str] = set()
        self._remote_read = 0.0

    @classmethod
    def connect(cls, redis_url: str, settings: Settings | None = None, **kwargs: Any) -> Client:
        """A client for the cluster at ``redis_url``."""
        settings = settings or load_settings()
        return cls(StateStore(connect(redis_url), settings), **kwargs)

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

        Raises:
            InvalidInputError: A field is not acceptable (the error names it).
            UnknownTaskError: No worker or app registers ``name``.
        """
        fields: dict[str, Any] = {"name": name, "args": args, "kwargs": dict(kwargs or {})}
        fields.update(priority=priority, deadline=deadline, expected_duration=expected_duration)
        fields.update(affinity_key=affinity_key, duration_key=duration_key)
        return self.submit_many([fields])[0]

    def submit_many(self, tasks: Iterable[Mapping[str, Any] | TaskSpec]) -> list[TaskHandle]:
        """Submit a batch in pipelined round trips; all are validated first.

        Each item is a :class:`TaskSpec` or a mapping with its fields
        (``name``, ``args``, ``kwargs``, ``priority``, ...).

        Raises:
            InvalidInputError: Naming ``tasks[i].field``; nothing is submitted.
        """
        specs: list[TaskSpec] = []
        for i, item in enumerate(tasks):
            spec = (
                item
                if isinstance(item, TaskSpec)
                else validate_spec(dict(item), where=f"tasks[{i}].")
            )
            self._check_name(spec.name, f"tasks[{i}].name")
            specs.append(spec)
        ids = [uuid.uuid4().hex for _ in specs]
        self.store.submit(ids, specs)
        return [TaskHandle(self, task_id) for task_id in ids]

    def _check_name(self, name: str, field: str) -> None:
        if name in self._local_names or name in self._remote_names:
            return
        if time.monotonic() - self._remote_read > 1.0:
            self._remote_names = self.store.registered_task_names()
            self._remote_read = time.monotonic()
        if name not in self._remote_names:
            raise UnknownTaskError(
                name, sorted(self._local_names | self._remote_names), field=field
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
            for task_id, state in zip(head, self.store.states(head), strict=True):
                if state is None:
                    raise TaskNotFoundError(task_id)
                if TaskState(state).terminal:
                    done.add(task_id)
            remaining = [tid for tid in remaining if tid not in done]
            if not remaining:
                break
            if deadline is not None and time.monotonic() > deadline:
                state = self.store.outcome(remaining[0])[0] or "missing"
                raise ResultTimeoutError(remaining[0], timeout or 0.0, state)
            if len(done) < len(head):
                time.sleep(delay)
                delay = min(_POLL_MAX, delay * 2)
        out: list[TaskRecord] = []
        for start in range(0, len(handles), 5000):
            ids = [h.id for h in handles[start : start + 5000]]
            for task_id, rec in zip(ids, self.store.records(ids), strict=True):
                if rec is None:
                    raise TaskNotFoundError(task_id)
                out.append(rec)
        return out


class TaskHandle:
    """A submitted task: ask its state, wait for its result, cancel it."""

    __slots__ = ("client", "id")

    def __init__(self, client: Client, task_id: str) -> None:
        self.client = client
        self.id = task_id

    def __repr__(self) -> str:
        return f"TaskHandle({self.id!r})"

    def status(self) -> TaskState:
        """The task's current state."""
        state = self.client.store.outcome(self.id)[0]
        if state is None:
            raise TaskNotFoundError(self.id)
        return TaskState(state)

    def record(self) -> TaskRecord:
        """The task's full record: state, worker, timestamps, attempt."""
        rec = self.client.store.records([self.id])[0]
        if rec is None:
            raise TaskNotFoundError(self.id)
        return rec

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
            state, result, error = self.client.store.outcome(self.id)
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

    def cancel(self) -> bool:
        """Cancel the task if it has not started. True if it is now cancelled."""
        reply = self.client.store.cancel(self.id)
        if reply == "missing":
            raise TaskNotFoundError(self.id)
        return reply == "cancelled"
