"""Execution guards: a task's body runs at most once, whatever is redelivered.

Before a body runs, its delivery takes the task's guard (a :class:`Lock`
whose token names the attempt); after it returns, the outcome is recorded
beside the lock (the *done marker*) and the lock released. A later delivery
of the same task, a duplicate of the message or a new attempt after the
worker was declared dead while the body was still finishing, finds the marker
and reports that outcome instead of running the body again. A delivery that
finds another live holder waits for it; a holder that stops renewing (its
process died mid-body) loses the guard after ``YM_GUARD_TTL`` seconds.

The exit also commits the body's outbox (:mod:`scheduler.store.outbox`) when
it succeeded: the done marker and the effects are written in one Lua call,
and a recorded success is never overwritten, so the effects apply once.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from redis import Redis

from scheduler.keys import Keys
from scheduler.settings import Settings
from scheduler.store.base import Repository
from scheduler.store.connection import translated
from scheduler.store.lock import Lock
from scheduler.store.outbox import Outbox
from scheduler.store.scripts import Scripts

log = logging.getLogger("yardmaster.guard")


@dataclass(frozen=True, slots=True)
class Finished:
    """The outcome a finished body recorded: ``succeeded`` or ``failed``, result JSON, error."""

    outcome: str
    result: str
    error: str
    attempt: int


class Guards(Repository):
    """The execution guards of one namespace."""

    def for_delivery(self, task_id: str, attempt: int) -> Guard:
        """The guard of one delivery (attempt ``attempt``) of ``task_id``, not taken yet."""
        return Guard(self._client, self._keys, self._settings, self._scripts, task_id, attempt)

    @translated
    def drop(self, task_id: str, attempt: int) -> bool:
        """Free the guard a killed run of ``attempt`` left behind; True if it was dropped."""
        return bool(self._scripts("guard_drop", [self._keys.guard(task_id)], [attempt]))


class Guard(Repository):
    """The guard of one delivery of one task (made by :meth:`Guards.for_delivery`)."""

    def __init__(
        self,
        client: Redis,
        keys: Keys,
        settings: Settings,
        scripts: Scripts,
        task_id: str,
        attempt: int,
    ) -> None:
        super().__init__(client, keys, settings, scripts)
        self.task_id = task_id
        self.attempt = attempt
        token = f"{attempt}:{uuid.uuid4().hex}"
        self.lock = Lock(client, scripts, keys.guard(task_id), settings.guard_ttl, token)
        self._done_key = keys.guard_done(task_id)

    @translated
    def enter(self, poll: float = 0.1) -> Finished | None:
        """Take the guard: None means run the body; a :class:`Finished` means it already ran.

        While another live delivery holds the guard, this waits for it (polling
        every ``poll`` seconds) and then returns its outcome, or takes the guard
        if that holder died without finishing.
        """
        while True:
            reply = self._scripts(
                "guard_enter",
                [self.lock.key, self._done_key],
                [self.lock.token, int(self.lock.ttl * 1000), self.attempt],
            )
            if reply[0] == "run":
                RENEWER.add(self.lock)
                return None
            if reply[0] == "done":
                return _finished(str(reply[1]))
            time.sleep(poll)

    def start_args(self) -> tuple[list[str], list[Any]]:
        """The guard's KEYS and ARGV appended to ``start.lua``'s, which then takes it too."""
        return [self.lock.key, self._done_key], [self.lock.token, int(self.lock.ttl * 1000)]

    def settle(self, answer: str, detail: str, poll: float = 0.1) -> Finished | None:
        """Act on the guard's answer that came with the start (see :func:`guard_answer`).

        ``run``: the guard is taken (renewed from now on), None. ``done``: the
        recorded outcome. ``held``: another live delivery runs the body, so
        this waits for it exactly as :meth:`enter` does.
        """
        if answer == "done":
            return _finished(detail)
        if answer == "held":
            return self.enter(poll)
        RENEWER.add(self.lock)
        return None

    @translated
    def exit(self, outcome: str, result: str, error: str, effects: Outbox | None = None) -> bool:
        """Record the body's outcome and release the guard; True if it was still ours."""
        call = self.exit_call(outcome, result, error, effects)
        return bool(self._scripts("guard_exit", *call))

    def exit_call(
        self,
        outcome: str,
        result: str,
        error: str,
        effects: Outbox | None = None,
        *,
        nonce: str = "",
    ) -> tuple[list[str], list[Any]]:
        """Stop renewing; KEYS and ARGV of ``guard_exit.lua`` (for a caller that sends it).

        ``effects`` (the body's outbox) are committed by that call when the
        outcome is ``succeeded`` and no success of the task is recorded yet.
        ``nonce`` (a held start's): the call writes nothing unless that start
        was the one recorded.
        """
        RENEWER.discard(self.lock)
        k, s = self._keys, self._settings
        keys = [self.lock.key, self._done_key, k.task(self.task_id), k.cache_index, k.cache_stats]
        args: list[Any] = [self.lock.token, self.attempt, outcome, result, error, s.result_ttl]
        args.append(s.cache_max_entries)
        if effects:
            effect_keys, ops = effects.wire()
            keys += effect_keys
            args.append(ops)
        elif nonce:
            args.append("")
        if nonce:
            args.append(nonce)
        return keys, args


def _finished(marker: str) -> Finished:
    d = json.loads(marker)
    return Finished(str(d["o"]), str(d.get("r", "null")), str(d.get("e", "")), int(d["a"]))


class Renewer:
    """One thread per process that keeps the guards of running bodies alive.

    A body shorter than a third of the TTL costs no renewal at all; a longer
    one is renewed every third of the TTL for as long as it runs.
    """

    def __init__(self) -> None:
        self._held: dict[str, tuple[Lock, float]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, lock: Lock) -> None:
        """Renew ``lock`` until :meth:`discard` is called for it."""
        with self._lock:
            self._held[lock.token] = (lock, time.monotonic())
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="guard-renewal")
                self._thread.start()

    def discard(self, lock: Lock) -> None:
        """Stop renewing ``lock``."""
        with self._lock:
            self._held.pop(lock.token, None)

    def _run(self) -> None:
        while True:
            with self._lock:
                due = [
                    (lock, since)
                    for lock, since in self._held.values()
                    if time.monotonic() - since >= lock.ttl / 3
                ]
                step = min((lock.ttl / 3 for lock, _ in self._held.values()), default=1.0)
            for lock, _ in due:
                try:
                    kept = lock.renew()
                except Exception:  # Redis unreachable: the TTL decides
                    log.warning("could not renew the guard %s; retrying", lock.key)
                    continue
                with self._lock:
                    if lock.token in self._held:
                        if kept:
                            self._held[lock.token] = (lock, time.monotonic())
                        else:
                            del self._held[lock.token]
            time.sleep(max(0.05, min(step / 3, 1.0)))

    def _forked(self) -> None:
        """In a new child process: the parent's thread and guards are not this process's."""
        self._held = {}
        self._lock = threading.Lock()
        self._thread = None


RENEWER = Renewer()
os.register_at_fork(after_in_child=RENEWER._forked)
