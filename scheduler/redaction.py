"""Keep secrets out of messages, logs and pages: Redis URLs with passwords, API tokens,
secret-named task arguments."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HIDDEN = "<hidden>"


def redact_url(url: str) -> str:
    """``url`` with its password (and any query, which may name key files) replaced.

    ``rediss://ym:s3cret@host:6380/0?ssl_ca_certs=/ca.pem`` becomes
    ``rediss://ym:<hidden>@host:6380/0``; text that is not a URL is returned as is.
    A Sentinel URL (``sentinel://H:P;sentinel://H:P/0``) is redacted entry by entry.
    """
    if ";" in url and "://" in url:  # sentinel://...;sentinel://... and the backend's form
        return ";".join(redact_url(entry) for entry in url.split(";"))
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


# What the dashboard shows of a task's arguments and result: values under a key
# that names a secret are hidden, credentials in URLs are hidden, long strings
# and containers are cut (a page is not the place for a megabyte payload).
SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[_-]?key|private[_-]?key|auth|credential"
    r"|cookie|session|signature|bearer",
    re.IGNORECASE,
)
_URL_CREDENTIALS = re.compile(r"([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.IGNORECASE)
MAX_TEXT = 200
MAX_ITEMS = 50
MAX_DEPTH = 6


def redact_text(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` with URL passwords hidden, cut to ``limit`` characters (the cut is said)."""
    text = _URL_CREDENTIALS.sub(rf"\g<1>{HIDDEN}@", text)
    if len(text) > limit:
        return f"{text[:limit]}… ({len(text)} characters)"
    return text


def redact_value(value: Any, depth: int = 0) -> Any:
    """A JSON value fit to show: secrets hidden, long parts cut.

    The rule: a dict entry whose key matches :data:`SECRET_KEY` (password,
    secret, token, api_key, auth, credential, cookie, session, signature ...)
    shows ``<hidden>`` whatever its value; every string has URL passwords
    hidden and is cut to :data:`MAX_TEXT` characters; lists and dicts show
    their first :data:`MAX_ITEMS` items, and nesting deeper than
    :data:`MAX_DEPTH` shows ``…``. Positional arguments have no names, so only
    the string rules protect them.
    """
    if depth > MAX_DEPTH:
        return "…"
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for i, (key, item) in enumerate(value.items()):
            if i == MAX_ITEMS:
                out["…"] = f"{len(value) - MAX_ITEMS} more"
                break
            name = str(key)
            out[name] = HIDDEN if SECRET_KEY.search(name) else redact_value(item, depth + 1)
        return out
    if isinstance(value, list):
        items = [redact_value(item, depth + 1) for item in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"… {len(value) - MAX_ITEMS} more")
        return items
    return value
