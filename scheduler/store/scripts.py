"""Loads the Lua scripts shipped beside this module, once per client.

Every ``lua/*.lua`` file is a script, named by its file name, except those
whose name starts with ``_``: they are includes, pulled into a script by a
``-- @include NAME`` line (each at most once per script, the first line that
names it). Includes are expanded when the script is loaded, so they cost
nothing when it runs.

A script whose header has a ``-- @flags allow-oom`` line may run when Redis is
over its ``maxmemory``. These are the scripts that only move or free state
(finish, start, claim, requeue, cancel, ...), so a full Redis keeps draining
instead of deadlocking the cluster (docs/reliability.md, "Backpressure"). On
Redis 7 and later such a script is loaded with the ``#!lua flags=allow-oom``
shebang (first line, before the includes). Redis 6 knows no script flags; it
refuses a script's *first* write over the limit only when that command may
grow memory (``denyoom``), and lets the rest of a script that has written go
on, so as not to stop it half way. There such a script starts with a write that
cannot grow memory and changes nothing: ``DEL`` of a key no one uses (its
first key's name with a byte no key name of ours has). The server's major
version is asked once, when the first script is needed.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from redis import Redis
from redis.commands.core import Script
from redis.exceptions import NoPermissionError

from scheduler.store.connection import translated

INCLUDE = re.compile(r"^[ \t]*-- @include (\w+)$", re.M)
ALLOW_OOM = re.compile(r"^-- @flags allow-oom\b", re.M)
SHEBANG = "#!lua flags=allow-oom\n"
FIRST_WRITE = "redis.call('DEL', KEYS[1] .. '\\255 no such key')  -- see scripts.py: Redis 6\n"


def script_names() -> list[str]:
    """The name of every script (not include) shipped in ``lua/``."""
    folder = resources.files("scheduler.store").joinpath("lua")
    return sorted(
        entry.name.removesuffix(".lua")
        for entry in folder.iterdir()
        if entry.name.endswith(".lua") and not entry.name.startswith("_")
    )


def _text(name: str) -> str:
    return resources.files("scheduler.store").joinpath("lua", f"{name}.lua").read_text("utf-8")


def allows_oom(name: str) -> bool:
    """Whether script ``name`` is marked to run over Redis's ``maxmemory``."""
    return ALLOW_OOM.search(_text(name)) is not None


def server_major(client: Redis) -> int:
    """The major version of the Redis server behind ``client``; 6 when it does not say (a
    user the ACL denies ``INFO``): the Redis 6 way of running over ``maxmemory`` works on
    Redis 7 too, for scripts without a shebang."""
    try:
        return int(str(client.info("server").get("redis_version", "6")).split(".")[0])
    except NoPermissionError:
        return 6


def source(name: str, *, major: int = 0) -> str:
    """A script's Lua text, with each ``-- @include NAME`` line replaced by ``NAME.lua``'s;
    for a script marked ``-- @flags allow-oom``, with what lets it run over ``maxmemory``
    on a Redis of version ``major`` (0: nothing added)."""
    seen: set[str] = set()

    def expand(text: str) -> str:
        def include(match: re.Match[str]) -> str:
            part = match.group(1)
            if part in seen:
                return f"-- ({part} included above)"
            seen.add(part)
            return expand(_text(part)).rstrip("\n")

        return INCLUDE.sub(include, text)

    text = expand(_text(name))
    if not major or not ALLOW_OOM.search(text):
        return text
    if major >= 7:
        return SHEBANG + text
    return FIRST_WRITE + text


class Scripts:
    """Registered :class:`redis.commands.core.Script` objects, one per Lua file.

    Each call runs with EVALSHA and falls back to EVAL after a Redis restart
    flushed the script cache.
    """

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._loaded: dict[str, Script] | None = None

    @property
    def _scripts(self) -> dict[str, Script]:
        """The scripts, made on first use for the server's version (see the module's
        docstring)."""
        if self._loaded is None:
            major = server_major(self._client)
            self._loaded = {
                name: self._client.register_script(source(name, major=major))
                for name in script_names()
            }
        return self._loaded

    def __call__(
        self, name: str, keys: list[str], args: list[Any], client: Any | None = None
    ) -> Any:
        """Run script ``name`` (optionally inside a pipeline given as ``client``)."""
        return self._scripts[name](keys=keys, args=args, client=client)

    @translated
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
