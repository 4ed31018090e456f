"""What the command line says when Redis cannot be reached or refuses a command.

The runner (:func:`scheduler.cli.main`) asks :func:`explain` about any error a
command did not handle; for redis-py's connection, authentication, TLS and
timeout errors it gets two lines, the first naming the Redis (its password
hidden) and what went wrong, the second what to check. Imported only once a
command has failed, so a command that never meets Redis does not load it.
"""

from __future__ import annotations

import ssl

from redis import exceptions as rx

from scheduler.redaction import redact_url

URL_HINT = "YM_REDIS_URL (or a running `yardmaster up` when it is unset)"


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during, innermost last."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _tls_failure(exc: BaseException) -> str | None:
    """What went wrong in a TLS handshake somewhere in ``exc``'s chain (None: no TLS failure)."""
    for e in _chain(exc):
        if isinstance(e, ssl.SSLError):
            return str(getattr(e, "reason", None) or e).lower().replace("_", " ")
        if "handshake" in str(e):
            return "no TLS answer in time"
    return None


def _reason(exc: BaseException) -> str:
    """The shortest true account of ``exc``: the operating system's words when there are
    some (``connection refused``), else redis-py's message on one line."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.strerror:
            return e.strerror.lower()
    return " ".join(str(exc).split()).rstrip(".")


def explain(exc: BaseException, url: str, timeout: float | None) -> tuple[str, str] | None:
    """Two lines about ``exc`` when it says that Redis cannot be reached or refuses;
    None for any other error (the runner then lets it through).

    Args:
        exc: What the command raised.
        url: The Redis URL the command used ('' when it is not known).
        timeout: Seconds the command waited for Redis (``YM_CLIENT_TIMEOUT``), if known.
    """
    where = f"Redis at {redact_url(url)}" if url else "Redis"
    text = str(exc)
    if isinstance(exc, rx.AuthenticationError | rx.AuthenticationWrongNumberOfArgsError):
        if "NOAUTH" in text or "must be called with the client already authenticated" in text:
            return (
                f"{where} requires a password",
                "put it in YM_REDIS_URL: redis://:PASSWORD@HOST:PORT/0 "
                "(redis://USER:PASSWORD@... for an ACL user)",
            )
        return (
            f"Authentication refused by {where} ({_reason(exc)})",
            f"check the user and password in {URL_HINT}, and the server's requirepass or ACL",
        )
    if isinstance(exc, rx.NoPermissionError):
        return (
            f"{where} refused a command to this user ({_reason(exc)})",
            "check the ACL of the user in YM_REDIS_URL (docs/security.md lists what it needs)",
        )
    if isinstance(exc, rx.ReadOnlyError):
        return (
            f"{where} is a read-only replica",
            "point YM_REDIS_URL at the primary (or at Sentinel's current primary)",
        )
    if isinstance(exc, rx.BusyLoadingError):
        return (f"{where} is loading its data set", "try again once it has loaded")
    tls = _tls_failure(exc) if isinstance(exc, rx.ConnectionError | rx.TimeoutError) else None
    if tls is not None:
        return (
            f"the TLS handshake with {where} failed ({tls})",
            "check that the server speaks TLS on that port (a plain-TCP Redis needs redis://) "
            "and the certificate options (docs/security.md)",
        )
    if isinstance(exc, rx.TimeoutError):
        limit = f" within {timeout:g}s" if timeout else ""
        return (
            f"{where} did not answer{limit}",
            f"check the host and port in {URL_HINT}, the network between, and the server's "
            "load (YM_CLIENT_TIMEOUT says how long to wait)",
        )
    if isinstance(exc, rx.ConnectionError):
        return (
            f"cannot reach {where} ({_reason(exc)})",
            f"check {URL_HINT}, and that Redis runs there",
        )
    return None
