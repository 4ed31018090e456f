"""Workers: registration, heartbeats, slots, warm keys, control requests and their queues.

A worker is the hash ``<ns>:worker:<name>`` (slots, queue, host, pid,
heartbeat, counters) in the set ``<ns>:workers``; its taken slots are the set
``<ns>:worker:<name>:tasks``, its own Celery queue the list ``<ns>.q.<name>``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from redis import Redis

from scheduler import placement
from scheduler.keys import Keys
from scheduler.settings import Settings
from scheduler.store.base import Batch, Repository
from scheduler.store.connection import translated
from scheduler.store.pending import PendingQueue
from scheduler.store.scripts import Scripts

CONTROL_TTL = 3600
"""Seconds a worker's control list outlives its last request (a gone worker leaves none)."""


@dataclass(frozen=True, slots=True)
class WorkerSummary:
    """A registered worker as stored, with the figures every view derives from it.

    Attributes:
        name: The worker's name (``celery -n``).
        slots: Its slots now (0 while it drains).
        queue: Its own Celery queue.
        host: Its host name.
        pid: Its main process id.
        heartbeat: Redis time of its last heartbeat.
        started_at: Redis time it registered.
        inflight: Tasks dispatched to it and not finished (its taken slots).
        succeeded: Tasks it finished as succeeded.
        failed: Tasks it finished as failed.
        resources: Capacity of each resource it declared (``--resources``).
        labels: Its labels (``--label``).
        queues: The Celery queues it consumes (``-Q``), besides its own.
        task_names: The task names it registered (celery.* built-ins left out);
            None for a worker registered before placement existed (it serves any).
    """

    name: str
    slots: int
    queue: str
    host: str
    pid: int
    heartbeat: float
    started_at: float
    inflight: int
    succeeded: int
    failed: int
    resources: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    task_names: frozenset[str] | None = None
    queues: tuple[str, ...] = ()

    @property
    def busy(self) -> int:
        """Slots taken, at most its slots (a draining worker's tasks count up to them)."""
        return min(self.inflight, self.slots)

    @property
    def free(self) -> int:
        """Slots a new task could take now."""
        return max(0, self.slots - self.inflight)

    @property
    def utilization(self) -> float:
        """The share of its slots taken, in [0, 1] (0 without slots)."""
        return min(1.0, self.busy / self.slots) if self.slots else 0.0

    def heartbeat_age(self, now: float) -> float:
        """Seconds since its last heartbeat at Redis time ``now`` (never negative)."""
        return max(0.0, now - self.heartbeat)


@dataclass(frozen=True, slots=True)
class RunningTask:
    """A task a worker has started and not finished."""

    id: str
    name: str
    worker: str
    started_at: float
    duration_key: str
    expected_duration: float | None


@dataclass(frozen=True, slots=True)
class StoredWorker:
    """A registered worker's hash as stored, and the tasks its slots hold."""

    name: str
    fields: dict[str, str]
    tasks: list[str]


