"""What the command line says when Redis cannot be reached or refuses a command.

The runner (:func:`scheduler.cli.main`) asks :func:`explain` about any error a
command did not handle; for a connection, authentication, TLS or timeout
failure (which the store classifies: :func:`scheduler.store.connection.diagnose`)
it gets two lines, the first naming the Redis (its password
hidden) and what went wrong, the second what to check. Imported only once a
command has failed, so a command that never meets Redis does not load it.
"""

from __future__ import annotations

from scheduler.redaction import redact_url
from scheduler.store.connection import diagnose

URL_HINT = "YM_REDIS_URL (or a running `yardmaster up` when it is unset)"


def explain(exc: BaseException, url: str, timeout: float | None) -> tuple[str, str] | None:
    """Two lines about ``exc`` when it says that Redis cannot be reached or refuses;
    None for any other error (the runner then lets it through).

    Args:
        exc: What the command raised.
        url: The Redis URL the command used ('' when it is not known).
        timeout: Seconds the command waited for Redis (``YM_CLIENT_TIMEOUT``), if known.
    """
    found = diagnose(exc)
    if found is None:
        return None
    kind, reason = found
    where = f"Redis at {redact_url(url)}" if url else "Redis"
    if kind == "sentinel":
        return (
            f"{where}: {reason}",
            "YM_SENTINEL_MASTER names the master (default mymaster); see docs/reliability.md, "
            '"Failover"',
        )
    if kind == "noauth":
        return (
            f"{where} requires a password",
            "put it in YM_REDIS_URL: redis://:PASSWORD@HOST:PORT/0 "
            "(redis://USER:PASSWORD@... for an ACL user)",
        )
    if kind == "auth":
        return (
            f"Authentication refused by {where} ({reason})",
            f"check the user and password in {URL_HINT}, and the server's requirepass or ACL",
        )
    if kind == "noperm":
        return (
            f"{where} refused a command to this user ({reason})",
            "check the ACL of the user in YM_REDIS_URL (docs/security.md lists what it needs)",
        )
    if kind == "readonly":
        return (
            f"{where} is a read-only replica",
            "point YM_REDIS_URL at the primary (or at Sentinel's current primary)",
        )
    if kind == "loading":
        return (f"{where} is loading its data set", "try again once it has loaded")
    if kind == "tls":
        return (
            f"the TLS handshake with {where} failed ({reason})",
            "check that the server speaks TLS on that port (a plain-TCP Redis needs redis://) "
            "and the certificate options (docs/security.md)",
        )
    if kind == "timeout":
        limit = f" within {timeout:g}s" if timeout else ""
        return (
            f"{where} did not answer{limit}",
            f"check the host and port in {URL_HINT}, the network between, and the server's "
            "load (YM_CLIENT_TIMEOUT says how long to wait)",
        )
    return (
        f"cannot reach {where} ({reason})",
        f"check {URL_HINT}, and that Redis runs there",
    )
