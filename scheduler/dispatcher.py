"""The dispatcher: fills every free worker slot with the strategy's choice.

(Over 400 lines: decisions and I/O still share this loop; issue #15's pure DispatchState
is the split that will shorten it.)

It holds a lease, so one dispatcher is active and any others stand by. The
active one mirrors the pending tasks in memory (in the strategy's order),
wakes on its Redis inbox (submissions, freed slots, cancels, worker changes)
instead of polling, claims each decision atomically in Redis, and only then
publishes the task to the chosen worker's own queue: late binding.

When every slot is taken, the dispatcher also keeps the hand-off list filled:
the next tasks in the strategy's order, still pending, each with its message
prepared. A worker that finishes binds the head of that list to its freed
slot inside the same Lua step that records its result, so a slot does not
stay idle while the dispatcher wakes up. The dispatcher takes the list back
whenever it would no longer be the strategy's order (a better task arrived, a
slot is free elsewhere, the strategy changed).

Live steering: a new strategy configuration version (``yardmaster strategy
set``) reaches the inbox; the dispatcher builds the new strategy, re-orders
every pending task under it and records what it now runs (``active``). A
version that cannot be built is logged and skipped; the running strategy stays.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from scheduler.adaptive import build_strategy
from scheduler.admission import Admission
from scheduler.errors import (
    NotLeaderError,
    RedisOutOfMemoryError,
    StoreError,
    YardmasterError,
)
from scheduler.gate import Gate, GatedQueue
from scheduler.logs import task_fields
from scheduler.models import Decision, Estimates, PendingTask, WorkerView
from scheduler.placement import Offer, never_reason
from scheduler.settings import load_settings
from scheduler.store import Store
from scheduler.strategies import Snapshot, Strategy, TaskQueue, plan
from scheduler.strategy_config import StrategyVersion

log = logging.getLogger("yardmaster.dispatcher")
_TICK = 0.1  # Redis's timer tick at its default hz (10): a blocked read's timeout granularity


@dataclass(frozen=True, slots=True)
class Dispatch:
    """A claimed task, ready to be published to one worker's queue."""

    task_id: str
    name: str
    args: str
    kwargs: str
    worker: str
    queue: str
    attempt: int
    options: str = ""
    at: float = 0.0  # Redis time of the claim; 0: unknown (the worker waits for its start)
    priority: int | None = None  # shown to the run as delivery_info['priority']


class Publisher(Protocol):
    """Sends claimed tasks to worker queues (Celery, in production)."""

    def publish(self, items: Sequence[Dispatch]) -> None:
        """Publish every item, in order; raise if any could not be sent."""

    def template(
        self,
        task_id: str,
        name: str,
        args: str,
        kwargs: str,
        options: str = "",
        priority: int | None = None,
    ) -> str:
        """A task's message with the worker left open, for the hand-off list."""


