"""Raw reads for the dashboard's explorer: one task as stored, and the workers as stored.

:class:`~scheduler.models.TaskRecord` decodes the fields the scheduler acts
on; the explorer also shows what it does not: the arguments, the result,
progress (``progress_done``, ``progress_total``, ``progress_note``,
``progress_at``), the attempts that retries and requeues keep
(``attempt_<n>``, JSON), and whatever a worker's hash holds (``resources``,
``labels``). So these reads return the hashes as stored; the monitor decides
what to show. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from scheduler.store.state import StateStore

EVENT_SCAN = 10_000  # newest events searched for a task whose record has expired


@dataclass(frozen=True, slots=True)
class StoredTask:
    """A task as stored: its hash (empty once expired) and its terminal event, if found."""

    id: str
    fields: dict[str, str]
    event: dict[str, str] | None


def stored_task(store: StateStore, task_id: str) -> StoredTask | None:
    """The task's hash; its terminal event is looked up in the newest
    :data:`EVENT_SCAN` events only when the hash is gone (the record expired after
    ``YM_RESULT_TTL``, the event may still be in the stream). None when neither exists."""
    fields = cast(dict[str, str], store.redis.hgetall(store.keys.task(task_id)))
    if fields:
        return StoredTask(task_id, fields, None)
    entries = cast(
        list[tuple[str, dict[str, str]]],
        store.redis.xrevrange(store.keys.events, count=EVENT_SCAN),
    )
    for _, event in entries:
        if event.get("id") == task_id:
            return StoredTask(task_id, {}, event)
    return None


@dataclass(frozen=True, slots=True)
class StoredWorker:
    """A registered worker's hash as stored, and the tasks its slots hold."""

    name: str
    fields: dict[str, str]
    tasks: list[str]


def stored_workers(store: StateStore) -> list[StoredWorker]:
    """Every registered worker's hash and held tasks, in one round trip after the names."""
    names = sorted(cast(set[str], store.redis.smembers(store.keys.workers)))
    with store.redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(store.keys.worker(name))
            pipe.smembers(store.keys.worker_tasks(name))
        replies = pipe.execute()
    return [
        StoredWorker(name, replies[2 * i], sorted(replies[2 * i + 1]))
        for i, name in enumerate(names)
        if replies[2 * i]
    ]
