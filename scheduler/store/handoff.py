"""The hand-off list: the next tasks in the strategy's order, with their messages built.

While every slot is taken, the dispatcher keeps ``<ns>:handoff`` filled; a
worker that finishes binds its head to the slot it freed, inside
``finish.lua`` (see docs/architecture.md, "The hand-off list"). Filling and
taking it back are fenced by the dispatcher lease.
"""

from __future__ import annotations

from collections.abc import Sequence

from scheduler.store.base import Repository
from scheduler.store.connection import translated


class HandOff(Repository):
    """The hand-off list of one namespace."""

    @translated
    def fill(self, token: str, entries: Sequence[tuple[str, bool, str]]) -> int:
        """Append (task id, wake flag, message template) entries; returns the list's length
        before the append.

        Raises:
            NotLeaderError: ``token`` no longer holds the dispatcher lease.
        """
        args = [token, *(f"{i}\t{'1' if wake else '0'}{t}" for i, wake, t in entries)]
        return int(self._scripts("handoff_fill", [self._keys.leader, self._keys.handoff], args))

    @translated
    def length(self) -> int:
        """Entries still waiting in the list."""
        return int(self._client.llen(self._keys.handoff))

    @translated
    def reclaim(self, token: str = "") -> list[str]:
        """Empty the list; returns the ids no worker had taken yet.

        With ``token``, only while that lease is held (a deposed dispatcher must
        not take back the list its successor filled).

        Raises:
            NotLeaderError: ``token`` is given and no longer holds the dispatcher lease.
        """
        keys = [self._keys.handoff, self._keys.leader]
        return [str(i) for i in self._scripts("handoff_reclaim", keys, [token])]
