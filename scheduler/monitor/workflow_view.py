"""The dashboard's workflow page and its data: the workflows list with progress, and one
workflow's task graph laid out in layers.

Routes (relative to where the router is mounted):

- ``GET /monitor/workflows``: how many tasks wait on parents (``waiting``) and the
  newest workflows (live and finished) with their progress, ``done`` of ``total``
  and counts by state;
- ``GET /monitor/workflows/{id}``: one workflow: its progress and its tasks as
  graph nodes (state, name, parents inside the workflow, times, and a position:
  ``layer`` and ``row``); 404 for an unknown or expired workflow;
- ``GET /dashboard/workflow?id=ID``: the page that draws it (``static/workflow.js``).

The layout is computed here rather than by a graph library in the page: a
workflow is a DAG whose tasks already sit in dependency layers (the longest
path from a root), and ordering each layer by its parents' mean row (one
barycenter sweep) keeps most edges short. That is a few lines of Python, so
the page needs no vendored layout engine beside uPlot, and the SVG it draws is
plain DOM a headless browser test can read.
"""

from __future__ import annotations

from collections import Counter
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import HTMLResponse

from scheduler.models import TaskRecord, TaskState
from scheduler.store import Store
from scheduler.workflow_client import ID_PATTERN, recent_workflows

MAX_NODES = 2000
"""Largest workflow whose graph the page gets; a bigger one shows its progress only."""

_CHUNK = 2000
_TERMINAL = {s.value for s in TaskState if s.terminal}


def workflow_graph(store: Store, workflow_id: str) -> dict[str, Any] | None:
    """One workflow's progress and, up to :data:`MAX_NODES` tasks, its laid-out graph.

    Returns None when no such workflow is stored (never submitted, or expired).
    A task whose record expired is a node in state ``missing``.
    """
    ids = store.workflows.members(workflow_id)
    if not ids:
        return None
    records: list[TaskRecord | None] = []
    for start in range(0, len(ids), _CHUNK):
        records += store.tasks.records(ids[start : start + _CHUNK])
    states = ["missing" if r is None else str(r.state) for r in records]
    counts = Counter(states)
    done = sum(n for state, n in counts.items() if state in _TERMINAL or state == "missing")
    out: dict[str, Any] = {
        "id": workflow_id,
        "total": len(ids),
        "done": done,
        "finished": done == len(ids),
        "counts": dict(counts),
        "truncated": len(ids) > MAX_NODES,
        "nodes": [],
    }
    if out["truncated"]:
        return out
    inside = {task_id: i for i, task_id in enumerate(ids)}
    parents = [
        [] if r is None else [inside[p] for p in dict.fromkeys(r.depends_on) if p in inside]
        for r in records
    ]
    layer, row = layout(parents)
    for i, (task_id, rec) in enumerate(zip(ids, records, strict=True)):
        out["nodes"].append(
            {
                "id": task_id,
                "name": None if rec is None else rec.name,
                "state": states[i],
                "parents": [ids[p] for p in parents[i]],
                "layer": layer[i],
                "row": row[i],
                "worker": None if rec is None else rec.worker,
                "started_at": None if rec is None else rec.started_at,
                "finished_at": None if rec is None else rec.finished_at,
                "reason": None if rec is None else rec.reason,
            }
        )
    out["layers"] = max(layer, default=-1) + 1
    out["rows"] = max(row, default=-1) + 1
    return out


def layout(parents: list[list[int]]) -> tuple[list[int], list[int]]:
    """Each node's layer (the longest path from a root) and row within its layer.

    Rows follow the mean row of a node's parents (roots in their given order),
    ties by position in the input, so a child sits near what it waits on.
    A node on a cycle (which a stored workflow cannot have) goes to layer 0.
    """
    n = len(parents)
    children: list[list[int]] = [[] for _ in range(n)]
    missing = [len(p) for p in parents]
    for child, mine in enumerate(parents):
        for p in mine:
            children[p].append(child)
    layer = [0] * n
    ready = [i for i in range(n) if not missing[i]]
    order: list[int] = []
    while ready:
        node = ready.pop()
        order.append(node)
        for child in children[node]:
            layer[child] = max(layer[child], layer[node] + 1)
            missing[child] -= 1
            if not missing[child]:
                ready.append(child)
    by_layer: dict[int, list[int]] = {}
    for node in range(n):
        by_layer.setdefault(layer[node], []).append(node)
    row = [0] * n
    for depth in sorted(by_layer):
        nodes = by_layer[depth]
        if depth:
            nodes.sort(
                key=lambda c: (
                    sum(row[p] for p in parents[c]) / len(parents[c]) if parents[c] else 0.0,
                    c,
                )
            )
        for r, node in enumerate(nodes):
            row[node] = r
    return layer, row


def workflow_html() -> str:
    """The workflow page, shipped inside the package."""
    return (files("scheduler.monitor") / "workflow.html").read_text(encoding="utf-8")


def build_workflow_router(store: Store) -> APIRouter:
    """The routes above, reading ``store``."""
    router = APIRouter(tags=["monitor"])
    page = workflow_html()

    @router.get("/monitor/workflows")
    def workflows() -> dict[str, Any]:
        return {"waiting": store.workflows.waiting(), "workflows": recent_workflows(store, 20)}

    @router.get("/monitor/workflows/{workflow_id}")
    def workflow(
        workflow_id: Annotated[str, Path(pattern=ID_PATTERN)],
    ) -> dict[str, Any]:
        found = workflow_graph(store, workflow_id)
        if found is None:
            raise HTTPException(404, f"no workflow {workflow_id!r}: never submitted, or expired")
        return found

    @router.get("/dashboard/workflow", response_class=HTMLResponse)
    def workflow_page() -> HTMLResponse:
        return HTMLResponse(page)

    return router
