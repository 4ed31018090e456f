"""The transactional outbox: Redis writes a task body records, committed with its completion.

A body that appends to a list or bumps a counter directly does so again when
it runs again, and a body can run again after a SIGKILL: the worker may die
after the body ended and before its outcome reached Redis. Writes recorded in
an :class:`Outbox` instead travel with the body's completion and are applied
in the same Lua call that records it (``guard_exit.lua``, which includes
``_outbox.lua``), only when the body succeeded and only if no success of the
task is recorded yet. So they take effect once per task: a run killed before
its completion reached Redis committed nothing, a later run that finds the
success recorded does not run, and the same completion sent again (a lost
connection) applies nothing the second time.

Commands and arguments are checked when recorded, not when committed, so a
mistake fails the body at the line that made it. What goes over the wire is
JSON: the keys (``KEYS`` of the script) and ``[[command, argument, ...], ...]``
with every argument as a string.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from scheduler.errors import InvalidInputError

Value = str | int | float
"""What an effect may write: text or a number (sent as its decimal text)."""

MAX_BYTES = 64 * 1024
"""Keys and arguments of one task's effects, in UTF-8 bytes: they run in one Lua call."""

MAX_ITEMS = 1000
"""Values (or field/value, score/member pairs) in one command."""

_INT64 = (-(2**63), 2**63 - 1)
_MAX_SECONDS = 2**31 - 1
_VALUE = "a str, an int or a finite float (no bytes, bool or None: effects travel as JSON)"


class Outbox:
    """The effects one run of a task body recorded, in order.

    Task authors reach it as ``self.effects`` in a bound yardmaster task::

        @app.task(base=YardmasterTask, bind=True)
        def charge(self, order: str, cents: int) -> None:
            ...
            self.effects.incrby(f"orders:{order}:paid", cents)
            self.effects.rpush("audit", f"charged {order}")

    Each method raises :class:`~scheduler.errors.InvalidInputError` naming the
    command, the argument, its value and what is allowed, and when the effects
    would pass :data:`MAX_BYTES`.
    """

    __slots__ = ("_keys", "_ops", "_size")

    def __init__(self) -> None:
        self._keys: list[str] = []
        self._ops: list[list[str]] = []
        self._size = 0

    def add(self, command: str, key: str, *args: Value) -> None:
        """Record one command: ``add("RPUSH", "audit", "a", "b")``.

        ``command`` is one of :data:`COMMANDS` (any case); the typed methods
        below are the same thing with named arguments.
        """
        name = command.upper() if isinstance(command, str) else ""
        check = _CHECKS.get(name)
        if check is None:
            raise InvalidInputError(
                "effects command", command, "one of " + ", ".join(COMMANDS) + " (the outbox's list)"
            )
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"effects {name} key", key, "a non-empty str")
        words = check(name, key, args)
        size = len(key.encode()) + sum(len(w.encode()) for w in words) + len(name)
        if self._size + size > MAX_BYTES:
            raise InvalidInputError(
                "effects size",
                f"{self._size + size} bytes after {name} {key!r}",
                f"at most {MAX_BYTES} bytes of keys and arguments per task run "
                "(they are committed in one Lua call; write bulk data elsewhere)",
            )
        self._keys.append(key)
        self._ops.append([name, *words])
        self._size += size

    def rpush(self, key: str, *values: Value) -> None:
        """Append ``values`` to the list ``key``."""
        self.add("RPUSH", key, *values)

    def lpush(self, key: str, *values: Value) -> None:
        """Prepend ``values`` to the list ``key``."""
        self.add("LPUSH", key, *values)

    def sadd(self, key: str, *members: Value) -> None:
        """Add ``members`` to the set ``key``."""
        self.add("SADD", key, *members)

    def incrby(self, key: str, amount: int = 1) -> None:
        """Add ``amount`` to the integer at ``key``."""
        self.add("INCRBY", key, amount)

    def hset(self, key: str, mapping: Mapping[str, Value]) -> None:
        """Set the fields of the hash ``key`` from ``mapping``."""
        self.add("HSET", key, *_pairs("HSET", key, "mapping", mapping, flip=False))

    def set(self, key: str, value: Value, *, ex: int | None = None) -> None:
        """Set the string ``key`` to ``value``, expiring after ``ex`` seconds if given."""
        if ex is None:
            self.add("SET", key, value)
        else:
            self.add("SET", key, value, "EX", ex)

    def zadd(self, key: str, mapping: Mapping[str, float]) -> None:
        """Add members with their scores (``{member: score}``) to the sorted set ``key``."""
        self.add("ZADD", key, *_pairs("ZADD", key, "mapping", mapping, flip=True))

    def expire(self, key: str, seconds: int) -> None:
        """Let ``key`` expire ``seconds`` after the commit."""
        self.add("EXPIRE", key, seconds)

    def __len__(self) -> int:
        return len(self._ops)

    @property
    def size(self) -> int:
        """Bytes of keys and arguments recorded so far (see :data:`MAX_BYTES`)."""
        return self._size

    def wire(self) -> tuple[list[str], str]:
        """The keys (one per command, in order) and the commands as JSON, for ``_outbox.lua``."""
        return list(self._keys), json.dumps(self._ops, separators=(",", ":"))


