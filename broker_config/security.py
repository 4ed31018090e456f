"""TLS for the Celery broker connection, read from the same ``rediss://`` URL as the store.

redis-py reads ``ssl_cert_reqs``, ``ssl_ca_certs``, ``ssl_certfile`` and
``ssl_keyfile`` from the URL's query, and verifies the server's certificate
unless told otherwise. kombu reads the same query, but with a bare
``rediss://`` it falls back to *not verifying* it. So the broker's TLS options
are taken from the URL here and handed to Celery as ``broker_use_ssl``,
verifying by default. One ``YM_REDIS_URL`` then configures both connections
alike (the workers' state store reads the broker URL, query included).
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import parse_qs, urlsplit

from scheduler.errors import SettingsError

_CERT_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}
_FILES = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")


def broker_connection(redis_url: str) -> dict[str, Any]:
    """Celery settings for the broker connection: ``broker_url`` and, for ``rediss://``,
    ``broker_use_ssl``.

    Raises:
        SettingsError: ``ssl_cert_reqs`` is not one of required, optional, none.
    """
    parts = urlsplit(redis_url)
    if parts.scheme != "rediss":
        return {"broker_url": redis_url}
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    reqs = query.get("ssl_cert_reqs", "required").lower()
    if reqs not in _CERT_REQS:
        raise SettingsError("YM_REDIS_URL?ssl_cert_reqs", reqs, "one of: " + ", ".join(_CERT_REQS))
    options: dict[str, Any] = {"ssl_cert_reqs": _CERT_REQS[reqs]}
    options.update({key: query[key] for key in _FILES if key in query})
    return {"broker_url": redis_url, "broker_use_ssl": options}
