"""Task records: submission, cancellation, ending unrun, and reads of one task or many.

A task's record is the hash ``<ns>:task:<id>`` (see :mod:`scheduler.keys`):
name, arguments, hints, state, timestamps, worker, attempt, result or error.
The transitions that move a task between workers (claim, start, finish,
requeue) live with the queue and the deliveries; this repository writes the
ones a client or the dispatcher asks for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis import Redis
from redis.exceptions import ResponseError

from scheduler import placement
from scheduler.errors import BackpressureError, RedisOutOfMemoryError
from scheduler.keys import Keys
from scheduler.models import TaskRecord, TaskSpec, TaskState
from scheduler.settings import Settings
from scheduler.store.base import Repository
from scheduler.store.connection import translate, translated
from scheduler.store.durability import wait_replicas
from scheduler.store.listing import SCAN_BUDGET, TaskPages
from scheduler.store.scripts import Scripts

EVENT_SCAN = 10_000
"""Newest events searched for a task whose record has expired."""


@dataclass(frozen=True, slots=True)
class StoredTask:
    """A task as stored: its hash (empty once expired) and its terminal event, if found."""

    id: str
    fields: dict[str, str]
    event: dict[str, str] | None


def _accepted(count: int) -> str:
    return f"the submission of {count} task{'s' if count != 1 else ''}"


class Tasks(Repository):
    """Task records of one namespace."""

    def __init__(self, client: Redis, keys: Keys, settings: Settings, scripts: Scripts) -> None:
        super().__init__(client, keys, settings, scripts)
        self._pages = TaskPages(client, keys, self.records)

    @translated
    def submit(
        self,
        ids: Sequence[str],
        specs: Sequence[TaskSpec],
        *,
        trace: Mapping[str, Any] | None = None,
    ) -> list[int | str]:
        """Accept tasks atomically per chunk (``submit.lua``), the batch as a whole or not at all.

        The first chunk is sent alone and decides admission for the batch (see
        docs/reliability.md, "Backpressure"); the others follow in one pipeline.

        ``trace`` (the submit span's context, scheduler/tracing.py) goes into
        every record's options, which carry it to the dispatcher on both routes.

        Returns, per task, its sequence number (0 = duplicate id), or for a task
        answered without a new run: ``idem:<id>``, ``coalesced:<id>`` or ``cached``.

        Raises:
            BackpressureError: The batch was refused (backlog or memory bound); nothing
                of it was stored.
            ReplicationError: Fewer replicas than ``YM_DURABLE_REPLICAS`` confirmed the
                accepted batch in time (it stays accepted).
        """
        replies = self._chunked(
            len(ids), lambda part, check, to: self._submit_chunk(ids, specs, part, check, to, trace)
        )
        return [r if isinstance(r, str) else int(r) for reply in replies for r in reply]

    def _chunked(self, count: int, run: Callable[[range, bool, Any], Any]) -> list[Any]:
        """The replies of ``run(part, check, to)`` over ``count`` tasks, a chunk
        (``YM_SUBMIT_CHUNK``) at a time: the first alone on the client, checked for
        admission (it decides for the batch), the others in one pipeline; then the
        durability wait for the accepted batch."""
        chunk = self._settings.submit_chunk
        first = range(0, min(chunk, count))
        replies = [admitted(lambda: run(first, True, self._client), self._client, self._settings)]
        if count > chunk:
            with self._client.pipeline(transaction=False) as pipe:
                for start in range(chunk, count, chunk):
                    run(range(start, min(start + chunk, count)), False, pipe)
                replies += pipe.execute()
        wait_replicas(self._client, self._keys, self._settings, _accepted(count))
        return replies

    def _submit_chunk(
        self,
        ids: Sequence[str],
        specs: Sequence[TaskSpec],
        part: range,
        check: bool,
        to: Any,
        trace: Mapping[str, Any] | None = None,
    ) -> Any:
        """Run ``submit.lua`` for tasks ``part`` on ``to`` (the client, or a pipeline)."""
        k, s = self._keys, self._settings
        head = [k.seq, k.pending, k.inbox, k.stats, k.pending_by_priority]
        head += [k.cache_stats, k.cache_index, k.delayed, k.admission, k.memory_sample]
        args: list[Any] = [s.result_ttl, s.idempotency_window, k.task_prefix]
        args += [1 if check else 0, *admission_args(self._settings)]
        for i in part:
            spec = specs[i]
            args += task_args(ids[i], spec, trace)
            args.append(k.idempotency(spec.idempotency_key) if spec.idempotency_key else "")
            digest = spec.call_digest() if spec.deduplicated else ""
            args.append(k.inflight(digest) if digest else "")
            if spec.cache_ttl is not None:
                args += [k.cache_entry(digest), int(spec.cache_ttl * 1000)]
            else:
                args += ["", ""]
            args += _placement_args(spec)
        return self._scripts("submit", head + [k.task(ids[i]) for i in part], args, client=to)

    @translated
    def submit_delayed(
        self,
        ids: Sequence[str],
        specs: Sequence[TaskSpec],
        not_before: float,
        *,
        trace: Mapping[str, Any] | None = None,
    ) -> list[int]:
        """Accept tasks that start no earlier than ``not_before`` (UNIX seconds), atomically
        per chunk (``submit_delayed.lua``), the batch as a whole or not at all: each waits
        in the delayed set, as a retry's backoff does, until ``promote.lua`` moves it to
        the pending index. The first chunk is sent alone and decides admission, as in
        :meth:`submit`; ``trace`` goes into every record's options, as there.

        Returns, per task, its sequence number (0 = duplicate id).

        Raises:
            BackpressureError: The batch was refused (backlog or memory bound); nothing
                of it was stored.
            ReplicationError: Fewer replicas than ``YM_DURABLE_REPLICAS`` confirmed the
                accepted batch in time (it stays accepted).
        """
        replies = self._chunked(
            len(ids),
            lambda part, check, to: self._delayed_chunk(
                ids, specs, part, not_before, check, to, trace
            ),
        )
        return [int(r) for reply in replies for r in reply]

    def _delayed_chunk(
        self,
        ids: Sequence[str],
        specs: Sequence[TaskSpec],
        part: range,
        not_before: float,
        check: bool,
        to: Any,
        trace: Mapping[str, Any] | None,
    ) -> Any:
        """Run ``submit_delayed.lua`` for tasks ``part`` on ``to`` (the client, or a pipeline)."""
        k = self._keys
        keys = [k.seq, k.delayed, k.inbox, k.stats, k.pending_by_priority]
        keys += [k.pending, k.admission, k.memory_sample, *(k.task(ids[i]) for i in part)]
        args: list[Any] = [k.task_prefix, repr(float(not_before)), 1 if check else 0]
        args += admission_args(self._settings)
        for i in part:
            spec = specs[i]
            args += task_args(ids[i], spec, trace)
            args += _placement_args(spec)
        return self._scripts("submit_delayed", keys, args, client=to)

    @translated
    def watch_expiry(self, task_id: str, at: float) -> None:
        """End ``task_id`` as expired if it is still pending at ``at`` (UNIX seconds), by
        :meth:`expire_due`."""
        self._client.zadd(self._keys.expiring, {task_id: at})

    @translated
    def expire_due(self, limit: int = 10_000) -> tuple[int, float | None]:
        """End as expired the watched tasks past their time and still pending
        (``expire_due.lua``). Returns how many, and the next time watched (None: none)."""
        k, s = self._keys, self._settings
        keys = [k.expiring, k.pending, k.delayed, k.stats, k.pending_by_priority, k.events]
        keys.append(k.inbox)
        args = [k.task_prefix, s.result_ttl, s.events_maxlen, limit]
        ended, nxt = self._scripts("expire_due", keys, args)
        return int(ended), (float(nxt) if nxt not in ("", None) else None)

    @translated
    def note_failure(self, task_id: str, exception: str, traceback: str) -> None:
        """Keep a failed run's exception (JSON: ``exc_type``, ``exc_module``,
        ``exc_message``) and traceback on its record, for Celery's result backend."""
        self._client.hset(
            self._keys.task(task_id), mapping={"exc": exception, "traceback": traceback}
        )

    @translated
    def cancel(self, task_id: str, reason: str = "cancelled by request") -> str:
        """Cancel a task that has not started; see ``cancel.lua`` for the replies."""
        k, s = self._keys, self._settings
        keys = [k.task(task_id), k.pending, k.stats, k.pending_by_priority, k.events, k.inbox]
        keys += [k.delayed, k.dependents(task_id)]
        args = [task_id, reason, s.result_ttl, s.events_maxlen, k.worker_queue("")]
        return str(self._scripts("cancel", keys, args))

    @translated
    def end(self, task_id: str, state: str, error: str, reason: str = "") -> str:
        """End a pending task unrun in terminal ``state``, with ``error`` and ``reason`` (if
        any) on its record; see ``end_pending.lua`` for the replies."""
        k, s = self._keys, self._settings
        keys = [k.task(task_id), k.pending, k.stats, k.pending_by_priority, k.events]
        keys += [k.inbox, k.dependents(task_id)]
        args = [task_id, state, error, reason, s.result_ttl, s.events_maxlen]
        return str(self._scripts("end_pending", keys, args))

    def expire(self, task_id: str, reason: str) -> str:
        """End a pending task as expired (a strategy gave up on it), ``reason`` as its error."""
        return self.end(task_id, TaskState.EXPIRED.value, reason)

    @translated
    def set_progress(
        self, task_id: str, worker: str, attempt: int, done: float, total: float | None, note: str
    ) -> bool:
        """Write a running task's progress on its record, stamped with Redis time; only
        the delivery the record names (``worker``, ``attempt``) may (``progress.lua``)."""
        args = [worker, str(attempt), repr(float(done)), _opt(total), note]
        return bool(self._scripts("progress", [self._keys.task(task_id)], args))

    @translated
    def mark_unschedulable(self, reasons: dict[str, str]) -> None:
        """Record why each of these pending tasks cannot run on any live worker: the
        ``unschedulable`` index and each record's ``reason`` (``unschedulable: ...``)."""
        if not reasons:
            return
        k = self._keys
        with self._client.pipeline(transaction=False) as pipe:
            for task_id, why in reasons.items():
                pipe.hset(k.task(task_id), "reason", f"unschedulable: {why}")
            pipe.hset(k.unschedulable, mapping=cast(Any, reasons))
            pipe.execute()

    @translated
    def clear_unschedulable(self, ids: Sequence[str], *, records: bool = True) -> None:
        """These tasks can run again (a fitting worker registered); with ``records``
        False (they ended: a cancel), only the index forgets them."""
        if not ids:
            return
        k = self._keys
        with self._client.pipeline(transaction=False) as pipe:
            for task_id in ids if records else ():
                pipe.hdel(k.task(task_id), "reason")
            pipe.hdel(k.unschedulable, *ids)
            pipe.execute()

    @translated
    def unschedulable(self) -> dict[str, str]:
        """Each pending task no live worker could ever run, with the reason."""
        return cast(dict[str, str], self._client.hgetall(self._keys.unschedulable))

    @translated
    def records(self, ids: Sequence[str]) -> list[TaskRecord | None]:
        """Task records for ``ids`` (None where no record exists), in one round trip."""
        with self._client.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hgetall(self._keys.task(task_id))
            rows = pipe.execute()
        return [
            TaskRecord.from_hash(task_id, row) if row else None
            for task_id, row in zip(ids, rows, strict=True)
        ]

    @translated
    def fields(self, ids: Sequence[str], names: Sequence[str]) -> list[dict[str, str]]:
        """The fields ``names`` of each task's record that are set (an empty dict for a
        record that expired), in one round trip: what a trace needs beyond the events."""
        with self._client.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hmget(self._keys.task(task_id), list(names))
            rows = cast(list[list[str | None]], pipe.execute())
        return [
            {name: value for name, value in zip(names, row, strict=True) if value is not None}
            for row in rows
        ]

    @translated
    def states(self, ids: Sequence[str]) -> list[str | None]:
        """The state of each task (None where no record exists), in one round trip."""
        with self._client.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hget(self._keys.task(task_id), "state")
            return cast(list[str | None], pipe.execute())

    @translated
    def outcome(self, task_id: str) -> tuple[str | None, str | None, str | None]:
        """(state, result JSON, error) of a task; state None when there is no record."""
        fields = ["state", "result", "error"]
        row = cast(list[str | None], self._client.hmget(self._keys.task(task_id), fields))
        return row[0], row[1], row[2]

    @translated
    def outcome_detail(self, task_id: str) -> dict[str, str]:
        """The fields of a task's record that say how it ended (``state``, ``result``,
        ``error``, ``reason``, ``exc``, ``traceback``, ``finished_at``, ``replaced_by``;
        those set), one
        round trip: what Celery's result backend reads."""
        names = ["state", "result", "error", "reason", "exc", "traceback", "finished_at"]
        names.append("replaced_by")  # Celery's self.replace (replace.lua)
        row = cast(list[str | None], self._client.hmget(self._keys.task(task_id), names))
        return {name: value for name, value in zip(names, row, strict=True) if value is not None}

    @translated
    def running_on(self, task_id: str) -> tuple[str, str, int]:
        """(state, worker, attempt) of a task (``missing``, '', 0 without a record)."""
        row = cast(
            list[str | None],
            self._client.hmget(self._keys.task(task_id), "state", "worker", "attempt"),
        )
        return row[0] or "missing", row[1] or "", int(row[2] or 0)

    @translated
    def cancel_requested(self, task_id: str) -> bool:
        """Whether a cancel was asked for while ``task_id`` runs."""
        return self._client.hget(self._keys.task(task_id), "cancel_requested") == "1"

    @translated
    def payloads(self, ids: Sequence[str]) -> list[tuple[str, str, str, str, str]]:
        """(state, name, args JSON, kwargs JSON, options JSON or '') of each task, in one
        round trip (what a message needs)."""
        fields = ["state", "name", "args", "kwargs", "opts"]
        with self._client.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hmget(self._keys.task(task_id), fields)
            rows = pipe.execute()
        return [
            (r[0] or "missing", r[1] or "", r[2] or "[]", r[3] or "{}", r[4] or "") for r in rows
        ]

    @translated
    def find(
        self,
        state: TaskState,
        limit: int,
        cursor: str | None = None,
        *,
        name: str | None = None,
        worker: str | None = None,
        budget: int = SCAN_BUDGET,
    ) -> tuple[list[TaskRecord], str | None]:
        """Like :meth:`page`, keeping only tasks whose name and worker contain ``name``
        and ``worker`` (case-insensitive; None or empty matches all).

        Pages are read, each no larger than what is still missing, so the cursor
        returned is always the one after the last task looked at; after ``budget``
        pages the search stops and returns what it found with that cursor (fewer than
        ``limit`` tasks, and more may follow).
        """
        want_name = (name or "").lower()
        want_worker = (worker or "").lower()
        if not want_name and not want_worker:
            return self._pages.page(state, limit, cursor)
        found: list[TaskRecord] = []
        for _ in range(budget):
            shown, cursor = self._pages.page(state, limit - len(found), cursor)
            found += [
                rec
                for rec in shown
                if want_name in rec.name.lower() and want_worker in (rec.worker or "").lower()
            ]
            if cursor is None or len(found) == limit:
                break
        return found, cursor

    @translated
    def stored(self, task_id: str) -> StoredTask | None:
        """The task's hash as stored (for the dashboard's explorer, which also shows what
        :class:`TaskRecord` does not decode: arguments, progress, ``attempt_<n>``); its
        terminal event is looked up in the newest :data:`EVENT_SCAN` events only when the
        hash is gone (the record expired after ``YM_RESULT_TTL``). None when neither exists."""
        fields = cast(dict[str, str], self._client.hgetall(self._keys.task(task_id)))
        if fields:
            return StoredTask(task_id, fields, None)
        entries = cast(
            list[tuple[str, dict[str, str]]],
            self._client.xrevrange(self._keys.events, count=EVENT_SCAN),
        )
        for _, event in entries:
            if event.get("id") == task_id:
                return StoredTask(task_id, {}, event)
        return None

    @translated
    def page(
        self, state: TaskState, limit: int, cursor: str | None = None
    ) -> tuple[list[TaskRecord], str | None]:
        """Up to ``limit`` tasks in ``state`` after ``cursor``, and the next cursor (None when
        there are no more); see :mod:`scheduler.store.listing`.

        Raises:
            InvalidInputError: ``cursor`` is not one this method returned.
        """
        return self._pages.page(state, limit, cursor)


