"""What the demo tasks record (workers/tasks.py): ledgers for the reliability tests, and
the timelines and run counters of the retry, timeout and cancellation demos."""

from __future__ import annotations

from typing import cast

from scheduler.store.base import Repository
from scheduler.store.connection import translated


class DemoRecords(Repository):
    """The demo tasks' records in one namespace (``<ns>:ledger:*``, ``<ns>:demo:*``)."""

    @translated
    def append_ledger(self, name: str, entry: str, nonce: str) -> bool:
        """Append ``entry`` to ledger ``name`` once per ``nonce`` (see the ``ledger`` task)."""
        keys = [self._keys.ledger(name), self._keys.ledger_seen(name)]
        return bool(self._scripts("ledger", keys, [entry, nonce]))

    @translated
    def ledger(self, name: str, *, committed: bool = False) -> list[str]:
        """Every entry of the ledger list ``name``, oldest first: one per body run, or
        with ``committed`` the entries committed through the outbox (one per task)."""
        return cast(
            list[str], self._client.lrange(self.ledger_key(name, committed=committed), 0, -1)
        )

    def ledger_key(self, name: str, *, committed: bool = False) -> str:
        """The Redis key of ledger ``name`` (a body's outbox writes the committed one)."""
        return self._keys.ledger_committed(name) if committed else self._keys.ledger(name)

    @translated
    def note(self, key: str, what: str) -> None:
        """Append ``what@<Redis time>`` to the demo timeline ``key``."""
        now = self._server_time()
        self._client.rpush(self._keys.demo(key), f"{what}@{now:.6f}")

    @translated
    def count_run(self, key: str) -> int:
        """Count one more run of the demo ``key``; returns the count."""
        return int(self._client.incr(self._keys.demo(key + ":runs")))

    @translated
    def runs(self, key: str) -> int:
        """How many runs of the demo ``key`` were counted (:meth:`count_run`)."""
        return int(cast(str | None, self._client.get(self._keys.demo(key + ":runs"))) or 0)

    @translated
    def timeline(self, key: str) -> list[str]:
        """The demo timeline ``key`` (``what@<Redis time>`` entries, oldest first)."""
        return cast(list[str], self._client.lrange(self._keys.demo(key), 0, -1))
