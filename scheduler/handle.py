"""A submitted task's handle: its state, its result, its cancellation.

:class:`TaskHandle` is what :class:`~scheduler.client.Client` returns for each submission
(``from scheduler.client import TaskHandle`` keeps working).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from scheduler.errors import (
    ResultTimeoutError,
    TaskCancelledError,
    TaskFailedError,
    TaskNotFoundError,
)
from scheduler.models import TaskProgress, TaskRecord, TaskState

if TYPE_CHECKING:
    from scheduler.client import Client

POLL_START = 0.002  # first pause while waiting on tasks, doubled up to POLL_MAX
POLL_MAX = 0.1


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
        delay = POLL_START
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
            delay = min(POLL_MAX, delay * 2)

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
