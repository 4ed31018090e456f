# Over 400 lines: one class whose sends, replies and resends share one connection and one lock.
"""A pool process's report line: the start and finish of each delivery, on one kept connection.

Four choices make a report cheap, and they matter because a noop task spends
most of its life in these reports:

- **No client layer.** A redis-py client call costs about 40 µs of CPU on top
  of the round trip (connection pool checkout, command dispatch, response
  callbacks). Here one connection sends ``EVALSHA`` and reads the reply.
- **A fresh first delivery does not wait for its start** (:meth:`ReportLine.start_early`;
  docs/reliability.md, "Early start"): the start is sent, the body runs, and
  the reply is read after the body.
- **finish does not wait for its reply, nor for its write.** The reply (``ok``,
  ``released``, ``stale``) changes nothing the pool process does next, while
  waiting for it would hold back the slot's Celery result, and so the ack and
  the next fetch, by a round trip and the script's run. A sender thread writes
  the finish (with the guard's exit, in one write) while the pool process hands
  its result to the main process. The reply is read with the next start's (the
  two travel pipelined, and Redis runs the finish first), or by a watchdog
  thread when no start follows within :data:`SETTLE_AFTER` seconds.
- Calls waiting to go out are written together, in order.
- **A short body's start goes out with its outcome** (:meth:`ReportLine.start_held`;
  docs/reliability.md, "Held start"): the start waits on the line for a few
  milliseconds; a body that ends sooner sends start, guard exit and finish in
  one write, and the sender thread sends the start of a longer one when its
  hold runs out.

Until its reply is read, a finish is unconfirmed. When the connection breaks,
every unconfirmed finish (and early start) is sent again before anything
else: ``finish.lua`` is idempotent (a repeat answers ``stale``), ``start.lua``
answers a repeat with the same nonce as it answered the first. So a finish is
lost only with the pool process itself, before its sender wrote it, as it
would be lost with a pool process killed just before a synchronous call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError, ResponseError

from scheduler.errors import RedisOutOfMemoryError, ReplicationError, StoreError
from scheduler.store.connection import LOST, address, translate
from scheduler.store.deliveries import FinishReport, guard_answer, start_verdict
from scheduler.store.sentinel import dedicated_connection

if TYPE_CHECKING:
    from scheduler.store.facade import Store
    from scheduler.store.guard import Guard

log = logging.getLogger("yardmaster.store")

WAIT = "WAIT"
"""The command (in place of a script's name) that waits for replicas after finishes."""

SETTLE_AFTER = 1.0
"""Seconds after which the watchdog reads a finish reply no start has read yet."""

SETTLE_BACKLOG = 64
"""Unread replies after which the sender reads them before its next write."""

LINGER = 0.05
"""Seconds the sender keeps waking for held starts after the line was last used."""


@dataclass(slots=True)
class EarlyStart:
    """A start sent without waiting (see :meth:`ReportLine.start_early`); its reply, once read."""

    reply: Any = None
    answered: bool = False


@dataclass(frozen=True, slots=True)
class _Call:
    script: str
    task_id: str
    keys: list[str]
    args: list[Any]
    early: EarlyStart | None = None
    due: float = 0.0  # monotonic time by which it must be written (0: at once)
    held_since: float = 0.0  # a held start: when its body began (monotonic)


class ReportLine:
    """Reports deliveries of one worker to Redis from one (pool) process.

    Not shareable across a fork: make one in the process that uses it.

    Args:
        store: The store (its scripts and the deliveries' calls are used).
        worker: The worker's name.
    """

    def __init__(self, store: Store, worker: str) -> None:
        self._client = store.client
        # its own connection (through the Sentinels when the URL names them)
        self._conn: Any = dedicated_connection(store.client)
        self._scripts = store.scripts
        self._deliveries = store.deliveries
        self.worker = worker
        self._sent: deque[tuple[_Call, float]] = deque()  # finishes awaiting their reply
        self._unsent: list[_Call] = []  # finishes to send again on a new connection
        self._lock = threading.Lock()
        self._watchdog: threading.Thread | None = None
        self._sender: threading.Thread | None = None
        self._wake = threading.Event()
        self._hold = 0.0  # the latest held start's hold: how often the sender looks
        self._idle = True  # the sender waits without a timeout (a held start wakes it)
        self._active = 0.0  # when a report was last queued
        self._full = False  # an outcome was refused for memory, and none recorded since
        # YM_DURABLE_REPLICAS: a WAIT follows every write that carries a finish
        self._durable = store.settings.durable_replicas
        self._durable_ms = int(store.settings.durable_timeout * 1000)
        self._awaiting: list[_Call] = []  # replies read, their WAIT not yet

    def start(self, task_id: str, attempt: int, nonce: str = "") -> tuple[bool, str, str]:
        """Mark a delivery as running: (run?, duration key or state, affinity key).

        ``nonce`` names this delivery (see ``start.lua``): sending the same call
        again is safe, a second delivery of a running attempt is skipped.

        Raises:
            StoreError: Redis could not be asked, or refused.
        """
        return start_verdict(self._start(task_id, attempt, nonce, None))

    def start_guarded(
        self, task_id: str, attempt: int, nonce: str, guard: Guard
    ) -> tuple[bool, str, str, str, str]:
        """:meth:`start` that also takes the execution guard, in the same round trip.

        Returns (run?, duration key or state, affinity key, guard answer,
        detail); the guard's answer is ``run`` (taken), ``done`` (the body
        already finished; detail: its outcome) or ``held`` (another live
        delivery holds it); hand it to :meth:`Guard.settle`.

        Raises:
            StoreError: Redis could not be asked, or refused.
        """
        reply = self._start(task_id, attempt, nonce, guard)
        run, duration_key, affinity_key = start_verdict(reply)
        answer, detail = guard_answer(reply) if run else ("", "")
        return run, duration_key, affinity_key, answer, detail

    def start_early(self, task_id: str, attempt: int, nonce: str, guard: Guard) -> EarlyStart:
        """Send a guarded start without waiting for its reply; :meth:`take_start` reads it.

        The call goes out now, in order on this line, so any report sent after it
        (the finish) reaches Redis after it. Like a finish it is sent again after
        a lost connection; ``start.lua`` answers a repeat with the same nonce as
        it answered the first.

        Raises:
            RedisUnavailableError: The start could not be sent (nothing was
                queued: the caller falls back to a waited start).
        """
        keys, args = self._deliveries.start_call(
            task_id, self.worker, attempt, nonce, guard.start_args()
        )
        early = EarlyStart()
        call = _Call("start", task_id, keys, args, early)
        with self._lock:
            try:
                if self._conn._sock is None:
                    # A new connection (the first, or after a Redis restart): make
                    # sure Redis knows the scripts, or this start would be refused
                    # as unknown and recorded only after the body.
                    self._preload()
                self._send_unsent()
                self._send(call)
            except LOST as exc:
                self._lost()
                raise translate(exc, self._client) from exc
            self._sent.append((call, time.monotonic()))
        return early

    def start_held(
        self, task_id: str, attempt: int, nonce: str, guard: Guard, hold: float
    ) -> EarlyStart:
        """Queue a guarded start to go out with the delivery's outcome, or after ``hold`` s.

        Nothing is written now. When the body ends within ``hold`` seconds, the
        start travels in the same write as the guard exit and the finish (which
        then carry ``nonce``, so they count only if this start was recorded);
        otherwise the sender thread writes it when the hold runs out (within
        about twice ``hold``). :meth:`take_start` sends it at once and reads its
        reply. On a new connection the scripts are loaded first, so this call
        may wait for Redis then.

        Raises:
            RedisUnavailableError: A new connection could not be made (nothing
                was queued: the caller falls back to a waited start).
        """
        keys, args = self._deliveries.start_call(
            task_id, self.worker, attempt, nonce, guard.start_args()
        )
        early = EarlyStart()
        now = time.monotonic()
        call = _Call("start", task_id, keys, args, early, now + hold, now)
        with self._lock:
            if self._conn._sock is None:
                try:
                    self._preload()
                except LOST as exc:
                    self._lost()
                    raise translate(exc, self._client) from exc
            self._unsent.append(call)
            self._hold, self._active = hold, now
            wake, self._idle = self._idle, False
        self._ensure_threads()
        if wake:  # the sender waits without a timeout: have it look again
            self._wake.set()
        return early

    def take_start(self, early: EarlyStart) -> tuple[bool, str, str, str, str]:
        """The reply of an early start, as :meth:`start_guarded` returns it.

        Raises:
            StoreError: Redis could not be asked (the start stays queued on this
                line and goes out before the next report), or refused it.
        """
        while not early.answered:
            self.settle()
        reply = early.reply
        if isinstance(reply, Exception):
            raise reply
        run, duration_key, affinity_key = start_verdict(reply)
        answer, detail = guard_answer(reply) if run else ("", "")
        return run, duration_key, affinity_key, answer, detail

    def _start(self, task_id: str, attempt: int, nonce: str, guard: Guard | None) -> Any:
        guard_args = None if guard is None else guard.start_args()
        keys, args = self._deliveries.start_call(task_id, self.worker, attempt, nonce, guard_args)
        call = _Call("start", task_id, keys, args)
        with self._lock:
            try:
                self._send_unsent()
                self._send(call)
                return self._replies(call)
            except LOST as exc:
                self._lost()
                raise translate(exc, self._client) from exc
            except ResponseError as exc:
                raise translate(exc, self._client) from exc

    def post(self, script: str, task_id: str, keys: list[str], args: list[Any]) -> None:
        """Queue a call to go out, unanswered, with the next finish (and before it).

        It is treated as a finish is: sent in order on this line, its reply read
        later, sent again after a lost connection, so the script must be
        idempotent (``guard_exit.lua`` is).
        """
        with self._lock:
            self._unsent.append(_Call(script, task_id, keys, args))

    def finish(self, report: FinishReport) -> None:
        """Send a delivery's outcome; its reply is read later (see the module's docstring).

        When the connection is down, the outcome waits in this line and goes out
        before the next report, or with the watchdog's next try (every
        :data:`SETTLE_AFTER` seconds); it never raises for a lost connection.
        A report with a held start's nonce counts only if that start was recorded
        (see :meth:`start_held`).
        """
        keys, args = self._deliveries.finish_call(self.worker, report)
        call = _Call("finish", report.task_id, keys, args)
        with self._lock:
            self._unsent.append(call)
            self._active = time.monotonic()
        # The line's sender thread writes it, so the pool process hands its
        # result to the worker's main process (which then acknowledges the
        # message and fetches the next) without waiting for this write, which
        # wakes Redis and often costs the writer its core for a while.
        self._wake.set()
        self._ensure_threads()

    def _ensure_threads(self) -> None:
        if self._sender is None:
            self._sender = threading.Thread(target=self._send_loop, daemon=True, name="report")
            self._sender.start()
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, daemon=True)
            self._watchdog.start()

    def _flush(self) -> None:
        """Write what is due (everything queued goes with it, in order)."""
        with self._lock:
            now = time.monotonic()
            if not any(call.due <= now for call in self._unsent):
                return
            try:
                if len(self._sent) >= SETTLE_BACKLOG:  # long sent: their replies are in
                    self._replies(None)
                self._send_unsent()
            except LOST:
                self._lost()
                log.warning("Redis unreachable; outcomes will be sent again")

    def _send_loop(self) -> None:
        while True:
            with self._lock:
                # Asleep without a timeout only when nothing is held and the line
                # has been quiet for a while; start_held wakes it then.
                self._idle = (
                    not self._unsent and time.monotonic() - self._active > LINGER
                ) or not self._hold
                timeout = None if self._idle else self._hold
            self._wake.wait(timeout)
            self._wake.clear()
            self._flush()

    def settle(self) -> None:
        """Read every outstanding finish reply (send again what a lost connection dropped).

        Raises:
            RedisUnavailableError: Redis could not be reached (what was not
                confirmed goes out again with the next try).
        """
        with self._lock:
            try:
                self._send_unsent()
                self._replies(None)
            except LOST as exc:
                self._lost()
                raise translate(exc, self._client) from exc

    def close(self) -> None:
        """Settle what can be settled, then drop the connection."""
        try:
            self.settle()
        except StoreError:
            log.exception("could not confirm the last outcomes reported by %s", self.worker)
        self._conn.disconnect()

    # -- internals (called with the lock held) ---------------------------------
    def _send(self, call: _Call) -> None:
        sha = self._scripts.sha(call.script)
        self._conn.send_command("EVALSHA", sha, len(call.keys), *call.keys, *call.args)

    def _preload(self, *also: str) -> None:
        """Load the line's scripts (and ``also``) into Redis's cache on this connection."""
        for script in sorted({"start", "guard_exit", "finish", *also}):
            self._conn.send_command("SCRIPT", "LOAD", self._scripts.source(script))
            self._conn.read_response()

    def _send_unsent(self) -> None:
        """Send every queued call in one write (a guard exit and its finish travel together)."""
        if not self._unsent:
            return
        sha = self._scripts.sha
        now = time.monotonic()
        if self._durable and any(c.script == "finish" for c in self._unsent):
            # on this connection, after the finishes: the replicas' count comes back with
            # the other replies (a WAIT sent again after a lost line covers the same)
            self._unsent.append(_Call(WAIT, "", [], [self._durable, self._durable_ms]))
        commands = [
            (WAIT, *c.args)
            if c.script == WAIT
            else ("EVALSHA", sha(c.script), len(c.keys), *c.keys, *c.args, *_held_for(c, now))
            for c in self._unsent
        ]
        self._conn.send_packed_command(self._conn.pack_commands(commands), check_health=False)
        self._sent.extend((call, now) for call in self._unsent)
        self._unsent = []

    def _replies(self, last: _Call | None) -> Any:
        """Read the replies of every sent finish, then ``last``'s; returns ``last``'s reply.

        A script missing from Redis's cache (a restart, ``SCRIPT FLUSH``) fails
        each pipelined call; once every reply is in, the scripts are loaded and
        those calls are sent again.
        """
        calls = [c for c, _ in self._sent] + ([last] if last else [])
        missing = False
        answer: Any = None
        for call in calls:
            try:
                answer = self._conn.read_response()
                if call.script == WAIT:
                    self._check_replicas(int(answer))
                    self._awaiting.clear()
                if call.early is not None:
                    call.early.reply, call.early.answered = answer, True
                    if call.due:
                        _check_held(call.task_id, answer)
            except NoScriptError:
                missing = True
                if call is not last:
                    self._unsent.append(call)
            except ResponseError as exc:
                if call is last:
                    raise
                refusal = translate(exc, self._client)
                if call.early is not None:  # take_start raises it
                    call.early.reply, call.early.answered = refusal, True
                elif isinstance(refusal, RedisOutOfMemoryError):
                    # Redis over maxmemory (a server without script flags): the outcome
                    # is sent again with the next settle, like one sent on a lost line
                    if not self._full:
                        log.warning("Redis is full; outcomes will be sent again: %s", exc)
                    self._full = True
                    self._unsent.append(call)
                else:
                    log.error("the outcome of %s was not recorded: %s", call.task_id, exc)
            else:
                if self._full and call.early is None:
                    log.warning("Redis records outcomes again")
                    self._full = False
            if call is not last:
                self._sent.popleft()
                if self._durable and call.script not in (WAIT, "start"):
                    self._awaiting.append(call)
        if missing:
            self._preload(*(c.script for c in calls if c.script != WAIT))
            self._send_unsent()
            if last:
                self._send(last)
            return self._replies(last)
        return answer if last else None

    def _check_replicas(self, acknowledged: int) -> None:
        """Log outcomes that fewer replicas than ``YM_DURABLE_REPLICAS`` confirmed."""
        if acknowledged < self._durable:
            log.error(
                "%s",
                ReplicationError(
                    address(self._client),
                    "outcomes reported by " + self.worker,
                    self._durable,
                    acknowledged,
                    self._durable_ms / 1000,
                ),
            )

    def _lost(self) -> None:
        self._conn.disconnect()
        # with durability on, outcomes recorded but not yet confirmed on the replicas go
        # out again too: the master that recorded them may be the one that went away
        self._unsent = self._awaiting + [call for call, _ in self._sent] + self._unsent
        self._awaiting = []
        self._sent.clear()

    def _watch(self) -> None:
        failing = False
        while True:
            time.sleep(SETTLE_AFTER)
            with self._lock:
                oldest = self._sent[0][1] if self._sent else time.monotonic()
                due = bool(self._unsent) or time.monotonic() - oldest >= SETTLE_AFTER
            if not due:
                continue
            try:
                self.settle()
            except Exception:
                if not failing:
                    log.exception("could not confirm the outcomes reported by %s", self.worker)
                failing = True
            else:
                if failing:
                    log.warning("Redis answers %s again; outcomes confirmed", self.worker)
                failing = False


def _held_for(call: _Call, now: float) -> tuple[str, ...]:
    """A held start's last argument: how long its body has run, so its start time is true."""
    return (f"{now - call.held_since:.6f}",) if call.held_since else ()


def _check_held(task_id: str, reply: Any) -> None:
    """Log a held start that Redis refused (its outcome, sent with it, then changed nothing).

    A start sent again after a lost connection, once its own outcome was
    recorded, is refused as a repeat: expected, and not logged.
    """
    run, state, _ = start_verdict(reply)
    if not run and reply[2:] != ["repeat"]:
        log.warning("the held start of %s was refused (the task is %s)", task_id, state)
    elif run and guard_answer(reply)[0] != "run":
        log.error("the held start of %s found its execution guard %s", task_id, reply[3])
