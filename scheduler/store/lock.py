"""A lock in one Redis: an owner token, a time to live, renewal, and safe release.

The lock is one string key whose value is the holder's token; it expires
after its TTL unless the holder renews it. Taking, renewing and releasing are
Lua scripts (``lock_*.lua``), so each is one atomic check-and-act on the
token: a holder whose lock lapsed and was taken by someone else can neither
renew nor release the new holder's lock.

What it guarantees, and what it does not (see ``docs/cache-and-locks.md``):

- On one Redis (no failover), at most one token holds the key at any instant.
- A holder that stops renewing (killed, paused, partitioned) loses the lock
  once the TTL runs out, and another can take it then.
- It does **not** stop a paused holder from acting after its lock lapsed. The
  writes a lock protects must therefore check the token themselves (fencing):
  the dispatcher's claim and hand-off scripts compare the lease token inside
  the same Lua step. It is not Redlock and makes no claim across several Redis
  servers or across a replica promotion that lost the last writes.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from redis import Redis

from scheduler.errors import YardmasterError
from scheduler.store.connection import translated
from scheduler.store.scripts import Scripts


class LockLostError(YardmasterError):
    """A lock the caller held lapsed or was taken by another holder."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the lock {key!r} is no longer held by this owner")
        self.key = key


class Lock:
    """One named lock with an owner token.

    Args:
        client: A Redis client (``decode_responses=True``).
        scripts: The loaded Lua scripts of that client.
        key: The lock's Redis key (built by :mod:`scheduler.keys`).
        ttl: Seconds the lock lives after each take or renewal.
        token: The owner's token; a fresh random one when not given.
    """

    def __init__(
        self, client: Redis, scripts: Scripts, key: str, ttl: float, token: str | None = None
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl={ttl!r}: a lock needs a positive time to live")
        self._client = client
        self.key = key
        self.ttl = ttl
        self.token = token or uuid.uuid4().hex
        self._lua = scripts

    @property
    def _ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    @translated
    def acquire(self) -> bool:
        """Take the lock, or extend it if this owner holds it. True when held now."""
        return bool(self._lua("lock_acquire", [self.key], [self.token, self._ms]))

    @translated
    def renew(self) -> bool:
        """Extend the lock by its TTL; False (and nothing changed) if it is not ours any more."""
        return bool(self._lua("lock_renew", [self.key], [self.token, self._ms]))

    @translated
    def release(self) -> bool:
        """Give the lock up if this owner holds it. True when it was ours."""
        return bool(self._lua("lock_release", [self.key], [self.token]))

    @translated
    def holder(self) -> str | None:
        """The token holding the lock now, or None when it is free."""
        return cast(str | None, self._client.get(self.key))

    def held(self) -> bool:
        """Whether this owner holds the lock now."""
        return self.holder() == self.token

    @contextmanager
    def hold(self, *, every: float | None = None) -> Iterator[Renewal]:
        """Hold the lock for a ``with`` block, renewing it from a thread.

        The lock must already be acquired. The renewal thread extends it every
        ``every`` seconds (a third of the TTL by default) and stops when the
        block ends; the lock is then released. If a renewal finds the lock
        gone, :attr:`Renewal.lost` is set, so long work can check it and stop.
        """
        renewal = Renewal(self, every or self.ttl / 3)
        renewal.start()
        try:
            yield renewal
        finally:
            renewal.stop()
            self.release()


class Renewal:
    """A thread that keeps one :class:`Lock` alive while its holder works."""

    def __init__(self, lock: Lock, every: float) -> None:
        self.lock = lock
        self.every = every
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="lock-renewal")

    def start(self) -> None:
        """Start renewing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (the lock stays until released or expired)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(1.0, self.every))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                if not self.lock.renew():
                    self.lost.set()
                    return
            except Exception:  # Redis unreachable: keep trying until the TTL decides
                if self._stop.is_set():
                    return
