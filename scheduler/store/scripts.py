"""Loads the Lua scripts shipped beside this module, once per client.

Every ``lua/*.lua`` file is a script, named by its file name, except those
whose name starts with ``_``: they are includes, pulled into a script by a
``-- @include NAME`` line (each at most once per script, the first line that
names it). Includes are expanded when the script is loaded, so they cost
nothing when it runs.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from redis import Redis
from redis.commands.core import Script

from scheduler.store.connection import translated

INCLUDE = re.compile(r"^[ \t]*-- @include (\w+)$", re.M)


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


def source(name: str) -> str:
    """A script's Lua text, with each ``-- @include NAME`` line replaced by ``NAME.lua``'s."""
    seen: set[str] = set()

    def expand(text: str) -> str:
        def include(match: re.Match[str]) -> str:
            part = match.group(1)
            if part in seen:
                return f"-- ({part} included above)"
            seen.add(part)
            return expand(_text(part)).rstrip("\n")

        return INCLUDE.sub(include, text)

    return expand(_text(name))


class Scripts:
    """Registered :class:`redis.commands.core.Script` objects, one per Lua file.

    Each call runs with EVALSHA and falls back to EVAL after a Redis restart
    flushed the script cache.
    """

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._scripts: dict[str, Script] = {
            name: client.register_script(source(name)) for name in script_names()
        }

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
