"""A live stack for the HTTP API tests: a private Redis, a dispatcher, a worker and
``yardmaster api`` (uvicorn) as real processes, reached over real HTTP."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from scheduler.embedded import EmbeddedRedis
from tests.conftest import Cluster

TOKENS = {
    "admin": "adm-" + secrets.token_hex(16),
    "submit": "sub-" + secrets.token_hex(16),
    "read": "rd-" + secrets.token_hex(16),
}


def tokens_json() -> str:
    return json.dumps(
        [{"name": f"{scope}-user", "scope": scope, "token": t} for scope, t in TOKENS.items()]
    )


def auth(scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[scope]}"}


class ApiStack:
    """The cluster plus one or more API processes; ``http`` talks to the first."""

    def __init__(self, redis: EmbeddedRedis, log_dir: Path, **settings: Any) -> None:
        self.cluster = Cluster(redis, log_dir, api_tokens=tokens_json(), **settings)
        self.log_dir = log_dir
        self.url = ""
        self.http: httpx.Client | None = None

    def start(self, worker_slots: int = 2) -> ApiStack:
        self.cluster.dispatcher()
        self.cluster.worker("w1@api", slots=worker_slots)
        self.url = self.api("api")
        self.http = httpx.Client(base_url=self.url, timeout=60)
        return self

    def api(self, name: str, **extra_env: str) -> str:
        """Start a ``yardmaster api`` process; returns its base URL once it answers."""
        return self.cluster.api(name=name, loglevel="DEBUG", **extra_env)

    def counters(self) -> dict[str, int]:
        return self.cluster.store.events.counters()

    def pending_ids(self) -> list[str]:
        store = self.cluster.store
        return list(store.client.zrange(store.keys.pending, 0, -1))

    def wait_idle(self, timeout: float = 60) -> None:
        """Until nothing is pending, dispatched or running."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            c = self.counters()
            done = sum(c.get(s, 0) for s in ("succeeded", "failed", "cancelled", "expired"))
            if done >= c.get("submitted", 0):
                return
            time.sleep(0.05)
        raise TimeoutError(f"still busy after {timeout}s: {self.counters()}")

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
        self.cluster.stop()


@contextlib.contextmanager
def live_stack(log_dir: Path, worker_slots: int = 2, **settings: Any) -> Iterator[ApiStack]:
    """A started stack, stopped on exit; API limits kept small for the limit tests."""
    limits: dict[str, Any] = {
        "api_max_body": 65536,
        "api_max_args": 4096,
        "api_max_batch": 50,
        "api_rate": 1000,
        "api_burst": 1000,
    }
    redis = EmbeddedRedis().start()
    stack = ApiStack(redis, log_dir, **{**limits, **settings})
    try:
        yield stack.start(worker_slots)
    finally:
        stack.stop()
        redis.stop()
