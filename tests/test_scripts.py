"""The Lua scripts: found by file name, includes expanded once, arguments named at the top."""

from __future__ import annotations

import re
from importlib import resources

from redis import Redis

from scheduler.store.scripts import INCLUDE, Scripts, script_names, source

LUA = resources.files("scheduler.store").joinpath("lua")
FILES = sorted(entry.name for entry in LUA.iterdir() if entry.name.endswith(".lua"))
BY_POSITION = re.compile(r"\b(KEYS|ARGV)\[\d+\]")


def test_every_lua_file_not_named_with_an_underscore_is_a_script_and_redis_compiles_it(
    redis_server,
):
    names = script_names()
    assert names == sorted(f[:-4] for f in FILES if not f.startswith("_"))
    assert "finish" in names
    assert not any(name.startswith("_") for name in names), "includes are not scripts"
    client = Redis.from_url(redis_server.url, decode_responses=True)
    scripts = Scripts(client)
    for name in names:
        text = scripts.source(name)
        assert not INCLUDE.search(text), f"{name}: an include line was left unexpanded"
        assert client.script_load(text) == scripts.sha(name), f"{name} does not compile"


def test_every_include_is_used_and_expanded_once_per_script():
    includes = {f[:-4] for f in FILES if f.startswith("_")}
    used: set[str] = set()
    for name in script_names():
        text = source(name)
        for include in includes:
            defined = re.findall(r"^local function \w+", (LUA / f"{include}.lua").read_text(), re.M)
            for line in defined:
                count = len(re.findall(rf"^\s*{re.escape(line)}\b", text, re.M))
                assert count <= 1, f"{name} defines {line!r} {count} times"
                if count:
                    used.add(include)
    assert used == includes, f"includes no script uses: {sorted(includes - used)}"


def test_every_script_header_lists_its_keys_argv_and_replies():
    for name in script_names():
        header = []
        for line in (LUA / f"{name}.lua").read_text().splitlines():
            if not line.startswith("--"):
                break
            header.append(line)
        text = "\n".join(header)
        for word in ("KEYS:", "ARGV:", "Return"):
            assert word in text, f"{name}.lua's header does not say {word}"


def test_scripts_name_their_keys_and_arguments_before_they_use_them():
    for name in FILES:
        for number, line in enumerate((LUA / name).read_text().splitlines(), 1):
            if line.startswith("--") or not BY_POSITION.search(line):
                continue
            assert line.startswith("local "), f"{name}:{number} uses a key or argument by position"