def _pairs(name: str, key: str, field: str, mapping: Mapping[str, Any], *, flip: bool) -> list[Any]:
    if not isinstance(mapping, Mapping):
        raise InvalidInputError(f"effects {name} {key!r} {field}", mapping, "a mapping")
    out: list[Any] = []
    for k, v in mapping.items():
        out += (v, k) if flip else (k, v)
    return out


def _text(name: str, key: str, what: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    raise InvalidInputError(f"effects {name} {key!r} {what}", value, _VALUE)


def _count(name: str, key: str, args: Sequence[Any], what: str, per: int = 1) -> None:
    if not args or len(args) % per or len(args) > MAX_ITEMS * per:
        raise InvalidInputError(
            f"effects {name} {key!r} arguments", list(args), f"1 to {MAX_ITEMS} {what}"
        )


def _integer(name: str, key: str, what: str, value: Any, low: int, high: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(
            f"effects {name} {key!r} {what}", value, f"an int from {low} to {high}"
        )
    return str(value)


def _values(name: str, key: str, args: Sequence[Any]) -> list[str]:
    _count(name, key, args, "values")
    return [_text(name, key, f"value {i}", v) for i, v in enumerate(args)]


def _incrby(name: str, key: str, args: Sequence[Any]) -> list[str]:
    if len(args) != 1:
        raise InvalidInputError(f"effects {name} {key!r} arguments", list(args), "one amount")
    return [_integer(name, key, "amount", args[0], *_INT64)]


def _hset(name: str, key: str, args: Sequence[Any]) -> list[str]:
    _count(name, key, args, "field/value pairs", per=2)
    out = []
    for i in range(0, len(args), 2):
        out.append(_text(name, key, "field", args[i]))
        out.append(_text(name, key, f"value of {args[i]!r}", args[i + 1]))
    return out


def _set(name: str, key: str, args: Sequence[Any]) -> list[str]:
    if len(args) == 1:
        return [_text(name, key, "value", args[0])]
    if len(args) == 3 and isinstance(args[1], str) and args[1].upper() == "EX":
        seconds = _integer(name, key, "ex", args[2], 1, _MAX_SECONDS)
        return [_text(name, key, "value", args[0]), "EX", seconds]
    raise InvalidInputError(
        f"effects {name} {key!r} arguments", list(args), "a value, or a value, 'EX' and seconds"
    )


def _zadd(name: str, key: str, args: Sequence[Any]) -> list[str]:
    _count(name, key, args, "score/member pairs", per=2)
    out = []
    for i in range(0, len(args), 2):
        score, member = args[i], args[i + 1]
        if not _finite(score):
            raise InvalidInputError(
                f"effects {name} {key!r} score of {member!r}", score, "a finite int or float"
            )
        out.append(repr(float(score)))
        out.append(_text(name, key, "member", member))
    return out


def _finite(score: Any) -> bool:
    if isinstance(score, bool) or not isinstance(score, int | float):
        return False
    try:
        return math.isfinite(float(score))
    except OverflowError:  # an int past the float range
        return False


def _expire(name: str, key: str, args: Sequence[Any]) -> list[str]:
    if len(args) != 1:
        raise InvalidInputError(f"effects {name} {key!r} arguments", list(args), "one seconds")
    return [_integer(name, key, "seconds", args[0], 1, _MAX_SECONDS)]


_CHECKS: dict[str, Callable[[str, str, Sequence[Any]], list[str]]] = {
    "EXPIRE": _expire,
    "HSET": _hset,
    "INCRBY": _incrby,
    "LPUSH": _values,
    "RPUSH": _values,
    "SADD": _values,
    "SET": _set,
    "ZADD": _zadd,
}

COMMANDS = tuple(sorted(_CHECKS))
"""The commands an outbox takes (``_outbox.lua`` applies exactly these)."""
