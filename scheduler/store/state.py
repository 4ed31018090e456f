"""StateStore: every read and write of yardmaster state in Redis.

Writers that must be atomic are Lua scripts (``lua/``); the rest are plain
commands, batched in pipelines where a caller handles many tasks at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis import Redis

from scheduler.keys import Keys
from scheduler.models import ActiveStrategy, PendingTask, StrategyVersion, TaskRecord, TaskSpec
from scheduler.settings import Settings
from scheduler.store.lock import Lock
from scheduler.store.scripts import Scripts


def connect(url: str, *, timeout: float | None = None) -> Redis:
    """A Redis client for ``url`` that decodes replies to ``str``.

    Args:
        url: ``redis://`` or ``rediss://`` URL.
        timeout: Seconds to wait for a connection or a reply (None: no limit, for
            the processes that block on purpose, such as the dispatcher's inbox).
    """
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_keepalive=True,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
    )


@dataclass(frozen=True, slots=True)
class Claim:
    """Outcome of claiming one decision.

    Attributes:
        task_id: The task.
        status: ``ok``, ``gone`` (no longer pending), ``full`` (worker has no
            free slot) or ``noworker`` (worker not registered).
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


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A registered worker as stored in Redis."""

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


class StateStore:
    """Typed access to yardmaster's keys for one namespace.

    Args:
        client: A Redis client created with ``decode_responses=True``.
        settings: Cluster settings (namespace, TTLs, learning rates).
    """

    def __init__(self, client: Redis, settings: Settings) -> None:
        self.redis = client
        self.settings = settings
        self.keys = Keys(settings.namespace)
        self._lua = Scripts(client)

    @property
    def scripts(self) -> Scripts:
        """The Lua scripts, loaded for this store's client."""
        return self._lua

    # -- submission ------------------------------------------------------------
    def submit(self, ids: Sequence[str], specs: Sequence[TaskSpec]) -> list[int | str]:
        """Accept tasks atomically per chunk.

        Returns, per task, its sequence number (0 = duplicate id), or for a task
        answered without a new run: ``idem:<id>``, ``coalesced:<id>`` or ``cached``.
        """
        k, s = self.keys, self.settings
        out: list[int | str] = []
        chunk = s.submit_chunk
        head = [k.seq, k.pending, k.inbox, k.stats, k.pending_by_priority]
        head += [k.cache_stats, k.cache_index]
        with self.redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(ids), chunk):
                part = range(start, min(start + chunk, len(ids)))
                args: list[Any] = [s.result_ttl, s.idempotency_window, k.task_prefix]
                for i in part:
                    spec = specs[i]
                    a, kw = spec.encoded_args()
                    args += [ids[i], spec.name, a, kw, spec.priority, _opt(spec.deadline)]
                    args += [_opt(spec.expected_duration), spec.affinity_key or ""]
                    args += [spec.duration_key or "", spec.encoded_options()]
                    args.append(spec.concurrency_key or "")
                    args.append("" if spec.max_concurrent is None else spec.max_concurrent)
                    args.append(k.idempotency(spec.idempotency_key) if spec.idempotency_key else "")
                    digest = spec.call_digest() if spec.deduplicated else ""
                    args.append(k.inflight(digest) if digest else "")
                    if spec.cache_ttl is not None:
                        args += [k.cache_entry(digest), int(spec.cache_ttl * 1000)]
                    else:
                        args += ["", ""]
                self._lua("submit", head + [k.task(ids[i]) for i in part], args, client=pipe)
            for reply in pipe.execute():
                out.extend(r if isinstance(r, str) else int(r) for r in reply)
        return out

    # -- dispatcher ------------------------------------------------------------
    def next_inbox(self, block: float, limit: int) -> list[dict[str, Any]]:
        """Take up to ``limit`` inbox entries, waiting up to ``block`` seconds for one."""
        if block > 0:
            got = cast(tuple[str, str] | None, self.redis.blpop([self.keys.inbox], block))
            if got is None:
                return []
            rest = cast(list[str] | None, self.redis.lpop(self.keys.inbox, limit - 1))
            raw = [got[1], *(rest or [])]
        else:
            raw = cast(list[str] | None, self.redis.lpop(self.keys.inbox, limit)) or []
        return [json.loads(entry) for entry in raw]

    def claim(self, pairs: Sequence[tuple[str, str]], token: str = "") -> list[Claim]:
        """Claim (task id, worker) pairs atomically; the lease token fences stale leaders."""
        k = self.keys
        keys = [k.pending, k.stats, k.pending_by_priority, k.leader]
        args: list[Any] = [token, k.concurrency_prefix]
        for task_id, worker in pairs:
            keys += [k.task(task_id), k.worker(worker), k.worker_tasks(worker)]
            args += [task_id, worker]
        out: list[Claim] = []
        for row in self._lua("claim", keys, args):
            if row[1] == "ok":
                options = str(row[6])
                at = float(row[7])
                out.append(Claim(row[0], "ok", row[2], row[3], row[4], int(row[5]), options, at))
            else:
                out.append(Claim(row[0], row[1]))
        return out

    def handoff_fill(self, token: str, entries: Sequence[tuple[str, bool, str]]) -> int:
        """Append (task id, wake flag, message template) to the hand-off list; fenced by the lease.

        Returns the list's length before the append.
        """
        args = [token, *(f"{i}\t{'1' if wake else '0'}{t}" for i, wake, t in entries)]
        return int(self._lua("handoff_fill", [self.keys.leader, self.keys.handoff], args))

    def handoff_length(self) -> int:
        """Entries still waiting in the hand-off list."""
        return int(self.redis.llen(self.keys.handoff))

    def handoff_reclaim(self, token: str = "") -> list[str]:
        """Empty the hand-off list; returns the ids no worker had taken yet.

        With ``token``, only while that lease is held (a deposed dispatcher must
        not take back the list its successor filled).
        """
        keys = [self.keys.handoff, self.keys.leader]
        return [str(i) for i in self._lua("handoff_reclaim", keys, [token])]

    def pending_census(self) -> tuple[int, int, int]:
        """(pending tasks, inbox entries, hand-off entries), read at one instant."""
        k = self.keys
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zcard(k.pending)
            pipe.llen(k.inbox)
            pipe.llen(k.handoff)
            pending, inbox, handoff = pipe.execute()
        return int(pending), int(inbox), int(handoff)

    def recover_unstarted(self, workers: Sequence[str], timeout: float) -> list[str]:
        """Return to pending the tasks dispatched to ``workers`` over ``timeout`` s ago, unstarted."""
        if not workers:
            return []
        k = self.keys
        keys = [k.pending, k.pending_by_priority, k.inbox, k.stats]
        keys += [k.worker_tasks(name) for name in workers]
        args: list[Any] = [timeout, k.task_prefix, k.concurrency_prefix, *workers]
        return [str(i) for i in self._lua("recover", keys, args)]

    def payloads(self, ids: Sequence[str]) -> list[tuple[str, str, str, str]]:
        """(state, name, args JSON, kwargs JSON) of each task, in one round trip."""
        return [row[:4] for row in self.payloads_with_options(ids)]

    def payloads_with_options(self, ids: Sequence[str]) -> list[tuple[str, str, str, str, str]]:
        """(state, name, args JSON, kwargs JSON, options JSON or '') of each task."""
        fields = ["state", "name", "args", "kwargs", "opts"]
        with self.redis.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hmget(self.keys.task(task_id), fields)
            rows = pipe.execute()
        return [
            (r[0] or "missing", r[1] or "", r[2] or "[]", r[3] or "{}", r[4] or "") for r in rows
        ]

    def requeue(self, worker: str, ids: Sequence[str] = (), *, forget: bool = False) -> int:
        """Return a worker's unfinished tasks (or just ``ids``) to pending.

        A task that had started, of a type whose orphan policy is ``fail``
        (see :meth:`set_orphan_policies`), ends as failed instead. Returns how
        many tasks left the worker either way.
        """
        k, s = self.keys, self.settings
        keys = [k.worker_tasks(worker), k.pending, k.pending_by_priority, k.inbox, k.workers]
        keys += [k.worker(worker), k.worker_warm(worker), k.orphan_policy, k.stats, k.events]
        keys.append(k.worker_queue(worker))
        mode = "forget" if forget else "keep"
        args: list[Any] = [mode, k.task_prefix, s.result_ttl, s.events_maxlen]
        args += [k.concurrency_prefix, *ids]
        return int(self._lua("requeue", keys, args))

    def set_orphan_policies(self, policies: dict[str, str]) -> None:
        """Record each task type's orphan policy (``requeue`` or ``fail``)."""
        fail = [name for name, policy in policies.items() if policy == "fail"]
        keep = [name for name, policy in policies.items() if policy != "fail"]
        with self.redis.pipeline(transaction=True) as pipe:
            if fail:
                pipe.hset(self.keys.orphan_policy, mapping=dict.fromkeys(fail, "fail"))
            if keep:
                pipe.hdel(self.keys.orphan_policy, *keep)
            pipe.execute()

    def load_pending(self, chunk: int = 2000) -> Iterator[PendingTask]:
        """Every pending task, in submission order (used when a dispatcher takes over)."""
        fields = ["name", "priority", "seq", "submitted_at", "deadline", "expected_duration"]
        fields += ["affinity_key", "duration_key", "state", "concurrency_key", "max_concurrent"]
        start = 0
        while True:
            ids = cast(list[str], self.redis.zrange(self.keys.pending, start, start + chunk - 1))
            if not ids:
                return
            with self.redis.pipeline(transaction=False) as pipe:
                for task_id in ids:
                    pipe.hmget(self.keys.task(task_id), fields)
                rows = pipe.execute()
            for task_id, row in zip(ids, rows, strict=True):
                if row[8] != "pending":
                    continue
                yield PendingTask(
                    id=task_id,
                    name=row[0],
                    priority=int(row[1]),
                    seq=int(row[2]),
                    submitted_at=float(row[3]),
                    deadline=_float_or_none(row[4]),
                    expected_duration=_float_or_none(row[5]),
                    affinity_key=row[6],
                    duration_key=row[7],
                    concurrency_key=row[9],
                    max_concurrent=None if row[10] is None else int(row[10]),
                )
            start += chunk

    def load_workers(self) -> list[WorkerRecord]:
        """Every registered worker with its live slot count."""
        names = sorted(cast(set[str], self.redis.smembers(self.keys.workers)))
        with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self.keys.worker(name))
                pipe.scard(self.keys.worker_tasks(name))
            replies = pipe.execute()
        out: list[WorkerRecord] = []
        for i, name in enumerate(names):
            raw, inflight = replies[2 * i], replies[2 * i + 1]
            if not raw:
                continue
            out.append(
                WorkerRecord(
                    name=name,
                    slots=int(raw.get("slots", 0)),
                    queue=raw.get("queue", self.keys.worker_queue(name)),
                    host=raw.get("host", ""),
                    pid=int(raw.get("pid", 0)),
                    heartbeat=float(raw.get("heartbeat", 0.0)),
                    started_at=float(raw.get("started_at", 0.0)),
                    inflight=int(inflight),
                    succeeded=int(raw.get("succeeded", 0)),
                    failed=int(raw.get("failed", 0)),
                )
            )
        return out

    def rate_limits(self) -> dict[str, float]:
        """Global rate limits: task name -> tasks per second."""
        raw = cast(dict[str, str], self.redis.hgetall(self.keys.rate_limits))
        return {name: float(rate) for name, rate in raw.items()}

    def set_rate_limit(self, name: str, per_second: float | None) -> None:
        """Set (or with None remove) the global rate limit of a task name; wakes the dispatcher."""
        with self.redis.pipeline(transaction=True) as pipe:
            if per_second is None:
                pipe.hdel(self.keys.rate_limits, name)
            else:
                pipe.hset(self.keys.rate_limits, name, repr(float(per_second)))
            pipe.rpush(self.keys.inbox, json.dumps({"limits": name}))
            pipe.execute()

    def concurrency_counts(self, keys: Sequence[str]) -> dict[str, int]:
        """Tasks now dispatched or running per concurrency key, in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.scard(self.keys.concurrency(key))
            counts = pipe.execute()
        return {key: int(n) for key, n in zip(keys, counts, strict=True)}

    def server_time(self) -> float:
        """Redis server time in UNIX seconds: the one clock all components share."""
        seconds, micros = self.redis.time()
        return seconds + micros / 1e6

    def leader_lock(self, token: str, ttl: float | None = None) -> Lock:
        """The dispatcher lease as a :class:`Lock` owned by ``token``.

        Its value is the token, which the claim and hand-off scripts compare
        (fencing), so a dispatcher that lost the lease cannot claim.
        """
        return Lock(
            self.redis, self._lua, self.keys.leader, ttl or self.settings.dispatcher_lease, token
        )

    def take_lease(self, token: str, ttl: float) -> bool:
        """Take or renew the dispatcher lease."""
        return self.leader_lock(token, ttl).acquire()

    def release_lease(self, token: str) -> None:
        """Give the lease up if we hold it."""
        self.leader_lock(token).release()

    # -- workers ---------------------------------------------------------------
    def register_worker(
        self, name: str, slots: int, host: str, pid: int, task_names: Sequence[str]
    ) -> None:
        """Register a worker; tasks left by an earlier life of the same name return to pending."""
        self.requeue(name)
        k = self.keys
        keys = [k.workers, k.worker(name), k.task_names, k.inbox]
        self._lua("register", keys, [name, slots, k.worker_queue(name), host, pid, *task_names])

    def heartbeat(self, name: str) -> bool:
        """Refresh a heartbeat; False when the worker was declared dead meanwhile."""
        return bool(self._lua("heartbeat", [self.keys.worker(name)], []))

    def close_worker(self, name: str) -> bool:
        """Give a draining worker no more work: its slot count drops to 0. False if unknown."""
        return bool(self._lua("drain", [self.keys.worker(name), self.keys.inbox], [name]))

    def deregister_worker(self, name: str) -> int:
        """Forget a worker; its unfinished tasks return to pending. Returns how many."""
        return self.requeue(name, forget=True)

    def start(
        self, task_id: str, worker: str, attempt: int, nonce: str = ""
    ) -> tuple[bool, str, str]:
        """Mark a delivery as running. Returns (run?, duration key or state, affinity key).

        ``nonce`` names the delivery: a repeat of the same call runs, another
        delivery of the running attempt is skipped (see ``start.lua``).
        """
        call = self.start_call(task_id, worker, attempt, nonce)
        return start_verdict(self._lua("start", *call))

    def start_call(
        self,
        task_id: str,
        worker: str,
        attempt: int,
        nonce: str = "",
        guard: tuple[list[str], list[Any]] | None = None,
    ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of ``start.lua`` for one delivery.

        ``guard`` (from :meth:`Guard.start_args <scheduler.store.guard.Guard.start_args>`)
        makes the same call take the execution guard too.
        """
        keys = [self.keys.task(task_id), self.keys.stats]
        args: list[Any] = [worker, attempt, nonce]
        if guard is not None:
            keys += guard[0]
            args += guard[1]
        return keys, args

    def finish(
        self,
        task_id: str,
        worker: str,
        attempt: int,
        outcome: str,
        *,
        result: str = "null",
        error: str = "",
        runtime: float = 0.0,
        duration_key: str = "",
        affinity_key: str = "",
        reason: str = "",
        delay: float = 0.0,
    ) -> str:
        """Record a delivery's outcome (``succeeded``, ``failed``, ``cancelled``, ``retry``
        after ``delay`` seconds, or ``skipped``) once."""
        keys, args = self.finish_call(
            task_id,
            worker,
            attempt,
            outcome,
            result=result,
            error=error,
            runtime=runtime,
            duration_key=duration_key,
            affinity_key=affinity_key,
            reason=reason,
            delay=delay,
        )
        return str(self._lua("finish", keys, args))

    def finish_call(
        self,
        task_id: str,
        worker: str,
        attempt: int,
        outcome: str,
        *,
        result: str = "null",
        error: str = "",
        runtime: float = 0.0,
        duration_key: str = "",
        affinity_key: str = "",
        reason: str = "",
        delay: float = 0.0,
        nonce: str = "",
    ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of ``finish.lua`` for one delivery (see :meth:`finish`).

        ``nonce`` (a held start's): the outcome counts only if that start was
        recorded, and empty duration and affinity keys are read from the record.
        """
        k, s = self.keys, self.settings
        keys = [k.task(task_id), k.stats, k.worker(worker), k.worker_tasks(worker)]
        keys += [k.durations, k.duration_counts, k.affinity(affinity_key or "-")]
        keys += [k.events, k.inbox, k.handoff, k.pending, k.pending_by_priority]
        keys += [k.worker_queue(worker), k.delayed, k.outcomes]
        args: list[Any] = [task_id, worker, outcome, result, error, f"{runtime:.6f}"]
        args += [duration_key, s.ema_alpha, s.affinity_step, affinity_key, s.result_ttl]
        args += [s.events_maxlen, attempt, k.task_prefix, reason, f"{delay:.6f}"]
        args.append(k.concurrency_prefix)
        if nonce:
            args += [nonce, k.affinity_prefix]
        return keys, args

    def touch_warm(self, worker: str, affinity_key: str) -> bool:
        """Mark ``affinity_key`` as just used on ``worker``; True if it was already warm."""
        keys = [self.keys.worker_warm(worker)]
        return bool(self._lua("warm", keys, [affinity_key, self.settings.warm_capacity]))

    def append_ledger(self, name: str, entry: str, nonce: str) -> bool:
        """Append ``entry`` to ledger ``name`` once per ``nonce`` (see the ``ledger`` task)."""
        keys = [self.keys.ledger(name), self.keys.ledger_seen(name)]
        return bool(self._lua("ledger", keys, [entry, nonce]))

    def read_ledger(self, name: str, *, committed: bool = False) -> list[str]:
        """Every entry of the ledger list ``name``, oldest first: one per body run, or
        with ``committed`` the entries committed through the outbox (one per task)."""
        key = self.keys.ledger_committed(name) if committed else self.keys.ledger(name)
        return cast(list[str], self.redis.lrange(key, 0, -1))

    # -- clients ---------------------------------------------------------------
    def expire(self, task_id: str, reason: str) -> str:
        """End a pending task as expired; see ``expire.lua`` for the replies."""
        k = self.keys
        keys = [k.task(task_id), k.pending, k.stats, k.pending_by_priority, k.events]
        args = [task_id, reason, self.settings.result_ttl, self.settings.events_maxlen]
        return str(self._lua("expire", keys, args))

    def cancel(self, task_id: str, reason: str = "cancelled by request") -> str:
        """Cancel a task that has not started; see ``cancel.lua`` for the replies."""
        k = self.keys
        keys = [k.task(task_id), k.pending, k.stats, k.pending_by_priority, k.events, k.inbox]
        keys.append(k.delayed)
        args = [task_id, reason, self.settings.result_ttl, self.settings.events_maxlen]
        args.append(k.worker_queue(""))
        return str(self._lua("cancel", keys, args))

    def records(self, ids: Sequence[str]) -> list[TaskRecord | None]:
        """Task records for ``ids`` (None where no record exists), in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hgetall(self.keys.task(task_id))
            rows = pipe.execute()
        return [
            TaskRecord.from_hash(task_id, row) if row else None
            for task_id, row in zip(ids, rows, strict=True)
        ]

    def states(self, ids: Sequence[str]) -> list[str | None]:
        """The state of each task (None where no record exists), in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hget(self.keys.task(task_id), "state")
            return cast(list[str | None], pipe.execute())

    def outcome(self, task_id: str) -> tuple[str | None, str | None, str | None]:
        """(state, result JSON, error) of a task; state None when there is no record."""
        fields = ["state", "result", "error"]
        row = cast(list[str | None], self.redis.hmget(self.keys.task(task_id), fields))
        return row[0], row[1], row[2]

    def registered_task_names(self) -> set[str]:
        """Task names the workers that have started said they serve."""
        return cast(set[str], self.redis.smembers(self.keys.task_names))

    def counters(self) -> dict[str, int]:
        """Lifetime counters (submitted, dispatched, started, one per terminal state)."""
        raw = cast(dict[str, str], self.redis.hgetall(self.keys.stats))
        return {name: int(value) for name, value in raw.items()}

    def pending_counts(self) -> dict[int, int]:
        """Pending tasks per priority."""
        raw = cast(dict[str, str], self.redis.hgetall(self.keys.pending_by_priority))
        return {int(p): int(n) for p, n in raw.items() if int(n) > 0}

    def finished_since(self, since: float) -> int:
        """How many tasks reached a terminal state since ``since`` (UNIX seconds)."""
        start = f"{int(since * 1000)}-0"
        return len(cast(list[Any], self.redis.xrange(self.keys.events, min=start, max="+")))

    def affinity_scores(self, affinity_key: str) -> dict[str, float]:
        """Affinity score per worker for one affinity key."""
        raw = cast(dict[str, str], self.redis.hgetall(self.keys.affinity(affinity_key)))
        return {worker: float(score) for worker, score in raw.items()}

    def all_affinity(self, limit: int = 200_000) -> dict[tuple[str, str], float]:
        """Every (affinity key, worker) score, up to ``limit`` keys (a dispatcher taking over)."""
        prefix = self.keys.affinity_prefix
        names: list[str] = []
        for name in self.redis.scan_iter(match=prefix + "*", count=1000):
            names.append(cast(str, name))
            if len(names) >= limit:
                break
        out: dict[tuple[str, str], float] = {}
        for start in range(0, len(names), 1000):
            part = names[start : start + 1000]
            with self.redis.pipeline(transaction=False) as pipe:
                for name in part:
                    pipe.hgetall(name)
                replies = pipe.execute()
            for name, raw in zip(part, replies, strict=True):
                key = name[len(prefix) :]
                for worker, score in raw.items():
                    out[(key, worker)] = float(score)
        return out

    def running_since(self, workers: Sequence[str]) -> list[tuple[str, float]]:
        """(duration key, started at) of every running task without a hint on ``workers``."""
        with self.redis.pipeline(transaction=False) as pipe:
            for name in workers:
                pipe.smembers(self.keys.worker_tasks(name))
            ids = [task_id for members in pipe.execute() for task_id in members]
        if not ids:
            return []
        fields = ["state", "started_at", "duration_key", "name", "expected_duration"]
        with self.redis.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hmget(self.keys.task(task_id), fields)
            rows = pipe.execute()
        return [
            (row[2] or row[3], float(row[1]))
            for row in rows
            if row[0] == "running" and row[1] and not row[4]
        ]

    # -- strategy steering -----------------------------------------------------
    def steer(self, record: dict[str, Any], expected: int | None = None) -> tuple[int, bool]:
        """Store a new configuration version; returns (version, applied?).

        With ``expected``, it applies only if that is still the current version
        (otherwise it returns the current version and False).
        """
        k = self.keys
        body = json.dumps(record, separators=(",", ":"), sort_keys=True)
        reply = self._lua(
            "steer",
            [k.strategy, k.strategy_history, k.inbox],
            [body, "" if expected is None else expected],
        )
        return int(reply[0]), reply[1] == "ok"

    def strategy_config(self) -> StrategyVersion | None:
        """The latest configuration version, or None when never steered."""
        raw = cast(str | None, self.redis.hget(self.keys.strategy, "record"))
        return None if raw is None else StrategyVersion.from_json(raw)

    def strategy_history(self, limit: int = 0) -> list[StrategyVersion]:
        """Configuration versions, oldest first (the last ``limit`` when given)."""
        start = -limit if limit > 0 else 0
        raw = cast(list[str], self.redis.lrange(self.keys.strategy_history, start, -1))
        return [StrategyVersion.from_json(text) for text in raw]

    def set_active(self, strategy: str, version: int, token: str) -> None:
        """Record what the leading dispatcher now runs."""
        active = {"strategy": strategy, "version": version, "since": self.server_time()}
        active["dispatcher"] = token[:8]
        self.redis.hset(self.keys.strategy, "active", json.dumps(active))

    def active_strategy(self) -> ActiveStrategy | None:
        """What the leading dispatcher said it runs, or None before any did."""
        raw = cast(str | None, self.redis.hget(self.keys.strategy, "active"))
        if raw is None:
            return None
        data = json.loads(raw)
        return ActiveStrategy(
            str(data["strategy"]),
            int(data["version"]),
            float(data["since"]),
            str(data["dispatcher"]),
        )

    def record_switches(self, switches: Sequence[dict[str, Any]], keep: int = 1000) -> None:
        """Count and keep the adaptive strategy's switches (newest first)."""
        if not switches:
            return
        k = self.keys
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(k.stats, "strategy_switches", len(switches))
            pipe.lpush(k.strategy_switches, *(json.dumps(sw) for sw in switches))
            pipe.ltrim(k.strategy_switches, 0, keep - 1)
            pipe.execute()

    def recent_switches(self, limit: int = 20) -> list[dict[str, Any]]:
        """The adaptive strategy's latest switches, newest first."""
        raw = cast(list[str], self.redis.lrange(self.keys.strategy_switches, 0, limit - 1))
        return [json.loads(text) for text in raw]

    def durations(self) -> dict[str, float]:
        """Duration EMA per duration key."""
        raw = cast(dict[str, str], self.redis.hgetall(self.keys.durations))
        return {name: float(value) for name, value in raw.items()}


def start_verdict(reply: Any) -> tuple[bool, str, str]:
    """(run?, duration key or state, affinity key) from a ``start.lua`` reply."""
    if reply[0] == "run":
        return True, str(reply[1]), str(reply[2])
    return False, str(reply[1]), ""


def guard_answer(reply: Any) -> tuple[str, str]:
    """The execution guard's part of a ``start.lua`` reply that says run.

    ``("run", "")`` (taken, or not asked for), ``("done", outcome JSON)`` or
    ``("held", holder token)``.
    """
    if len(reply) > 3:
        return str(reply[3]), str(reply[4])
    return "run", ""


def _opt(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _float_or_none(value: str | None) -> float | None:
    return None if value in (None, "") else float(value)
