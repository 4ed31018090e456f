"""The dispatcher's inbox: what it must react to, as JSON entries in ``<ns>:inbox``.

Scripts append to it (a submission, a freed slot, a cancel, a worker change,
a steer, a retry waiting); the leading dispatcher takes entries in order and
blocks on it instead of polling.
"""

from __future__ import annotations

import json
from typing import Any, cast

from scheduler.store.base import Repository
from scheduler.store.connection import translated


class Inbox(Repository):
    """The inbox of one namespace's dispatcher."""

    @translated
    def take(self, block: float, limit: int) -> list[dict[str, Any]]:
        """Take up to ``limit`` entries, waiting up to ``block`` seconds for one."""
        key = self._keys.inbox
        if block > 0:
            got = cast(tuple[str, str] | None, self._client.blpop([key], block))
            if got is None:
                return []
            rest = cast(list[str] | None, self._client.lpop(key, limit - 1))
            raw = [got[1], *(rest or [])]
        else:
            raw = cast(list[str] | None, self._client.lpop(key, limit)) or []
        return [json.loads(entry) for entry in raw]
