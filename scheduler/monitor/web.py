"""The monitor over HTTP: a FastAPI router, and a small app that serves only it.

Routes (relative to where the router is mounted):

- ``GET /metrics``: Prometheus text format;
- ``GET /dashboard``: the live page (plain HTML and JavaScript, no build step);
- ``GET /monitor/snapshot``: the whole snapshot as JSON (what the page polls);
- ``GET /monitor/anomalies``: active and recently cleared anomalies;
- ``GET /monitor/health``: the health score; status 503 when unhealthy, so a
  load balancer or an orchestrator can use it as a probe;
- ``GET /monitor/config``: what the page needs to know of its server: where
  the HTTP API's routes are (``api``: a path relative to the page, null when
  this server has none), which the page calls for a strategy rollback;
- the explorer's routes of :mod:`.explorer_routes` (series, tasks, workers,
  strategy, static files);
- the workflows' routes of :mod:`.workflow_view` (the list with progress, one
  workflow's graph, and its page ``/dashboard/workflow?id=ID``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

import msgspec
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp

from scheduler.monitor.explorer_routes import build_explorer_router
from scheduler.monitor.monitor import Monitor
from scheduler.monitor.prometheus import CONTENT_TYPE, render
from scheduler.monitor.snapshot import dump
from scheduler.monitor.workflow_view import build_workflow_router


def dashboard_html() -> str:
    """The dashboard page, shipped inside the package."""
    return (files("scheduler.monitor") / "dashboard.html").read_text(encoding="utf-8")


def build_router(monitor: Monitor, *, api_base: str | None = None) -> APIRouter:
    """The monitor's routes, to mount into any FastAPI app.

    The handlers poll the records when the latest snapshot is older than
    ``YM_MONITOR_INTERVAL``; call ``monitor.start()`` as well when the
    history, the backlog trend and the charts' series should advance between
    requests.

    Args:
        monitor: The monitor to serve.
        api_base: Where the HTTP API's ``/v1`` routes are, relative to the page
            (``""`` when this app is the API, ``"api/"`` when the API is mounted
            there); None: nowhere, and the page offers no controls.
    """
    router = APIRouter()
    page = dashboard_html()
    router.include_router(build_explorer_router(monitor))
    router.include_router(build_workflow_router(monitor.store))

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

    @router.get("/monitor/config", tags=["monitor"])
    def config() -> dict[str, Any]:
        return {"api": api_base}

    @router.get("/monitor/health", tags=["monitor"])
    def health() -> Response:
        h = monitor.current().health
        status = 503 if h.status == "unhealthy" else 200
        return Response(
            dump(msgspec.to_builtins(h)), status_code=status, media_type="application/json"
        )

    return router


API_MOUNT = "api"  # where build_app mounts the HTTP API, when it is given one


def build_app(monitor: Monitor, *, api: ASGIApp | None = None) -> FastAPI:
    """The app of ``yardmaster monitor``: the monitor's routes, polled in the background.

    Args:
        monitor: The monitor to serve.
        api: The HTTP API app, mounted under ``/api`` so that the page can call it
            on its own origin (a strategy rollback, with the admin token the
            operator types in); None: the page is read-only.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        monitor.start()
        try:
            yield
        finally:
            monitor.stop()

    app = FastAPI(title="yardmaster monitor", lifespan=lifespan)
    app.include_router(build_router(monitor, api_base=None if api is None else API_MOUNT + "/"))
    if api is not None:
        app.mount("/" + API_MOUNT, api)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("dashboard")

    return app
