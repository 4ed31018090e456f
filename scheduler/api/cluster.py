"""Cluster endpoints: workers, and the liveness and readiness probes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from scheduler.api.errors import documented
from scheduler.api.schemas import Liveness, Readiness, WorkerInfo, WorkerList
from scheduler.api.security import Principal, require
from scheduler.errors import RedisUnavailableError
from scheduler.store import Store

router = APIRouter()


@router.get(
    "/v1/workers", tags=["cluster"], responses=documented(401, 403, 429, 503), summary="Workers"
)
def workers(request: Request, _: Annotated[Principal, Depends(require("read"))]) -> WorkerList:
    """Every registered worker with its slots, the tasks it holds and its heartbeat age."""
    store: Store = request.app.state.store
    now = store.server_time()
    return WorkerList(workers=[WorkerInfo.of(w, now) for w in store.workers.load()])


@router.get("/healthz/live", tags=["health"], summary="Liveness")
def live() -> Liveness:
    """The API process answers (no token needed)."""
    return Liveness()


@router.get(
    "/healthz/ready",
    tags=["health"],
    summary="Readiness",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: see which part is missing"}},
)
def ready(request: Request) -> Readiness | JSONResponse:
    """Ready when Redis answers, a dispatcher holds the lease and a worker's heartbeat is
    fresh (within ``YM_WORKER_TIMEOUT``); 503 otherwise (no token needed)."""
    store: Store = request.app.state.store
    try:
        store.ping()
        leader = store.leases.leader() is not None
        now = store.server_time()
        timeout = store.settings.worker_timeout
        alive = sum(1 for w in store.workers.load() if now - w.heartbeat <= timeout)
        state = Readiness(
            ready=leader and alive > 0, redis=True, dispatcher_leader=leader, workers=alive
        )
    except RedisUnavailableError:
        state = Readiness(ready=False, redis=False, dispatcher_leader=False, workers=0)
    if state.ready:
        return state
    return JSONResponse(state.model_dump(), status_code=503)
