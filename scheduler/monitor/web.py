"""The monitor over HTTP: a FastAPI router, and a small app that serves only it.

Routes (relative to where the router is mounted):

- ``GET /metrics``: Prometheus text format;
- ``GET /dashboard``: the live page (plain HTML and JavaScript, no build step);
- ``GET /monitor/snapshot``: the whole snapshot as JSON (what the page polls);
- ``GET /monitor/anomalies``: active and recently cleared anomalies;
- ``GET /monitor/health``: the health score; status 503 when unhealthy, so a
  load balancer or an orchestrator can use it as a probe.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

import msgspec
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from scheduler.monitor.monitor import Monitor
from scheduler.monitor.prometheus import CONTENT_TYPE, render
from scheduler.monitor.snapshot import dump


def dashboard_html() -> str:
    """The dashboard page, shipped inside the package."""
    return (files("scheduler.monitor") / "dashboard.html").read_text(encoding="utf-8")


def build_router(monitor: Monitor) -> APIRouter:
    """The monitor's routes, to mount into any FastAPI app.

    The handlers poll the records when the latest snapshot is older than
    ``YM_MONITOR_INTERVAL``; call ``monitor.start()`` as well when the
    history and the backlog trend should advance between requests.
    """
    router = APIRouter()
    page = dashboard_html()

    @router.get("/metrics", response_class=PlainTextResponse, tags=["monitor"])
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(render(monitor.current()), media_type=CONTENT_TYPE)

    @router.get("/dashboard", response_class=HTMLResponse, tags=["monitor"])
    def dashboard() -> HTMLResponse:
        return HTMLResponse(page)

    @router.get("/monitor/snapshot", tags=["monitor"])
    def snapshot() -> Response:
        return Response(monitor.current().to_json(), media_type="application/json")

    @router.get("/monitor/anomalies", tags=["monitor"])
    def anomalies() -> Response:
        snap = monitor.current().as_dict()
        body = {
            "time": snap["time"],
            "active": snap["anomalies"],
            "cleared": snap["cleared_anomalies"],
        }
        return Response(dump(body), media_type="application/json")

    @router.get("/monitor/health", tags=["monitor"])
    def health() -> Response:
        h = monitor.current().health
        status = 503 if h.status == "unhealthy" else 200
        return Response(
            dump(msgspec.to_builtins(h)), status_code=status, media_type="application/json"
        )

    return router


def build_app(monitor: Monitor) -> FastAPI:
    """An app serving only the monitor (``yardmaster monitor``); it polls in the background."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        monitor.start()
        try:
            yield
        finally:
            monitor.stop()

    app = FastAPI(title="yardmaster monitor", lifespan=lifespan)
    app.include_router(build_router(monitor))

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("dashboard")

    return app
