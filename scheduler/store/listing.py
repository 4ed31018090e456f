"""Tasks by state, a page at a time, from the indexes the store already keeps.

No index of its own: ``pending`` pages through the pending set (by submission
sequence), ``dispatched`` and ``running`` through the workers' slot sets (by
id), and the terminal states through the events stream (newest first). The
cursor is opaque to callers; it is the sequence, id or stream entry id to
continue after.
"""

from __future__ import annotations

import re
from typing import Any, cast

from scheduler.errors import InvalidInputError
from scheduler.models import TaskRecord, TaskState
from scheduler.store.state import StateStore

_SCAN_CHUNK = 500
_SCAN_BUDGET = 20  # stream chunks read per page at most; the cursor resumes after them
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
_TASK_ID = re.compile(r"^[^\s]{1,200}$")


def list_tasks(
    store: StateStore, state: TaskState, limit: int, cursor: str | None = None
) -> tuple[list[TaskRecord], str | None]:
    """Up to ``limit`` tasks in ``state`` after ``cursor``; returns them and the next cursor
    (None when there are no more).

    Terminal tasks are listed from the events stream, so only those still in it
    (``YM_EVENTS_MAXLEN``) and whose record has not expired (``YM_RESULT_TTL``).

    Raises:
        InvalidInputError: ``cursor`` is not one this function returned.
    """
    if state == TaskState.PENDING:
        return _pending(store, limit, cursor)
    if state in (TaskState.DISPATCHED, TaskState.RUNNING):
        return _held(store, state, limit, cursor)
    return _finished(store, state, limit, cursor)


def _bad_cursor(cursor: str) -> InvalidInputError:
    return InvalidInputError("cursor", cursor, "a next_cursor returned by the previous page")


def _pending(
    store: StateStore, limit: int, cursor: str | None
) -> tuple[list[TaskRecord], str | None]:
    if cursor is not None and not cursor.isdigit():
        raise _bad_cursor(cursor)
    low = f"({cursor}" if cursor is not None else "-inf"
    rows = cast(
        list[tuple[str, float]],
        store.redis.zrangebyscore(
            store.keys.pending, low, "+inf", start=0, num=limit + 1, withscores=True
        ),
    )
    page = rows[:limit]
    records = _records(store, [task_id for task_id, _ in page], TaskState.PENDING)
    more = len(rows) > limit
    return records, (str(int(page[-1][1])) if more and page else None)


def _held(
    store: StateStore, state: TaskState, limit: int, cursor: str | None
) -> tuple[list[TaskRecord], str | None]:
    if cursor is not None and not _TASK_ID.match(cursor):
        raise _bad_cursor(cursor)
    workers = cast(set[str], store.redis.smembers(store.keys.workers))
    with store.redis.pipeline(transaction=False) as pipe:
        for name in sorted(workers):
            pipe.smembers(store.keys.worker_tasks(name))
        held = sorted({task_id for members in pipe.execute() for task_id in members})
    if cursor is not None:
        held = [task_id for task_id in held if task_id > cursor]
    records = _records(store, held, state)
    page = records[:limit]
    return page, (page[-1].id if len(records) > limit else None)


def _finished(
    store: StateStore, state: TaskState, limit: int, cursor: str | None
) -> tuple[list[TaskRecord], str | None]:
    if cursor is not None and not _STREAM_ID.match(cursor):
        raise _bad_cursor(cursor)
    high = f"({cursor}" if cursor is not None else "+"
    out: list[TaskRecord] = []
    for _ in range(_SCAN_BUDGET):
        entries = cast(
            list[tuple[str, dict[str, Any]]],
            store.redis.xrevrange(store.keys.events, max=high, min="-", count=_SCAN_CHUNK),
        )
        if not entries:
            return out, None
        matching = [(eid, f["id"]) for eid, f in entries if f.get("state") == state.value]
        records = store.records([task_id for _, task_id in matching])
        for (eid, _), rec in zip(matching, records, strict=True):
            if rec is None or rec.state != state:
                continue
            out.append(rec)
            if len(out) == limit:
                return out, eid
        high = f"({entries[-1][0]}"
        if len(entries) < _SCAN_CHUNK:
            return out, None
    return out, high[1:]


def _records(store: StateStore, ids: list[str], state: TaskState) -> list[TaskRecord]:
    return [rec for rec in store.records(ids) if rec is not None and rec.state == state]


def find_tasks(
    store: StateStore,
    state: TaskState,
    limit: int,
    cursor: str | None = None,
    *,
    name: str | None = None,
    worker: str | None = None,
    budget: int = _SCAN_BUDGET,
) -> tuple[list[TaskRecord], str | None]:
    """Like :func:`list_tasks`, keeping only tasks whose name and worker contain ``name``
    and ``worker`` (case-insensitive; None or empty matches all).

    Pages of :func:`list_tasks` are read, each no larger than what is still
    missing, so the cursor returned is always the one after the last task
    looked at; after ``budget`` pages the search stops and returns what it
    found with that cursor (fewer than ``limit`` tasks, and more may follow).
    """
    want_name = (name or "").lower()
    want_worker = (worker or "").lower()
    if not want_name and not want_worker:
        return list_tasks(store, state, limit, cursor)
    found: list[TaskRecord] = []
    for _ in range(budget):
        page, cursor = list_tasks(store, state, limit - len(found), cursor)
        found += [
            rec
            for rec in page
            if want_name in rec.name.lower() and want_worker in (rec.worker or "").lower()
        ]
        if cursor is None or len(found) == limit:
            break
    return found, cursor