def task_args(task_id: str, spec: TaskSpec, trace: Mapping[str, Any] | None) -> list[Any]:
    """The 12 fields every submission script takes first for a task: id, name, args,
    kwargs, priority, deadline, expected_duration, affinity_key, duration_key, options
    (with the trace context), concurrency_key, max_concurrent ('' when absent)."""
    a, kw = spec.encoded_args()
    return [
        task_id, spec.name, a, kw, spec.priority, _opt(spec.deadline),
        _opt(spec.expected_duration), spec.affinity_key or "", spec.duration_key or "",
        _traced(spec.encoded_options(), trace), spec.concurrency_key or "",
        "" if spec.max_concurrent is None else spec.max_concurrent,
    ]  # fmt: skip


def _opt(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _traced(options: str, trace: Mapping[str, Any] | None) -> str:
    """A record's options text with the trace entry added (unchanged without one)."""
    if not trace:
        return options
    merged = dict(json.loads(options)) if options else {}
    merged["trace"] = dict(trace)
    return json.dumps(merged, separators=(",", ":"))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def admitted(call: Callable[[], Any], client: Redis, settings: Settings) -> Any:
    """The reply of ``call`` (a submission script run on ``client`` with the admission
    check on, _admission.lua), a backpressure refusal raised as the typed error.

    Raises:
        BackpressureError: The script refused the batch, or Redis refused its first
            write over ``maxmemory`` before the high-water check saw it.
    """
    s = settings
    try:
        reply = call()
    except ResponseError as exc:
        refusal = translate(exc, client)
        if not isinstance(refusal, RedisOutOfMemoryError):
            raise
        raise BackpressureError(
            "memory", s.backpressure_retry_after, 1.0, s.memory_high_water or 1.0
        ) from refusal
    if reply and _text(reply[0]) == "backpressure":
        reason, current, limit = _text(reply[1]), float(reply[2]), float(reply[3])
        raise BackpressureError(reason, s.backpressure_retry_after, current, limit)
    return reply


def admission_args(settings: Settings) -> list[Any]:
    """The admission check's arguments, as every submission script takes them: max
    pending, high water, low water (shares of maxmemory), sample ms."""
    s = settings
    return [s.max_pending, s.memory_high_water, s.memory_low_water, s.memory_sample_ms]


def _placement_args(spec: TaskSpec) -> list[str]:
    """The four placement fields the submission scripts take after a task's others:
    resources, labels (JSON), queue, prefer (JSON)."""
    return [
        placement.to_json(spec.resources),
        placement.to_json(spec.labels),
        spec.queue or "",
        placement.to_json(spec.prefer),
    ]