class Dispatcher:
    """Late-binding dispatch loop for one cluster.

    Args:
        store: The Redis state store.
        strategy: Orders tasks and places them.
        publisher: Sends claimed tasks to worker queues.
    """

    def __init__(self, store: Store, strategy: Strategy, publisher: Publisher) -> None:
        self.store = store
        self.settings = store.settings
        self.strategy = strategy
        self.publisher = publisher
        self.token = uuid.uuid4().hex
        self.lease = store.leases.lock(self.token)
        self.estimates = Estimates(default_duration=self.settings.default_duration)
        self.gate = Gate(self.settings.rate_burst)
        self.queue: GatedQueue = self._new_queue()
        self.workers: dict[str, WorkerView] = {}
        self.served: frozenset[str] | None = None  # task names every live worker serves
        self._held_due: set[str] = set()  # workers whose held resources are to be reread
        # Tasks no live worker could ever run (placement), by id, with the reason; they
        # wait here, out of the queue, until a fitting worker registers.
        self.parked: dict[str, tuple[PendingTask, str]] = {}
        self._offers_seen: object = None
        self.worker_queues: dict[str, str] = {}
        self.dispatched = 0
        self.expired = 0
        self.strategy_version = 0
        self._steer_due = False
        self.ready: dict[str, PendingTask] = {}
        self._templates: dict[str, str] = {}
        self._reclaim_due = False
        self._clock_offset = 0.0
        self._next_refresh = 0.0
        self._lease_renewed = 0.0
        self._stalled = False
        self._led_since = 0.0
        self.leader = False
        self.admission = Admission(store)
        self._full = False  # a Redis over maxmemory refused a step, and none passed since

    # -- the loop --------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set: stand by without the lease, dispatch with it."""
        try:
            while not stop.is_set():
                if not self.leader and not self._try_lead():
                    stop.wait(min(1.0, self.settings.dispatcher_lease / 10))
                    continue
                try:
                    self.step(block=0.5)
                except NotLeaderError:
                    log.warning("lost the dispatcher lease; standing by")
                    self.leader = False
                    self.ready = {}
                except StoreError as exc:
                    # Redis restarting, unreachable or full: back off, then take the
                    # lease again and rebuild the mirror from Redis.
                    if isinstance(exc, RedisOutOfMemoryError):
                        if not self._full:  # once per episode
                            log.warning("Redis is full (%s); retrying every second", exc)
                        self._full = True
                    else:
                        log.exception("Redis error in the dispatch loop; retrying in 1s")
                    self.leader = False
                    self.ready = {}
                    stop.wait(1.0)
                else:
                    if self._full:
                        log.warning("Redis accepts the dispatcher's writes again")
                    self._full = False
        finally:
            if self.leader:
                with contextlib.suppress(StoreError):
                    self.lease.release()
                self.leader = False

    def _try_lead(self) -> bool:
        try:
            if not self.lease.acquire():
                return False
            self.leader = True
            self._lease_renewed = self._led_since = time.monotonic()
            self.resync()
        except NotLeaderError:
            self.leader = False
            return False
        except RedisOutOfMemoryError as exc:
            if not self._full:  # once per episode
                log.warning("Redis is full (%s); taking the lead again every second", exc)
            self._full = True
            self.leader = False
            return False
        except StoreError as exc:
            log.warning("Redis is unreachable (%s); waiting for it", exc)
            self.leader = False
            return False
        log.info("dispatcher %s is the leader; %d tasks pending", self.token[:8], len(self.queue))
        return True

    def resync(self) -> None:
        """Rebuild the in-memory mirror from Redis (on taking the lease)."""
        self.store.handoff.reclaim(self.token)
        self.ready = {}
        self._templates = {}
        self.estimates.affinity = self.store.estimates.all_affinity()
        config = self.store.strategy.latest()
        if config is not None and config.version != self.strategy_version:
            self._build(config)
        self.gate = Gate(self.settings.rate_burst)  # a new leader's buckets start empty
        self.gate.set_rates(self.store.limits.rate_limits())
        self.queue = self._new_queue()
        self.parked = {}
        self._offers_seen = None  # reviewed again once the workers are read
        # a previous leader's marks are redone by the review (what fits may have changed)
        marked = list(self.store.tasks.unschedulable())
        states = self.store.tasks.states(marked)
        self.store.tasks.clear_unschedulable(
            [i for i, st in zip(marked, states, strict=True) if st == "pending"]
        )
        self.store.tasks.clear_unschedulable(
            [i for i, st in zip(marked, states, strict=True) if st != "pending"], records=False
        )
        self.admission.resync()
        for task in self.store.pending.load():
            if self.admission.admit(task):
                self.queue.add(task)
        self._say_active()
        self.refresh_workers()

    def _say_active(self) -> None:
        """Record what this dispatcher runs; over Redis's maxmemory that record waits for
        the next change (dispatching must not: it is what frees memory)."""
        try:
            self.store.strategy.set_active(self.strategy.name, self.strategy_version, self.token)
        except RedisOutOfMemoryError:
            log.warning("Redis is full: the active strategy is not recorded this time")

    def step(self, block: float = 0.0) -> int:
        """One round: read the inbox, refresh workers when due, dispatch. Returns tasks sent."""
        self._renew_lease()
        self.admission.step(self.now(), self.queue, self._reclaim)
        idle = not len(self.queue) or not any(w.free for w in self.workers.values())
        block = min(block, max(0.01, self.admission.wait(self.now())))
        wait = block if idle else self._stall_wait(block) if self._stalled else 0.0
        wake = self.strategy.wake_at()  # a task held for its home worker may run anywhere then
        if wake is not None and wait > 0.0:
            wait = min(wait, max(0.0, wake - self.now()))
        entries = self.store.inbox.take(wait, 10_000)
        refresh = self._apply(entries)
        if self._steer_due:
            self.steer()
        if refresh or time.monotonic() >= self._next_refresh:
            self.refresh_workers()
            self._check_mirror()
            # Celery `expires` of tasks still pending (workers/publishing.py)
            self.expired += self.store.tasks.expire_due()[0]
        if self._held_due:
            self._reload_held(sorted(self._held_due))
        free = any(w.free for w in self.workers.values())
        if self.ready and (self._reclaim_due or free):
            self._reclaim()
        sent = 0
        if self.queue.keys():
            self.gate.running = self.store.limits.concurrency_counts(self.queue.keys())
        while len(self.queue):
            snapshot = Snapshot(
                self.now(), list(self.workers.values()), self.estimates, self.served
            )
            plain = self.queue.plain()
            queue: TaskQueue = self.queue if plain is None else plain
            decisions = plan(self.strategy, queue, snapshot, self.settings.dispatch_batch)
            self._note_switches()
            placed = [d for d in decisions if d.expire is None]
            if len(placed) < len(decisions):
                self._expire([d for d in decisions if d.expire is not None])
            if not decisions:
                break
            if placed:
                sent += self._claim_and_publish(placed)
            self.queue.settle()
            if len(placed) < self.settings.dispatch_batch:
                break
        self.dispatched += sent
        self._stalled = (
            not sent and bool(len(self.queue)) and any(w.free for w in self.workers.values())
        )
        handoff = self.settings.handoff and self.strategy.handoff
        if handoff and self.queue.plain() is not None and len(self.queue):
            self._refill()
        return sent

    def now(self) -> float:
        """The cluster clock: Redis server time, as last calibrated."""
        return time.time() + self._clock_offset

    def steer(self) -> None:
        """Apply the latest strategy configuration version, if it is new."""
        self._steer_due = False
        config = self.store.strategy.latest()
        if config is None or config.version == self.strategy_version:
            return
        if not self._build(config):
            return
        if self.ready:
            self._reclaim()
        tasks = list(self.queue.tasks())
        self.queue = self._new_queue()
        for task in tasks:
            self.queue.add(task)
        self._say_active()
        log.info(
            "strategy version %d applied: %s %s (set by %s); %d pending tasks re-ordered",
            config.version,
            config.strategy,
            config.params or "",
            config.who,
            len(tasks),
        )

    def _build(self, config: StrategyVersion) -> bool:
        """Make ``config``'s strategy current (the queue is the caller's); False if it cannot be built."""
        try:
            values = {**self.settings.model_dump(), **config.params, "strategy": config.strategy}
            settings = load_settings({}, **values)
            strategy = build_strategy(config.strategy, settings)
        except YardmasterError as exc:
            log.error("strategy version %d cannot be applied: %s", config.version, exc)
            self.strategy_version = config.version
            return False
        self.strategy = strategy
        self.strategy_version = config.version
        return True

    # -- internals -------------------------------------------------------------
    def _new_queue(self) -> GatedQueue:
        return GatedQueue(
            self.strategy, lambda: self.strategy.make_queue(self.estimates), self.gate
        )

    def _stall_wait(self, block: float) -> float:
        """How long to wait for the inbox when every waiting task is held by a limit.

        A freed concurrency slot arrives through the inbox; a rate-limit token
        does not, so the wait ends when the next one is due. Redis times out a
        blocked read only on its server tick (100 ms at the default ``hz``), so
        a token due sooner than that is waited for here, and a later one with
        a blocked read that ends a tick early.
        """
        due = self.gate.next_token_in(self.queue.limited_names())
        if due is None or due >= block + _TICK:
            return block
        if due < 2 * _TICK:
            time.sleep(max(0.001, due))
            return 0.0
        return due - _TICK

    def _reload_limits(self) -> None:
        if self.gate.set_rates(self.store.limits.rate_limits()):
            if self.ready:
                self._reclaim()
            self.queue.regroup()
            log.info("global rate limits now %s", self.gate.rates or "none")

    def _renew_lease(self) -> None:
        if time.monotonic() - self._lease_renewed < self.settings.dispatcher_lease / 3:
            return
        if not self.lease.renew():  # a lapsed lease is re-taken only through a resync
            raise NotLeaderError
        self._lease_renewed = time.monotonic()

    def _apply(self, entries: list[dict[str, Any]]) -> bool:
        refresh = False
        for entry in entries:
            if "id" in entry:
                task = PendingTask.from_wire(entry)
                if not self.admission.admit(task):
                    continue
                if self._park([task]):
                    continue
                self.queue.add(task)
                if self.ready and not self._reclaim_due:
                    last = next(reversed(self.ready.values()))
                    self._reclaim_due = self.strategy.sort_key(task) < self.strategy.sort_key(last)
                    # a limited task is served by the dispatcher, not the hand-off list
                    self._reclaim_due |= self.queue.plain() is None
            elif "free" in entry:
                worker = self.workers.get(entry["free"])
                if worker is not None and worker.inflight > 0:
                    worker.inflight -= 1
                if "a" in entry:
                    self.estimates.affinity[(entry["a"], entry["free"])] = float(entry["s"])
                if "k" in entry:
                    self.estimates.durations[entry["k"]] = float(entry["e"])
            elif "held" in entry:  # a task that held resources left the worker
                self._held_due.add(entry["held"])
            elif "cancel" in entry:
                # A cancelled task still in the hand-off list keeps its place
                # there (workers skip it); the local copy stays aligned with it.
                self.queue.discard(entry["cancel"])
                self.admission.forget(entry["cancel"])
                if self.parked.pop(entry["cancel"], None) is not None:
                    self.store.tasks.clear_unschedulable([entry["cancel"]], records=False)
            elif "delayed" in entry:
                self.admission.note_delayed(float(entry["at"]))
            elif "worker" in entry:
                refresh = True
            elif "steer" in entry:
                self._steer_due = True
            elif "limits" in entry:
                self._reload_limits()
        return refresh

    def refresh_workers(self) -> None:
        """Reload workers and their taken slots; declare silent workers dead."""
        before = time.time()
        server_now = self.store.server_time()
        self._clock_offset = server_now - (before + time.time()) / 2
        live: dict[str, WorkerView] = {}
        # Heartbeats stop while Redis is down, and a new leader has not watched
        # them yet: a worker is declared dead only by a leader that has led (and
        # so reached Redis) for a whole timeout, never right after an outage.
        watched = time.monotonic() - self._led_since >= self.settings.worker_timeout
        for rec in self.store.workers.load():
            if watched and server_now - rec.heartbeat > self.settings.worker_timeout:
                returned = self.store.workers.deregister(rec.name)
                log.warning(
                    "worker %s silent for %.1fs: declared dead, %d tasks back to pending",
                    rec.name,
                    server_now - rec.heartbeat,
                    returned,
                )
                continue
            live[rec.name] = WorkerView(
                rec.name,
                rec.slots,
                rec.inflight,
                rec.succeeded,
                rec.failed,
                rec.resources or None,
                dict(rec.resources) if rec.resources else None,
                rec.labels or None,
                rec.task_names,
                frozenset(rec.queues),
            )
            self.worker_queues[rec.name] = rec.queue
        self.workers = live
        known = [w.names for w in live.values() if w.names is not None]
        self.served = frozenset.intersection(*known) if known else None
        self._reload_held([w.name for w in live.values() if w.resources])
        self._review_placement()
        recovered = self.store.pending.recover_unstarted(list(live), self.settings.dispatch_timeout)
        if recovered:
            log.warning(
                "%d tasks dispatched over %.0fs ago never started (their message was not "
                "published): back to pending",
                len(recovered),
                self.settings.dispatch_timeout,
            )
        self._reload_limits()
        self.estimates.durations.clear()
        self.estimates.durations.update(self.store.estimates.durations())
        if self.strategy.uses_estimates:
            self._learn_overrun(server_now)
        self._next_refresh = time.monotonic() + self.settings.heartbeat_interval

    def _offers(self) -> list[Offer]:
        return [
            (w.names, w.labels or {}, w.resources or {}, w.queues) for w in self.workers.values()
        ]

    def _park(self, tasks: Sequence[PendingTask]) -> list[PendingTask]:
        """Park (out of the queue, marked with the reason) those of ``tasks`` that no live
        worker could ever run; returns them. With no worker at all nothing is parked:
        every task simply waits for workers."""
        if not self.workers:
            return []
        served, offers = self.served, None
        parked: list[PendingTask] = []
        reasons: dict[str, str] = {}
        for task in tasks:
            if task.needs is None and (served is None or task.name in served):
                continue
            offers = offers if offers is not None else self._offers()
            why = never_reason(task.name, task.needs, offers)
            if why is not None:
                self.parked[task.id] = (task, why)
                reasons[task.id] = why
                parked.append(task)
        if reasons:
            self.store.tasks.mark_unschedulable(reasons)
            log.warning(
                "%d tasks no live worker can run wait as unschedulable (first: %s)",
                len(reasons),
                next(iter(reasons.values())),
            )
        return parked

    def _review_placement(self) -> None:
        """When what the workers offer changed: parked tasks a worker now fits go back to
        the queue, and queued tasks no worker fits any more are parked."""
        seen = sorted(
            (
                w.name,
                w.names,
                sorted((w.labels or {}).items()),
                sorted((w.resources or {}).items()),
                sorted(w.queues),
            )
            for w in self.workers.values()
        )
        if seen == self._offers_seen:
            return
        self._offers_seen = seen
        if not self.workers:
            return
        offers = self._offers()
        back = [
            task
            for task, _ in self.parked.values()
            if never_reason(task.name, task.needs, offers) is None
        ]
        for task in back:
            del self.parked[task.id]
            self.queue.add(task)
        if back:
            self.store.tasks.clear_unschedulable([t.id for t in back])
            log.info("%d unschedulable tasks can run now: back in the queue", len(back))
        for task in self._park(list(self.queue.tasks())):
            self.queue.discard(task.id)

    def _reload_held(self, names: Sequence[str]) -> None:
        """Reread from Redis what the tasks on ``names`` hold: their free resources are
        their capacities less that (the dispatcher's own debits are a forecast)."""
        self._held_due.difference_update(names)
        names = [n for n in names if n in self.workers and self.workers[n].resources]
        if not names:
            return
        for name, held in self.store.workers.held(names).items():
            worker = self.workers[name]
            capacity = worker.resources or {}
            worker.free_resources = {r: cap - held.get(r, 0.0) for r, cap in capacity.items()}

    def _check_mirror(self) -> None:
        """Resync when Redis holds pending tasks the mirror lacks (a notification was lost).

        With the inbox empty, every pending task is in the mirror, in the
        hand-off list or held back by an open circuit breaker. A deposed dispatcher that wakes up (SIGSTOP, a long
        pause) can still pop inbox entries once before it learns it lost the
        lease; the tasks they announced are pending in Redis, and this finds them.
        """
        pending, inbox, handoff = self.store.pending.census()
        known = len(self.queue) + handoff + self.admission.held_count() + len(self.parked)
        if inbox == 0 and pending > known:
            log.warning(
                "%d pending tasks in Redis, %d known here: an inbox entry was lost; resyncing",
                pending,
                known,
            )
            self.resync()

    def _learn_overrun(self, server_now: float) -> None:
        """Runs that outlast their key's estimate raise it (see ``Estimates.learned``)."""
        overrun: dict[str, float] = {}
        durations = self.estimates.durations
        for task in self.store.workers.running(list(self.workers)):
            if task.expected_duration is not None:  # a hint, not an estimate, predicts it
                continue
            key, elapsed = task.duration_key, server_now - task.started_at
            if elapsed > durations.get(key, self.estimates.default_duration):
                overrun[key] = max(elapsed, overrun.get(key, 0.0))
        self.estimates.overrun = overrun

    def _expire(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            outcome = self.store.tasks.expire(decision.task.id, str(decision.expire))
            if outcome == "expired":
                self.expired += 1
                log.info("task %s expired: %s", decision.task.id, decision.expire)

    def _note_switches(self) -> None:
        switches = self.strategy.take_switches()
        if not switches:
            return
        for sw in switches:
            log.info("adaptive switch: %s -> %s (%s)", sw.old, sw.new, sw.reason)
        self.store.strategy.record_switches(
            [{"at": sw.at, "from": sw.old, "to": sw.new, "reason": sw.reason} for sw in switches]
        )

    def _claim_and_publish(self, decisions: list[Decision]) -> int:
        pairs = [(d.task.id, d.worker) for d in decisions]
        claims = self.store.pending.claim(pairs, self.token)
        ready: list[Dispatch] = []
        for decision, claim in zip(decisions, claims, strict=True):
            worker = self.workers.get(decision.worker)
            if claim.status == "ok":
                ready.append(
                    Dispatch(
                        claim.task_id,
                        claim.name,
                        claim.args,
                        claim.kwargs,
                        decision.worker,
                        self.worker_queues[decision.worker],
                        claim.attempt,
                        claim.options,
                        claim.at,
                        decision.task.priority,
                    )
                )
                if worker is not None:
                    worker.inflight += 1
                    needs = decision.task.needs
                    if needs is not None:
                        worker.hold(needs.resources)
            elif claim.status == "full":
                self.queue.add(decision.task)
                if worker is not None:
                    worker.inflight = worker.slots
            elif claim.status == "noworker":
                self.queue.add(decision.task)
                self.workers.pop(decision.worker, None)
            elif claim.status == "short":  # Redis says its resources are taken: reread them
                self.queue.add(decision.task)
                self._held_due.add(decision.worker)
            elif claim.status == "limited":  # its key is at its cap in Redis: wait for a slot
                self.queue.add(decision.task)
                key = decision.task.concurrency_key or ""
                self.gate.running[key] = max(self.gate.running.get(key, 0), 1 << 30)
        if self._held_due:  # a 'short' claim: the forecast was wrong; reread before planning on
            self._reload_held(sorted(self._held_due))
        if ready:
            self._publish(ready)
            if log.isEnabledFor(logging.DEBUG):
                for item in ready:
                    fields = task_fields(
                        item.task_id, item.attempt, item.worker, event="dispatched"
                    )
                    log.debug("task %s (%s) dispatched", item.task_id, item.name, extra=fields)
        return len(ready)

    def _publish(self, ready: list[Dispatch]) -> None:
        try:
            self.publisher.publish(ready)
        except Exception:
            log.exception("publishing %d tasks failed; returning them to pending", len(ready))
            by_worker: dict[str, list[str]] = {}
            for item in ready:
                by_worker.setdefault(item.worker, []).append(item.task_id)
            for name, ids in by_worker.items():
                self.store.pending.requeue(name, ids)
                self._held_due.add(name)
                if name in self.workers:
                    self.workers[name].inflight = max(0, self.workers[name].inflight - len(ids))
            raise

    def _reclaim(self) -> None:
        """Take the hand-off list back into the queue (what no worker took yet)."""
        for task_id in self.store.handoff.reclaim(self.token):
            task = self.ready.get(task_id)
            if task is not None:
                self.queue.add(task)
        self.ready = {}
        self._reclaim_due = False

    def _refill(self) -> None:
        """Top the hand-off list up, in the strategy's order.

        Its depth is ``handoff_depth`` (at least one task per slot), and it is
        refilled only when half of it was taken, so one refill serves many
        completions; its length does not weaken the order, because the list is
        taken back as soon as a better task arrives.

        Workers take entries from the head, so of the tasks this dispatcher put
        there, all but the last ``LLEN`` are gone; the entry that leaves half
        the list behind is flagged to wake the dispatcher again.
        """
        if any(w.free for w in self.workers.values()):
            return
        depth = max(self.settings.handoff_depth, sum(w.slots for w in self.workers.values()))
        self._forget_taken(self.store.handoff.length())
        want = depth - len(self.ready)
        if want <= max(0, depth // 2 - 1) and self.ready:
            return
        tasks: list[PendingTask] = []
        plain = self.queue.plain()
        served = self.served
        while plain is not None and len(tasks) < want:
            task = plain.pop()
            if task is None:
                break
            if task.needs is not None or (served is not None and task.name not in served):
                # Any finishing worker takes the list's head, unchecked: a task with
                # placement requirements, or one not every worker serves, waits for
                # the dispatcher, and so does everything after it (order kept).
                plain.add(task)
                break
            tasks.append(task)
        missing = [t for t in tasks if t.id not in self._templates]
        for task, (state, name, args, kwargs, options) in zip(
            missing, self.store.tasks.payloads([t.id for t in missing]), strict=True
        ):
            if state == "pending":
                self._templates[task.id] = self.publisher.template(
                    task.id, name, args, kwargs, options, task.priority
                )
        tasks = [t for t in tasks if t.id in self._templates]
        if not tasks:
            return
        total = len(self.ready) + len(tasks)
        wake_at = total - max(1, depth // 2)  # index whose taking leaves half the list
        base = len(self.ready)
        entries = [
            (t.id, base + i == max(0, wake_at), self._templates[t.id]) for i, t in enumerate(tasks)
        ]
        before = self.store.handoff.fill(self.token, entries)
        self._forget_taken(before)
        for task in tasks:
            self.ready[task.id] = task
        if log.isEnabledFor(logging.DEBUG):
            for task in tasks:
                fields = task_fields(task.id, event="handoff")
                log.debug(
                    "task %s (%s) ready for the next freed slot", task.id, task.name, extra=fields
                )

    def _forget_taken(self, remaining: int) -> None:
        """Drop the entries workers already took (all but the last ``remaining``)."""
        while len(self.ready) > remaining:
            task_id = next(iter(self.ready))
            del self.ready[task_id]
            self._templates.pop(task_id, None)
