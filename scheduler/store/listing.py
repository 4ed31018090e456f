"""Tasks by state, a page at a time, from the indexes the store already keeps.

No index of its own: ``pending`` pages through the pending set (by submission
sequence), ``dispatched`` and ``running`` through the workers' slot sets (by
id), and the terminal states through the events stream (newest first). The
cursor is opaque to callers; it is the sequence, id or stream entry id to
continue after.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, cast

from redis import Redis

from scheduler.errors import InvalidInputError
from scheduler.keys import Keys
from scheduler.models import TaskRecord, TaskState

Records = Callable[[Sequence[str]], list[TaskRecord | None]]
"""Reads task records by id, in one round trip (:meth:`Tasks.records
<scheduler.store.tasks.Tasks.records>`)."""

_SCAN_CHUNK = 500
SCAN_BUDGET = 20  # stream chunks read per page at most; the cursor resumes after them
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
_TASK_ID = re.compile(r"^[^\s]{1,200}$")


class TaskPages:
    """Pages of tasks by state for one namespace.

    Args:
        client: The store's Redis client.
        keys: The namespace's key builder.
        records: Reads task records by id (the tasks repository's).
    """

    def __init__(self, client: Redis, keys: Keys, records: Records) -> None:
        self._client = client
        self._keys = keys
        self._records = records

    def page(
        self, state: TaskState, limit: int, cursor: str | None = None
    ) -> tuple[list[TaskRecord], str | None]:
        """Up to ``limit`` tasks in ``state`` after ``cursor``; returns them and the next
        cursor (None when there are no more).

        Terminal tasks are listed from the events stream, so only those still in it
        (``YM_EVENTS_MAXLEN``) and whose record has not expired (``YM_RESULT_TTL``).

        Raises:
            InvalidInputError: ``cursor`` is not one this method returned.
        """
        if state == TaskState.PENDING:
            return self._pending(limit, cursor)
        if state in (TaskState.DISPATCHED, TaskState.RUNNING):
            return self._held(state, limit, cursor)
        return self._finished(state, limit, cursor)

    def _pending(self, limit: int, cursor: str | None) -> tuple[list[TaskRecord], str | None]:
        if cursor is not None and not cursor.isdigit():
            raise _bad_cursor(cursor)
        low = f"({cursor}" if cursor is not None else "-inf"
        rows = cast(
            list[tuple[str, float]],
            self._client.zrangebyscore(
                self._keys.pending, low, "+inf", start=0, num=limit + 1, withscores=True
            ),
        )
        shown = rows[:limit]
        found = self._in_state([task_id for task_id, _ in shown], TaskState.PENDING)
        more = len(rows) > limit
        return found, (str(int(shown[-1][1])) if more and shown else None)

    def _held(
        self, state: TaskState, limit: int, cursor: str | None
    ) -> tuple[list[TaskRecord], str | None]:
        if cursor is not None and not _TASK_ID.match(cursor):
            raise _bad_cursor(cursor)
        workers = cast(set[str], self._client.smembers(self._keys.workers))
        with self._client.pipeline(transaction=False) as pipe:
            for name in sorted(workers):
                pipe.smembers(self._keys.worker_tasks(name))
            held = sorted({task_id for members in pipe.execute() for task_id in members})
        if cursor is not None:
            held = [task_id for task_id in held if task_id > cursor]
        found = self._in_state(held, state)
        shown = found[:limit]
        return shown, (shown[-1].id if len(found) > limit else None)

    def _finished(
        self, state: TaskState, limit: int, cursor: str | None
    ) -> tuple[list[TaskRecord], str | None]:
        if cursor is not None and not _STREAM_ID.match(cursor):
            raise _bad_cursor(cursor)
        high = f"({cursor}" if cursor is not None else "+"
        out: list[TaskRecord] = []
        for _ in range(SCAN_BUDGET):
            entries = cast(
                list[tuple[str, dict[str, Any]]],
                self._client.xrevrange(self._keys.events, max=high, min="-", count=_SCAN_CHUNK),
            )
            if not entries:
                return out, None
            matching = [(eid, f["id"]) for eid, f in entries if f.get("state") == state.value]
            found = self._records([task_id for _, task_id in matching])
            for (eid, _), rec in zip(matching, found, strict=True):
                if rec is None or rec.state != state:
                    continue
                out.append(rec)
                if len(out) == limit:
                    return out, eid
            high = f"({entries[-1][0]}"
            if len(entries) < _SCAN_CHUNK:
                return out, None
        return out, high[1:]

    def _in_state(self, ids: list[str], state: TaskState) -> list[TaskRecord]:
        return [rec for rec in self._records(ids) if rec is not None and rec.state == state]


def _bad_cursor(cursor: str) -> InvalidInputError:
    return InvalidInputError("cursor", cursor, "a next_cursor returned by the previous page")
