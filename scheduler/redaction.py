"""Keep secrets out of messages and logs: Redis URLs with passwords, API tokens."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

HIDDEN = "<hidden>"


def redact_url(url: str) -> str:
    """``url`` with its password (and any query, which may name key files) replaced.

    ``rediss://ym:s3cret@host:6380/0?ssl_ca_certs=/ca.pem`` becomes
    ``rediss://ym:<hidden>@host:6380/0``; text that is not a URL is returned as is.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return HIDDEN
    if not parts.scheme or parts.password is None:
        return urlunsplit(parts._replace(query="")) if parts.scheme else url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{user}:{HIDDEN}@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
