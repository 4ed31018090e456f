"""Retry policies: how many attempts a task gets, how long it waits between them, and
which exceptions earn another attempt.

Pure: the worker hook asks a policy whether a failure retries and how long the
task waits (its not-before time); the task then goes back to pending and through
the strategy again (see ``docs/retries-and-cancellation.md``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from scheduler.errors import InvalidInputError

MAX_ATTEMPTS = 1000
_CLASS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
MAX_DELAY = 7 * 86400.0

RETRY_FIELDS = {
    "max_attempts": f"an integer from 1 to {MAX_ATTEMPTS} (1 = no retries)",
    "backoff": "seconds before the first retry, from 0 to 604800",
    "backoff_max": "the longest wait between attempts in seconds, from 0 to 604800",
    "jitter": "a share from 0 to 1 by which each wait is randomly stretched",
    "retry_on": "a list of exception class names (bare or module-qualified), e.g. ['IOError']",
}


class RetryPolicy(BaseModel):
    """When and how a failed task is tried again.

    The wait before attempt ``k + 1`` is ``min(backoff_max, backoff * 2 ** (k - 1))``,
    stretched by a random share of up to ``jitter`` (and still capped), so it is never
    shorter than the exponential step: jitter spreads retries out, it never brings
    one forward.

    Attributes:
        max_attempts: Attempts in all, the first included (1 = never retry).
        backoff: Seconds before the first retry.
        backoff_max: Cap on any wait.
        jitter: Share, 0..1, by which each wait is randomly stretched.
        retry_on: Exception class names that retry; a name matches the raised
            class or any of its bases, bare (``OSError``) or qualified
            (``builtins.OSError``, ``workers.demo_tasks.DemoError``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    max_attempts: int = Field(default=1, ge=1, le=MAX_ATTEMPTS, strict=True)
    backoff: float = Field(default=1.0, ge=0.0, le=MAX_DELAY, allow_inf_nan=False)
    backoff_max: float = Field(default=600.0, ge=0.0, le=MAX_DELAY, allow_inf_nan=False)
    jitter: float = Field(default=0.1, ge=0.0, le=1.0, allow_inf_nan=False)
    retry_on: tuple[str, ...] = ("Exception",)

    @field_validator("retry_on", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("give a list of names, not one string")
        if isinstance(value, list | tuple):
            for name in value:
                if not isinstance(name, str) or len(name) > 200 or not _CLASS_NAME.match(name):
                    raise ValueError(f"{name!r} is not an exception class name")
            return tuple(value)
        return value

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after attempt ``attempt`` (1-based) failed."""
        step = min(self.backoff_max, self.backoff * 2.0 ** max(0, attempt - 1))
        stretch = (rng or random).random() * self.jitter if self.jitter else 0.0
        return min(self.backoff_max, step * (1.0 + stretch)) if step else 0.0

    def retries(self, exc: BaseException) -> bool:
        """Whether ``exc`` is one of the exception types that earn another attempt."""
        wanted = set(self.retry_on)
        for klass in type(exc).__mro__:
            if klass.__name__ in wanted or f"{klass.__module__}.{klass.__qualname__}" in wanted:
                return True
        return False

    def as_json(self) -> dict[str, Any]:
        """JSON-ready form (what travels in the task record and message headers)."""
        return self.model_dump(mode="json")


def parse_retry(value: Any, *, field: str = "retry") -> RetryPolicy:
    """Validate a retry policy given as a :class:`RetryPolicy` or a mapping.

    Raises:
        InvalidInputError: Naming ``field.<name>``, the value and what is allowed.
    """
    if isinstance(value, RetryPolicy):
        return value
    if not isinstance(value, Mapping):
        allowed = "a RetryPolicy or an object with " + ", ".join(RETRY_FIELDS)
        raise InvalidInputError(field, value, allowed)
    try:
        return RetryPolicy.model_validate(dict(value))
    except ValidationError as exc:
        raise retry_error(exc, value, field) from None


def retry_error(exc: ValidationError, value: Any, field: str) -> InvalidInputError:
    """An :class:`InvalidInputError` for the first problem of a retry policy."""
    first = exc.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else "?"
    allowed = RETRY_FIELDS.get(name, "no such field; fields are: " + ", ".join(RETRY_FIELDS))
    problem = str(first["msg"]).removeprefix("Value error, ")
    shown = value.get(name) if isinstance(value, Mapping) else first.get("input")
    return InvalidInputError(f"{field}.{name}", shown, allowed, problem=problem)
