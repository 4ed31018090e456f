"""The API factory on its own: extra routers are mounted, readiness says what is missing,
a lost Redis answers 503, and the rate limiter and token matching behave exactly."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn
from fastapi import APIRouter, FastAPI

from scheduler.api import create_app
from scheduler.api.security import Guard, Principal, RateLimiter
from scheduler.embedded import free_port
from scheduler.settings import load_settings
from tests.api_live import TOKENS, auth, tokens_json


@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port, in a thread, over real HTTP."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _settings(url: str, **extra):
    return load_settings(redis_url=url, namespace="fac", api_tokens=tokens_json(), **extra)


def test_extra_routers_are_mounted_beside_the_api_and_in_its_document(redis_server):
    extra = APIRouter()

    @extra.get("/metrics")
    def metrics() -> dict[str, int]:
        return {"probe": 1}

    with serve(create_app(_settings(redis_server.url), extra_routers=[extra])) as url:
        assert httpx.get(url + "/metrics").json() == {"probe": 1}
        assert "/metrics" in httpx.get(url + "/openapi.json").json()["paths"]
        assert httpx.get(url + "/v1/workers").status_code == 401
        assert httpx.get(url + "/v1/workers", headers=auth("read")).json() == {"workers": []}


def test_readiness_names_what_is_missing_and_a_lost_redis_answers_503(redis_server):
    with serve(create_app(_settings(redis_server.url))) as url:
        empty = httpx.get(url + "/healthz/ready")
        assert empty.status_code == 503
        assert empty.json() == {
            "ready": False,
            "redis": True,
            "dispatcher_leader": False,
            "workers": 0,
        }

        redis_server.stop()
        gone = httpx.get(url + "/healthz/ready", timeout=30)
        assert gone.status_code == 503
        assert gone.json()["redis"] is False
        lost = httpx.get(url + "/v1/workers", headers=auth("read"), timeout=30)
        assert lost.status_code == 503
        assert lost.json()["code"] == "unavailable"
        assert httpx.get(url + "/healthz/live").status_code == 200


def test_the_rate_limiter_refills_at_its_rate_up_to_its_burst():
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == 0.5  # one request every 0.5 s at 2/s
    assert limiter.take("b") == 0.0  # another key has its own bucket
    now[0] += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    now[0] += 100.0  # a long pause refills only up to the burst
    assert [limiter.take("a") for _ in range(4)][-1] > 0


def test_a_token_matches_only_exactly_and_only_its_name_is_known(redis_server):
    guard = Guard(_settings(redis_server.url))
    assert guard.identify(TOKENS["admin"]) == Principal("admin-user", "admin")
    assert guard.identify(TOKENS["read"]) == Principal("read-user", "read")
    assert guard.identify(TOKENS["admin"][:-1]) is None
    assert guard.identify(TOKENS["admin"] + "x") is None
    assert guard.identify("") is None
    shown = repr(_settings(redis_server.url))
    assert not any(secret in shown for secret in TOKENS.values())
