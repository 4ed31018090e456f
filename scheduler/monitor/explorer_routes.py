"""The dashboard's read routes beyond the snapshot: chart series, the task explorer,
workers as stored, the strategy's versions, and the page's own static files.

Routes (relative to where the router is mounted):

- ``GET /monitor/series?since=T``: the in-memory ring of recent points, as columns;
- ``GET /monitor/tasks?state=S&name=N&worker=W&limit=L&cursor=C``: tasks in a
  state, filtered by name and worker (substrings), a page at a time;
- ``GET /monitor/tasks/{id}``: one task: record, attempts, redacted arguments,
  result or error, progress;
- ``GET /monitor/workers``: every worker's record (slots, tasks held, resources
  and labels when its record has them);
- ``GET /monitor/strategy``: the requested configuration, what the dispatcher
  runs, and the version history (read-only; a rollback goes through the API);
- ``GET /monitor/static/{file}``: the pages' scripts and the vendored uPlot.
"""

from __future__ import annotations

import dataclasses
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response

from scheduler.errors import InvalidInputError
from scheduler.models import TaskState
from scheduler.monitor.explorer import task_view, worker_view
from scheduler.monitor.monitor import Monitor

STATIC = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "workflow.js": "text/javascript; charset=utf-8",
    "uplot/uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "uplot/uPlot.min.css": "text/css; charset=utf-8",
    "uplot/LICENSE": "text/plain; charset=utf-8",
}
ROW = (
    "id", "name", "state", "priority", "worker", "attempt", "submitted_at", "started_at",
    "finished_at", "runtime",
)  # fmt: skip


def _static() -> dict[str, bytes]:
    root = files("scheduler.monitor") / "static"
    out: dict[str, bytes] = {}
    for name in STATIC:
        node = root
        for part in name.split("/"):
            node = node / part
        out[name] = node.read_bytes()
    return out


def build_explorer_router(monitor: Monitor) -> APIRouter:
    """The routes above, reading through ``monitor``'s store and series."""
    router = APIRouter(tags=["monitor"])
    store = monitor.store
    assets = _static()

    @router.get("/monitor/series")
    def series(
        since: Annotated[float | None, Query(description="Points after this time")] = None,
    ) -> dict[str, Any]:
        return monitor.series.columns(since)

    @router.get("/monitor/tasks")
    def tasks(
        state: Annotated[TaskState, Query(description="The state to list")],
        name: Annotated[str, Query(max_length=200)] = "",
        worker: Annotated[str, Query(max_length=200)] = "",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict[str, Any]:
        try:
            records, next_cursor = store.tasks.find(state, limit, cursor, name=name, worker=worker)
        except InvalidInputError as exc:
            raise HTTPException(422, str(exc)) from None
        rows = [{k: getattr(r, k) for k in ROW} for r in records]
        return {"state": state, "tasks": rows, "next_cursor": next_cursor}

    @router.get("/monitor/tasks/{task_id}")
    def task(
        task_id: Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^\s]+$")],
    ) -> dict[str, Any]:
        found = store.tasks.stored(task_id)
        if found is None:
            raise HTTPException(404, f"no task {task_id!r}: never submitted, or expired")
        return task_view(found)

    @router.get("/monitor/workers")
    def workers() -> dict[str, Any]:
        now = store.server_time()
        return {"workers": [worker_view(w, now) for w in store.workers.stored()]}

    @router.get("/monitor/strategy")
    def strategy(
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> dict[str, Any]:
        config, active = store.strategy.latest(), store.strategy.active()
        return {
            "config": None if config is None else dataclasses.asdict(config),
            "active": None if active is None else dataclasses.asdict(active),
            "history": [dataclasses.asdict(v) for v in store.strategy.history(limit)],
        }

    @router.get("/monitor/static/{name:path}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(
            assets[name],
            media_type=STATIC[name],
            headers={"Cache-Control": "max-age=3600"},
        )

    return router
