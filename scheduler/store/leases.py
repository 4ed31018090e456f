"""The dispatcher lease: which dispatcher leads, held as a :class:`Lock` on ``<ns>:dispatcher:leader``.

Its value is the leader's token, which the claim and hand-off scripts compare
(fencing), so a dispatcher that lost the lease can no longer claim.
"""

from __future__ import annotations

from typing import cast

from scheduler.store.base import Repository
from scheduler.store.connection import translated
from scheduler.store.lock import Lock


class Leases(Repository):
    """The dispatcher lease of one namespace."""

    def lock(self, token: str, ttl: float | None = None) -> Lock:
        """The lease as a :class:`Lock` owned by ``token`` (``YM_DISPATCHER_LEASE`` by default)."""
        ttl = ttl or self._settings.dispatcher_lease
        return Lock(self._client, self._scripts, self._keys.leader, ttl, token)

    def take(self, token: str, ttl: float) -> bool:
        """Take or renew the lease for ``token``; True when it holds it now."""
        return self.lock(token, ttl).acquire()

    def release(self, token: str) -> None:
        """Give the lease up if ``token`` holds it."""
        self.lock(token).release()

    @translated
    def leader(self) -> str | None:
        """The token of the dispatcher that leads now, or None when none does."""
        return cast(str | None, self._client.get(self._keys.leader))
