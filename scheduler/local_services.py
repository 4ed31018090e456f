"""The HTTP API as part of ``yardmaster up``: its token for the run, and waiting for it."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from scheduler.errors import YardmasterError
from scheduler.settings import API_AUTH_OFF_WARNING as AUTH_OFF_WARNING
from scheduler.settings import Settings

API_TOKEN_FILE = "api-token"  # noqa: S105 (a file name, not a secret)

__all__ = ["API_TOKEN_FILE", "AUTH_OFF_WARNING", "api_token_env", "wait_api"]


def api_token_env(settings: Settings, log_dir: Path) -> dict[str, str]:
    """Environment for the API process of ``up``.

    With auth on and no ``YM_API_TOKENS`` configured, ``up`` makes one admin
    token for this run and writes it, readable by the owner only, to
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


def wait_api(url: str, proc: subprocess.Popen[bytes], log_dir: Path, timeout: float) -> None:
    """Block until the API answers its liveness probe.

    Raises:
        YardmasterError: It exited, or did not answer within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise YardmasterError(
                f"the HTTP API exited with code {proc.returncode} (is its port taken? use "
                f"--api-port or --no-api); see {log_dir}/api.log"
            )
        try:
            with urllib.request.urlopen(url + "/healthz/live", timeout=1) as reply:  # noqa: S310
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise YardmasterError(f"the HTTP API did not answer within {timeout:g}s; see {log_dir}/api.log")
