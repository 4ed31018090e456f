"""Who may call the API: bearer tokens with scopes, checked in constant time, and a
request rate per token.

Scopes are ordered: ``read`` (inspect), ``submit`` (also submit and cancel),
``admin`` (also steer the strategy). Tokens come from ``YM_API_TOKENS``; the
presented secret's SHA-256 digest is compared with :func:`hmac.compare_digest`
against that of every configured token, so the time taken does not depend on
which one matched, how much of it did, or how long it is. Only a token's name
ever reaches a log or a record.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from scheduler.api.errors import ApiError
from scheduler.settings import Settings

log = logging.getLogger("yardmaster.api")

Scope = Literal["read", "submit", "admin"]
_RANK: dict[str, int] = {"read": 0, "submit": 1, "admin": 2}
_CHALLENGE = {"WWW-Authenticate": "Bearer"}

bearer = HTTPBearer(
    auto_error=False,
    description="A token from YM_API_TOKENS: `Authorization: Bearer <token>`.",
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: the token's name (never its secret) and its scope."""

    name: str
    scope: Scope


class RateLimiter:
    """A token bucket per key: ``rate`` requests per second, ``burst`` at once.

    The buckets live in this API process (each API process limits on its own).
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one request of ``key``; 0 when allowed, else seconds until one is."""
        now = self._clock()
        with self._lock:
            level, seen = self._buckets.get(key, (self.burst, now))
            level = min(self.burst, level + (now - seen) * self.rate)
            if level >= 1.0:
                self._buckets[key] = (level - 1.0, now)
                return 0.0
            self._buckets[key] = (level, now)
            return (1.0 - level) / self.rate


class Guard:
    """Authenticates requests and applies the rate limit.

    Args:
        settings: ``api_auth``, ``api_tokens``, ``api_rate`` and ``api_burst`` are used.
    """

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.api_auth
        # Digests, so that the comparison takes the same time whatever the lengths.
        self._tokens = [
            (_digest(t.token.get_secret_value()), Principal(t.name, t.scope))
            for t in settings.api_tokens
        ]
        self.limiter = RateLimiter(settings.api_rate, settings.api_burst)

    def identify(self, presented: str) -> Principal | None:
        """The principal whose secret equals ``presented``, compared in constant time."""
        given = _digest(presented)
        found: Principal | None = None
        for secret, principal in self._tokens:
            if hmac.compare_digest(given, secret):
                found = principal
        return found

    def check(
        self, request: Request, creds: HTTPAuthorizationCredentials | None, needed: Scope
    ) -> Principal:
        """The caller, if known, allowed ``needed`` and within its rate.

        Raises:
            ApiError: 401 (no or unknown token), 403 (scope too low), 429 (rate).
        """
        if not self.enabled:
            client = request.client.host if request.client else "local"
            self._limit(f"ip:{client}")
            return Principal("anonymous", "admin")
        principal = None if creds is None else self.identify(creds.credentials)
        if principal is None:
            client = request.client.host if request.client else "unknown"
            self._limit(f"ip:{client}")  # guessing is rate limited too
            message = (
                "no bearer token given; send `Authorization: Bearer <token>`"
                if creds is None
                else "the bearer token is not one the API knows"
            )
            raise ApiError(401, "unauthorized", message, field="Authorization", headers=_CHALLENGE)
        self._limit(f"token:{principal.name}")
        if _RANK[principal.scope] < _RANK[needed]:
            raise ApiError(
                403,
                "forbidden",
                f"token {principal.name!r} has scope {principal.scope!r}; this needs {needed!r}",
                field="Authorization",
            )
        return principal

    def _limit(self, key: str) -> None:
        wait = self.limiter.take(key)
        if wait > 0:
            retry = max(1, int(wait + 0.999))
            raise ApiError(
                429,
                "rate_limited",
                f"more than {self.limiter.rate:g} requests per second (burst "
                f"{self.limiter.burst:g}); retry after {retry}s",
                headers={"Retry-After": str(retry)},
            )


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def require(needed: Scope) -> Callable[..., Principal]:
    """A dependency that admits callers with at least scope ``needed``."""

    def dependency(
        request: Request,
        creds: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
    ) -> Principal:
        guard: Guard = request.app.state.guard
        return guard.check(request, creds, needed)

    return dependency
