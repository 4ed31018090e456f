"""The one exception tree of yardmaster.

Every error a caller can meet derives from :class:`YardmasterError`. Errors
about bad input carry the field, the value and what is allowed, so a message
can always say what was wrong, with which value, and what to do instead.
"""

from __future__ import annotations

from typing import Any


class YardmasterError(Exception):
    """Root of every error yardmaster raises on purpose.

    Its subclasses take their own arguments (a field, a value, what is allowed), so
    pickling, which calls the class again with ``args``, could not rebuild them; a task
    that raised one made Celery's prefork pool lose the worker process when the error
    came back from it. :meth:`__reduce__` rebuilds one from its message and attributes.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[YardmasterError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """A ``cls`` error with ``args`` and attributes ``state``, without its ``__init__``."""
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class InvalidInputError(YardmasterError, ValueError):
    """A value given to yardmaster is not acceptable.

    Attributes:
        field: Where the value was given (``priority``, ``tasks[3].args``, ``YM_SLOTS``).
        value: The offending value, as given.
        allowed: A short description of what would have been accepted.
    """

    def __init__(self, field: str, value: Any, allowed: str, *, problem: str = "") -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.problem = problem
        shown = _short_repr(value)
        detail = f" ({problem})" if problem else ""
        super().__init__(f"{field}={shown} is not accepted{detail}; allowed: {allowed}")


class SettingsError(InvalidInputError):
    """A ``YM_*`` setting failed validation at start-up."""


class UnknownTaskError(InvalidInputError):
    """The task name is not registered by any Celery app yardmaster knows of."""

    def __init__(self, name: str, known: list[str], *, field: str = "name") -> None:
        # the project's own tasks first: Celery's built-ins (celery.map...) say little
        ordered = sorted(known, key=lambda n: (n.startswith("celery."), n))
        shown = ", ".join(ordered[:12]) or "none registered yet (start a worker first)"
        if len(ordered) > 12:
            shown += f" and {len(ordered) - 12} more"
        super().__init__(field, name, f"a registered task name: {shown}", problem="unknown task")
        self.known = known


class WorkloadError(InvalidInputError):
    """A workload file line is malformed; ``line`` is 1-based."""

    def __init__(self, path: str, line: int, field: str, value: Any, allowed: str) -> None:
        super().__init__(f"{path}:{line}: {field}", value, allowed)
        self.path = path
        self.line = line


class WorkflowError(InvalidInputError):
    """A workflow's dependencies are not acceptable (unknown parent, self-dependency, cycle,
    repeated id, too many tasks); ``ids`` names the tasks at fault."""

    def __init__(
        self, field: str, value: Any, allowed: str, *, problem: str, ids: tuple[str, ...]
    ) -> None:
        super().__init__(field, value, allowed, problem=problem)
        self.ids = ids


class TaskNotFoundError(YardmasterError, LookupError):
    """No record exists for a task id (never submitted, or its record expired)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task with id {task_id!r} (never submitted, or its record expired)")
        self.task_id = task_id


class TaskFailedError(YardmasterError):
    """The task reached the ``failed`` state; ``error`` is the worker's report."""

    def __init__(self, task_id: str, error: str) -> None:
        super().__init__(f"task {task_id} failed: {error}")
        self.task_id = task_id
        self.error = error


class TaskCancelledError(YardmasterError):
    """The task was cancelled or expired before it produced a result."""

    def __init__(self, task_id: str, state: str, reason: str = "") -> None:
        because = f": {reason}" if reason else ""
        super().__init__(f"task {task_id} ended as {state}{because}")
        self.task_id = task_id
        self.state = state
        self.reason = reason


class ResultTimeoutError(YardmasterError, TimeoutError):
    """Waiting for a result took longer than the caller allowed."""

    def __init__(self, task_id: str, timeout: float, state: str) -> None:
        super().__init__(
            f"task {task_id} is still {state} after {timeout:g}s; wait longer or check "
            "`yardmaster status` for free workers"
        )
        self.task_id = task_id
        self.timeout = timeout
        self.state = state


class ReplayTimeoutError(YardmasterError, TimeoutError):
    """A workload replay did not finish within its time limit.

    Attributes:
        timeout: The limit, in seconds.
        unfinished: Submitted tasks not yet terminal, counted by state.
        not_submitted: Rows not submitted yet (not due, or waiting on parents).
        cancelled: How many of the unfinished tasks were cancelled before starting.
    """

    def __init__(
        self, timeout: float, unfinished: dict[str, int], *, not_submitted: int, cancelled: int
    ) -> None:
        count = sum(unfinished.values())
        states = ", ".join(f"{n} {s}" for s, n in sorted(unfinished.items())) or "none"
        super().__init__(
            f"the replay has {count} unfinished tasks after {timeout:g}s ({states}) and "
            f"{not_submitted} rows not submitted yet; cancelled {cancelled} that had not "
            "started. Give a larger --timeout, or check `yardmaster status` for free workers"
        )
        self.timeout = timeout
        self.unfinished = unfinished
        self.not_submitted = not_submitted
        self.cancelled = cancelled


class StoreError(YardmasterError):
    """Redis failed a store operation: it could not be reached, or it refused a command.

    :mod:`scheduler.store` raises these in place of redis-py's own errors, so no
    caller outside the store depends on the Redis client library.
    """


class RedisUnavailableError(StoreError, ConnectionError):
    """No Redis could be reached, or none is configured."""