class Workers(Repository):
    """The workers of one namespace.

    Args:
        pending: The pending queue, where a worker's unfinished tasks return.
    """

    def __init__(
        self, client: Redis, keys: Keys, settings: Settings, scripts: Scripts, pending: PendingQueue
    ) -> None:
        super().__init__(client, keys, settings, scripts)
        self._pending = pending

    @translated
    def register(
        self,
        name: str,
        slots: int,
        host: str,
        pid: int,
        task_names: Sequence[str],
        resources: dict[str, float] | None = None,
        labels: dict[str, str] | None = None,
        queues: Sequence[str] = (),
    ) -> None:
        """Register a worker with what it offers (capacities, labels, the Celery queues it
        consumes, the task names it serves); tasks left by an earlier life of the same
        name return to pending."""
        self._pending.requeue(name)
        k = self._keys
        keys = [k.workers, k.worker(name), k.task_names, k.inbox]
        args: list[object] = [name, slots, k.worker_queue(name), host, pid]
        args += [placement.to_json(resources), placement.to_json(labels)]
        args += [json.dumps(sorted(set(queues))) if queues else "", *task_names]
        self._scripts("register", keys, args)

    @translated
    def heartbeat(self, name: str) -> bool:
        """Refresh a heartbeat; False when the worker was declared dead meanwhile."""
        return bool(self._scripts("heartbeat", [self._keys.worker(name)], []))

    @translated
    def close(self, name: str) -> bool:
        """Give a draining worker no more work: its slot count drops to 0. False if unknown."""
        return bool(self._scripts("drain", [self._keys.worker(name), self._keys.inbox], [name]))

    def deregister(self, name: str) -> int:
        """Forget a worker; its unfinished tasks return to pending. Returns how many."""
        return self._pending.requeue(name, forget=True)

    @translated
    def load(self) -> list[WorkerSummary]:
        """Every registered worker with its live slot count, by name."""
        k = self._keys
        return [
            WorkerSummary(
                name=name,
                slots=int(raw.get("slots", 0)),
                queue=raw.get("queue", k.worker_queue(name)),
                host=raw.get("host", ""),
                pid=int(raw.get("pid", 0)),
                heartbeat=float(raw.get("heartbeat", 0.0)),
                started_at=float(raw.get("started_at", 0.0)),
                inflight=int(inflight),
                succeeded=int(raw.get("succeeded", 0)),
                failed=int(raw.get("failed", 0)),
                resources={
                    k: float(v) for k, v in placement.from_json(raw.get("resources")).items()
                },
                labels={k: str(v) for k, v in placement.from_json(raw.get("labels")).items()},
                task_names=(
                    frozenset(json.loads(raw["task_names"])) if "task_names" in raw else None
                ),
                queues=tuple(json.loads(raw["queues"])) if raw.get("queues") else (),
            )
            for name, raw, inflight in self._each("scard")
        ]

    @translated
    def stored(self) -> list[StoredWorker]:
        """Every registered worker's hash as stored (for the dashboard's explorer, which
        shows whatever it holds) and its held tasks."""
        return [StoredWorker(name, raw, sorted(held)) for name, raw, held in self._each("smembers")]

    def _each(self, held: Literal["scard", "smembers"]) -> list[tuple[str, dict[str, str], Any]]:
        """(name, hash, ``held`` command's reply on its slot set) of every registered worker
        that has a hash, by name, in one round trip after the names."""
        k = self._keys
        names = sorted(cast(set[str], self._client.smembers(k.workers)))
        with self._client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(k.worker(name))
                getattr(pipe, held)(k.worker_tasks(name))
            replies = pipe.execute()
        return [
            (name, replies[2 * i], replies[2 * i + 1])
            for i, name in enumerate(names)
            if replies[2 * i]
        ]

    @translated
    def held(self, workers: Sequence[str]) -> dict[str, dict[str, float]]:
        """The resources the tasks in each of ``workers``' slots hold now (the sum of their
        ``resources``), in two round trips; a worker holding none maps to {}."""
        k = self._keys
        with self._client.pipeline(transaction=False) as pipe:
            for name in workers:
                pipe.smembers(k.worker_tasks(name))
            members = [sorted(m) for m in pipe.execute()]
        with self._client.pipeline(transaction=False) as pipe:
            for ids in members:
                for task_id in ids:
                    pipe.hget(k.task(task_id), "resources")
            texts = iter(pipe.execute())
        out: dict[str, dict[str, float]] = {}
        for name, ids in zip(workers, members, strict=True):
            total: dict[str, float] = {}
            for _ in ids:
                for res, amount in placement.from_json(next(texts)).items():
                    total[res] = total.get(res, 0.0) + float(amount)
            out[name] = total
        return out

    @translated
    def task_names(self) -> set[str]:
        """Task names the workers that have started said they serve."""
        return cast(set[str], self._client.smembers(self._keys.task_names))

    @translated
    def running(self, workers: Sequence[str]) -> list[RunningTask]:
        """Every task in the ``running`` state on ``workers``, with when it started."""
        k = self._keys
        with self._client.pipeline(transaction=False) as pipe:
            for name in workers:
                pipe.smembers(k.worker_tasks(name))
            ids = [task_id for members in pipe.execute() for task_id in sorted(members)]
        if not ids:
            return []
        fields = ["state", "name", "worker", "started_at", "duration_key", "expected_duration"]
        with self._client.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hmget(k.task(task_id), fields)
            rows = pipe.execute()
        return [
            RunningTask(
                id=task_id,
                name=row[1] or "",
                worker=row[2] or "",
                started_at=float(row[3]),
                duration_key=row[4] or row[1] or "",
                expected_duration=float(row[5]) if row[5] else None,
            )
            for task_id, row in zip(ids, rows, strict=True)
            if row[0] == "running" and row[3]
        ]

    @translated
    def touch_warm(self, worker: str, affinity_key: str) -> bool:
        """Mark ``affinity_key`` as just used on ``worker``; True if it was already warm."""
        keys = [self._keys.worker_warm(worker)]
        return bool(self._scripts("warm", keys, [affinity_key, self._settings.warm_capacity]))

    @translated
    def set_orphan_policies(
        self, policies: dict[str, str], *, pipeline: Batch | None = None
    ) -> None:
        """Record each task type's orphan policy (``requeue`` or ``fail``)."""
        fail = [name for name, policy in policies.items() if policy == "fail"]
        keep = [name for name, policy in policies.items() if policy != "fail"]
        with self._writes(pipeline, transaction=True) as pipe:
            if fail:
                pipe.hset(self._keys.orphan_policy, mapping=dict.fromkeys(fail, "fail"))
            if keep:
                pipe.hdel(self._keys.orphan_policy, *keep)

    @translated
    def push(self, messages: Sequence[tuple[str, str]]) -> None:
        """Push (worker queue, message) pairs, in order, in one round trip (the publisher's
        prepared Celery messages; ``push.lua``, which may run over Redis's ``maxmemory``:
        the tasks are claimed already)."""
        if messages:
            self._scripts("push", [q for q, _ in messages], [m for _, m in messages])

    @translated
    def request_terminate(
        self, worker: str, task_id: str, attempt: int, signal: str, *, pipeline: Batch | None = None
    ) -> None:
        """Ask ``worker``'s main process to kill its run of ``task_id`` (attempt ``attempt``)."""
        entry = {"terminate": task_id, "attempt": attempt, "signal": signal}
        key = self._keys.worker_control(worker)
        with self._writes(pipeline) as pipe:
            pipe.rpush(key, json.dumps(entry))
            pipe.expire(key, CONTROL_TTL)

    @translated
    def next_control(self, worker: str, block: float) -> dict[str, Any] | None:
        """The next request to ``worker``'s main process, waiting up to ``block`` seconds."""
        got = cast(
            tuple[str, str] | None,
            self._client.blpop([self._keys.worker_control(worker)], max(block, 0.01)),
        )
        return None if got is None else cast(dict[str, Any], json.loads(got[1]))
