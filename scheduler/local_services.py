"""The services of a local cluster beside the dispatcher and the workers: the HTTP
API's admin token for one run, and waiting until the API and Flower answer."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from scheduler.errors import YardmasterError
from scheduler.settings import API_AUTH_OFF_WARNING as AUTH_OFF_WARNING
from scheduler.settings import Settings

API_TOKEN_FILE = "api-token"  # noqa: S105 (a file name, not a secret)

__all__ = ["API_TOKEN_FILE", "AUTH_OFF_WARNING", "api_token_env", "wait_api", "wait_flower"]


def api_token_env(settings: Settings, log_dir: Path) -> dict[str, str]:
    """Environment for the API process of a local cluster.

    With auth on and no ``YM_API_TOKENS`` configured, one admin token is made
    for this run and written, readable by the owner only, to
    ``log_dir/api-token`` (it is never printed). Otherwise nothing changes.
    """
    if not settings.api_auth or settings.api_tokens:
        return {}
    token = secrets.token_urlsafe(32)
    path = log_dir / API_TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return {"YM_API_TOKENS": json.dumps([{"name": "up-admin", "scope": "admin", "token": token}])}


def wait_api(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Block until the API answers its liveness probe.

    Raises:
        YardmasterError: It exited, or did not answer within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise YardmasterError(
                f"the HTTP API exited with code {proc.returncode} (is its port taken? use "
                f"--api-port or --no-api); see {log}"
            )
        try:
            with urllib.request.urlopen(url + "/healthz/live", timeout=1) as reply:  # noqa: S310
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise YardmasterError(f"the HTTP API did not answer within {timeout:g}s; see {log}")


def wait_flower(
    port: int, workers: int, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> dict[str, Any]:
    """Wait until Flower's API lists ``workers`` workers; returns its /api/workers answer."""
    url = f"http://127.0.0.1:{port}/api/workers?refresh=1"
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise YardmasterError(f"flower exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                found: dict[str, Any] = json.loads(reply.read())
            if len(found) >= workers:
                return found
            last = f"it lists {len(found)} of {workers} workers"
        except (OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.5)
    raise YardmasterError(f"Flower on port {port} was not ready within {timeout:g}s: {last}")