class RedisUnreachableError(RedisUnavailableError):
    """The configured Redis did not answer: refused, timed out, lost the connection,
    still loading its data, or refused the credentials.

    Attributes:
        url: The Redis asked, as ``redis://host:port/db`` (never with a password).
        reason: What the client library said.
    """

    def __init__(
        self,
        url: str,
        reason: str,
        *,
        hint: str = "; check that it runs and that YM_REDIS_URL names it",
    ) -> None:
        super().__init__(f"Redis at {url} cannot be reached ({reason}){hint}")
        self.url = url
        self.reason = reason


class ReplicationError(StoreError):
    """Fewer replicas than ``YM_DURABLE_REPLICAS`` confirmed a write in time: the master
    holds it (a submission stays accepted), but a failover now could lose it.

    Attributes:
        url: The Redis written to (never with a password).
        what: What was written (``the submission of 3 tasks``...).
        required: ``YM_DURABLE_REPLICAS``.
        acknowledged: Replicas that confirmed it.
    """

    def __init__(
        self, url: str, what: str, required: int, acknowledged: int, timeout: float
    ) -> None:
        super().__init__(
            f"{what} reached the Redis master at {url}, but {acknowledged} of the "
            f"{required} replicas YM_DURABLE_REPLICAS asks for confirmed it within "
            f"{timeout:g}s (YM_DURABLE_TIMEOUT): it is recorded, and a failover before the "
            "replicas catch up could lose it; check the replicas (INFO replication) or "
            "lower YM_DURABLE_REPLICAS"
        )
        self.url = url
        self.what = what
        self.required = required
        self.acknowledged = acknowledged


class RedisRefusedError(StoreError):
    """Redis answered a command or script with an error reply.

    Attributes:
        url: The Redis asked, as ``redis://host:port/db`` (never with a password).
        reply: The error reply.
    """

    def __init__(self, url: str, reply: str) -> None:
        super().__init__(f"Redis at {url} refused a command: {reply}")
        self.url = url
        self.reply = reply


class RedisOutOfMemoryError(RedisRefusedError):
    """Redis refused a write because it reached its ``maxmemory`` (an ``OOM`` reply)."""


class BackpressureError(YardmasterError):
    """A submission was refused because the cluster is full; nothing of it was stored.

    Retriable: submit again after ``retry_after`` seconds (or pass ``block=True`` to
    :meth:`Client.submit <scheduler.client.Client.submit>`).

    Attributes:
        reason: ``pending`` (the backlog reached ``YM_MAX_PENDING``) or ``memory`` (Redis's
            used memory passed ``YM_MEMORY_HIGH_WATER`` of its ``maxmemory``, and has not
            yet come back under ``YM_MEMORY_LOW_WATER``, or Redis refused the write itself).
        retry_after: Seconds to wait before trying again.
        current: The backlog (tasks) or the used memory's share of ``maxmemory``.
        limit: The bound that was passed, in the same unit.
    """

    def __init__(self, reason: str, retry_after: float, current: float, limit: float) -> None:
        if reason == "pending":
            what = f"the backlog holds {current:g} tasks, at or above YM_MAX_PENDING={limit:g}"
        else:
            what = (
                f"Redis uses {current:.0%} of its maxmemory, above the high-water mark "
                f"({limit:.0%}, YM_MEMORY_HIGH_WATER; accepted again under YM_MEMORY_LOW_WATER)"
            )
        super().__init__(
            f"submission refused, nothing was stored: {what}; retry after {retry_after:g}s "
            "(Client.submit(..., block=True) waits and retries)"
        )
        self.reason = reason
        self.retry_after = retry_after
        self.current = current
        self.limit = limit


class NotLeaderError(YardmasterError):
    """A write fenced by the dispatcher lease was refused: this dispatcher no longer holds it
    (another took over), so it must stand by."""

    def __init__(self, detail: str = "this dispatcher no longer holds the lease") -> None:
        super().__init__(detail)


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class NotAppliedError(YardmasterError, TimeoutError):
    """A strategy configuration version was not applied by a dispatcher in time."""

    def __init__(self, version: int, timeout: float, active: str) -> None:
        super().__init__(
            f"strategy version {version} was not applied within {timeout:g}s (the dispatcher "
            f"runs {active}); is a dispatcher running? See `yardmaster status`"
        )
        self.version = version


class TaskCancelRequestedError(YardmasterError):
    """Raised inside a task body that honours a cancel request (``self.check_cancelled()``);
    the run then ends as ``cancelled`` instead of ``failed``."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} was asked to cancel and stopped")
        self.task_id = task_id


class OutboxUnavailableError(YardmasterError, RuntimeError):
    """A task body used ``self.effects`` outside a run that a yardmaster worker reports.

    The outbox commits its effects with the completion the worker records, so a
    body called directly, run eagerly or by a worker without yardmaster's hooks
    has nothing to commit them with; it is refused rather than applied at once,
    which would make the same code exactly-once in one place and not in another.
    """

    def __init__(self, task_name: str, task_id: str | None) -> None:
        super().__init__(
            f"task {task_name} (id {task_id}) recorded an effect outside a yardmaster run "
            "(called directly, eagerly, or by a worker without yardmaster's hooks): the "
            "outbox commits effects with the outcome a yardmaster worker records. Submit "
            "it with .schedule() to a yardmaster worker, or write to Redis directly here"
        )
        self.task_name = task_name
        self.task_id = task_id
