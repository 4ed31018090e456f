"""The pending queue: tasks waiting for a slot, their claim, and the ways back into it.

Pending tasks are indexed in ``<ns>:pending`` (scored by submission sequence)
and counted per priority; a retry waiting out its backoff sits in
``<ns>:delayed`` until :meth:`PendingQueue.promote` moves it back. A claim
takes a task out to a worker's slot; requeue and recovery bring tasks a
worker holds back in, and tell the dispatcher through its inbox.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.exceptions import RedisError

from scheduler import placement
from scheduler.models import PendingTask, PlacedTask, interned
from scheduler.store.base import Repository
from scheduler.store.connection import translate, translated


@dataclass(frozen=True, slots=True)
class Claim:
    """Outcome of claiming one decision.

    Attributes:
        task_id: The task.
        status: ``ok``, ``gone`` (no longer pending), ``full`` (worker has no
            free slot), ``noworker`` (worker not registered) or ``limited`` (its
            concurrency key is at its cap) or ``short`` (the worker lacks a resource it needs).
        name: Celery task name (when ok).
        args: JSON text of positional arguments (when ok).
        kwargs: JSON text of keyword arguments (when ok).
        attempt: Attempt number this dispatch starts (when ok).
        options: JSON text of the submission's retry policy and time limits ('' if none).
        at: Redis time of the claim, in seconds (when ok): the message's dispatch time.
    """

    task_id: str
    status: str
    name: str = ""
    args: str = "[]"
    kwargs: str = "{}"
    attempt: int = 0
    options: str = ""
    at: float = 0.0


_LOADED = ["name", "priority", "seq", "submitted_at", "deadline", "expected_duration"]
_LOADED += ["affinity_key", "duration_key", "state", "concurrency_key", "max_concurrent"]
_LOADED += ["resources", "labels", "on_queue", "prefer", "path", "latest"]


class PendingQueue(Repository):
    """The pending index, the delayed set, and the moves between them and the workers."""

    @translated
    def claim(self, pairs: Sequence[tuple[str, str]], token: str = "") -> list[Claim]:
        """Claim (task id, worker) pairs atomically (``claim.lua``).

        Raises:
            NotLeaderError: ``token`` is given and no longer holds the dispatcher lease.
        """
        k = self._keys
        keys = [k.pending, k.stats, k.pending_by_priority, k.leader]
        args: list[Any] = [token, k.concurrency_prefix]
        for task_id, worker in pairs:
            keys += [k.task(task_id), k.worker(worker), k.worker_tasks(worker)]
            args += [task_id, worker]
        out: list[Claim] = []
        for row in self._scripts("claim", keys, args):
            if row[1] == "ok":
                options = str(row[6])
                at = float(row[7])
                out.append(Claim(row[0], "ok", row[2], row[3], row[4], int(row[5]), options, at))
            else:
                out.append(Claim(row[0], row[1]))
        return out

    @translated
    def requeue(self, worker: str, ids: Sequence[str] = (), *, forget: bool = False) -> int:
        """Return a worker's unfinished tasks (or just ``ids``) to pending (``requeue.lua``).

        A task that had started, of a type whose orphan policy is ``fail``
        (see :meth:`Workers.set_orphan_policies
        <scheduler.store.workers.Workers.set_orphan_policies>`), ends as failed
        instead. With ``forget``, the worker is deregistered too. Returns how
        many tasks left the worker either way.
        """
        k, s = self._keys, self._settings
        keys = [k.worker_tasks(worker), k.pending, k.pending_by_priority, k.inbox, k.workers]
        keys += [k.worker(worker), k.worker_warm(worker), k.orphan_policy, k.stats, k.events]
        keys += [k.worker_queue(worker), k.dependents("")]
        mode = "forget" if forget else "keep"
        args: list[Any] = [mode, k.task_prefix, s.result_ttl, s.events_maxlen]
        args += [k.concurrency_prefix, *ids]
        return int(self._scripts("requeue", keys, args))

    @translated
    def recover_unstarted(self, workers: Sequence[str], timeout: float) -> list[str]:
        """Return to pending the tasks dispatched to ``workers`` over ``timeout`` s ago,
        unstarted (``recover.lua``)."""
        if not workers:
            return []
        k = self._keys
        keys = [k.pending, k.pending_by_priority, k.inbox, k.stats]
        keys += [k.worker_tasks(name) for name in workers]
        args: list[Any] = [timeout, k.task_prefix, k.concurrency_prefix, *workers]
        return [str(i) for i in self._scripts("recover", keys, args)]

    @translated
    def promote(self, limit: int = 10_000) -> tuple[int, float | None]:
        """Move due retries to pending (the dispatcher hears of them through its inbox).

        Returns how many moved and the next not-before time still waiting (None: none).
        """
        k = self._keys
        moved, nxt = self._scripts(
            "promote", [k.delayed, k.pending, k.inbox], [k.task_prefix, limit]
        )
        return int(moved), (float(nxt) if nxt not in ("", None) else None)

    @translated
    def delayed_count(self) -> int:
        """Tasks waiting out a retry backoff."""
        return int(self._client.zcard(self._keys.delayed))

    @translated
    def counts(self) -> dict[int, int]:
        """Pending tasks per priority."""
        raw = cast(dict[str, str], self._client.hgetall(self._keys.pending_by_priority))
        return {int(p): int(n) for p, n in raw.items() if int(n) > 0}

    @translated
    def census(self) -> tuple[int, int, int]:
        """(pending tasks, inbox entries, hand-off entries), read at one instant."""
        k = self._keys
        pending, inbox, handoff = self._scripts("census", [k.pending, k.inbox, k.handoff], [])
        return int(pending), int(inbox), int(handoff)

    def load(self, chunk: int = 2000) -> Iterator[PendingTask]:
        """Every pending task, in submission order (read when a dispatcher takes over).

        Raises (while iterating):
            StoreError: Redis failed a read.
        """
        start = 0
        while True:
            try:
                ids, rows = self._load_chunk(start, chunk)
            except RedisError as exc:
                raise translate(exc, self._client) from exc
            if not ids:
                return
            for task_id, row in zip(ids, rows, strict=True):
                if row[8] != "pending":
                    continue
                task = PendingTask(
                    id=task_id,
                    name=sys.intern(row[0]),
                    priority=int(row[1]),
                    seq=int(row[2]),
                    submitted_at=float(row[3]),
                    # A workflow task's propagated deadline, else its own (_pending_wire.lua)
                    deadline=_float_or_none(row[16] or row[4]),
                    expected_duration=_float_or_none(row[5]),
                    affinity_key=interned(row[6]),
                    duration_key=interned(row[7]),
                    concurrency_key=interned(row[9]),
                    max_concurrent=None if row[10] is None else int(row[10]),
                    path=float(row[15]) if row[15] else 0.0,
                )
                if row[11] or row[12] or row[13] or row[14]:
                    res, lab = placement.from_json(row[11]), placement.from_json(row[12])
                    task = PlacedTask.placed(task, res, lab, row[13], placement.from_json(row[14]))
                yield task
            start += chunk

    def _load_chunk(self, start: int, chunk: int) -> tuple[list[str], list[Any]]:
        ids = cast(list[str], self._client.zrange(self._keys.pending, start, start + chunk - 1))
        if not ids:
            return [], []
        with self._client.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hmget(self._keys.task(task_id), _LOADED)
            return ids, pipe.execute()


def _float_or_none(value: str | None) -> float | None:
    return None if value in (None, "") else float(value)
