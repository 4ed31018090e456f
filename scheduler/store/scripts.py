"""Loads the Lua scripts shipped beside this module, once per client."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from redis import Redis
from redis.commands.core import Script

SCRIPT_NAMES = (
    "submit",
    "claim",
    "start",
    "finish",
    "cancel",
    "requeue",
    "register",
    "heartbeat",
    "lock_acquire",
    "lock_renew",
    "lock_release",
    "warm",
    "handoff_fill",
    "handoff_reclaim",
    "recover",
    "drain",
    "ledger",
    "steer",
    "expire",
    "guard_enter",
    "guard_exit",
    "guard_drop",
    "promote",
    "end_pending",
)


INCLUDE = re.compile(r"^[ \t]*-- @include (\w+)$", re.M)


def _source(name: str) -> str:
    """A script's Lua text, with each ``-- @include NAME`` line replaced by ``NAME.lua``."""
    text = resources.files("scheduler.store").joinpath("lua", f"{name}.lua").read_text("utf-8")
    return INCLUDE.sub(lambda m: _source(m.group(1)).rstrip("\n"), text)


class Scripts:
    """Registered :class:`redis.commands.core.Script` objects, one per Lua file.

    Each call runs with EVALSHA and falls back to EVAL after a Redis restart
    flushed the script cache.
    """

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._scripts: dict[str, Script] = {
            name: client.register_script(_source(name)) for name in SCRIPT_NAMES
        }

    def __call__(
        self, name: str, keys: list[str], args: list[Any], client: Any | None = None
    ) -> Any:
        """Run script ``name`` (optionally inside a pipeline given as ``client``)."""
        return self._scripts[name](keys=keys, args=args, client=client)

    def load(self, *names: str) -> None:
        """Load scripts into Redis's cache now (for callers that send EVALSHA themselves)."""
        for name in names:
            self._client.script_load(self.source(name))

    def sha(self, name: str) -> str:
        """The SHA1 digest EVALSHA knows script ``name`` by."""
        return str(self._scripts[name].sha)

    def source(self, name: str) -> str:
        """The Lua text of script ``name`` (for EVAL, which also caches it)."""
        script = self._scripts[name].script
        return script.decode() if isinstance(script, bytes) else str(script)
