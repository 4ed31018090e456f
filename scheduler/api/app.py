"""The HTTP API's app factory.

``create_app`` wires the routers, the error handlers, the body limits and the
token guard around one state store. Other faces of yardmaster (the monitor's
``/metrics``) pass their routers in ``extra_routers``; they are mounted as
given, with their own auth.

The interactive docs (``/docs``, Swagger UI; ``/redoc``, ReDoc) load their
scripts and styles from this server, not from a CDN: the ``fastapi-offline``
package ships the Swagger UI and ReDoc distribution files and serves them
under ``/docs-assets``, so the docs work on a closed network.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Depends, FastAPI
from fastapi_offline import FastAPIOffline

from scheduler.api import cluster, errors, strategy, tasks, workflows
from scheduler.api.limits import BodyLimits
from scheduler.api.security import Guard, require
from scheduler.client import Client
from scheduler.embedded import resolve_redis_url
from scheduler.errors import SettingsError
from scheduler.settings import API_AUTH_OFF_WARNING, Settings
from scheduler.store import Store

log = logging.getLogger("yardmaster.api")
DOCS_ASSETS = "/docs-assets"  # where Swagger UI's and ReDoc's files are served

_DESCRIPTION = """Submit, inspect, cancel and steer the tasks of a yardmaster cluster.

Send `Authorization: Bearer <token>` (tokens from `YM_API_TOKENS`; scopes `read`, `submit`,
`admin`). Bodies are JSON only. Every error is `{"code", "field", "message"}`.
"""


def _version() -> str:
    try:
        return version("yardmaster")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    extra_routers: Sequence[APIRouter] = (),
    read_routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The API app for the cluster of ``settings``.

    Args:
        settings: Cluster settings; the ``api_*`` ones configure auth and limits.
        store: The state store; by default one on ``YM_REDIS_URL`` (or the embedded Redis).
        extra_routers: More routers to mount as given, with their own auth.
        read_routers: Routers mounted behind the ``read`` scope and left out of the
            OpenAPI document (the monitor's ``/metrics``, ``/dashboard``, ``/monitor/*``).

    Raises:
        SettingsError: Auth is on and no token is configured.
    """
    if settings.api_auth and not settings.api_tokens:
        raise SettingsError(
            "YM_API_TOKENS",
            "<none>",
            'at least one token, e.g. [{"name": "ops", "scope": "admin", "token": "<16+ '
            'random characters>"}]; or YM_API_AUTH=false for local use only',
            problem="the API requires tokens",
        )
    if not settings.api_auth:
        log.warning(API_AUTH_OFF_WARNING)
    store = store or Store.from_url(resolve_redis_url(settings), settings)
    app = FastAPIOffline(
        title="yardmaster",
        version=_version(),
        description=_DESCRIPTION,
        static_url=DOCS_ASSETS,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.client = Client(store)
    app.state.guard = Guard(settings)
    errors.install(app)
    for router in (tasks.router, workflows.router, cluster.router, strategy.router, *extra_routers):
        app.include_router(router)
    for router in read_routers:
        app.include_router(router, dependencies=[Depends(require("read"))], include_in_schema=False)
    app.add_middleware(BodyLimits, max_body=settings.api_max_body)
    return app
