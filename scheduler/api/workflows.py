"""Workflow endpoints: submit a DAG of tasks as one unit, list workflows with their
progress, read one's status, cancel it.

The tasks of a workflow are those of ``POST /v1/tasks/batch`` with an ``id``
each, which ``depends_on`` names; the client validates the graph and stores
it in one atomic step (docs/workflows.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from scheduler.api.errors import ApiError, documented
from scheduler.api.schemas import SubmitRequest, Submitted
from scheduler.api.security import Principal, require
from scheduler.client import Client
from scheduler.errors import InvalidInputError, UnknownTaskError
from scheduler.models import TaskState
from scheduler.workflow_client import ID_PATTERN, WorkflowStatus, recent_workflows

router = APIRouter(prefix="/v1", tags=["workflows"])

WorkflowId = Annotated[
    str, Path(min_length=1, max_length=200, pattern=ID_PATTERN, description="Workflow id")
]
_WRITE = documented(401, 403, 413, 415, 422, 429, 503)
_ONE = documented(401, 403, 404, 422, 429, 503)


class WorkflowTask(SubmitRequest):
    """One task of a workflow: a submission with its own ``id`` (named by ``depends_on``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, title="WorkflowTask")

    id: str = Field(min_length=1, max_length=200, pattern=ID_PATTERN)


class WorkflowRequest(BaseModel):
    """A workflow: its tasks (all stored or none) and, optionally, its id."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str | None = Field(default=None, min_length=1, max_length=200, pattern=ID_PATTERN)
    tasks: list[WorkflowTask] = Field(min_length=1)


class WorkflowSubmitted(BaseModel):
    """An accepted workflow: its id and its tasks (``waiting`` or ``pending``), in order."""

    id: str
    tasks: list[Submitted]


class WorkflowInfo(BaseModel):
    """A workflow's status: how many tasks in each state, and each task's state."""

    id: str
    total: int
    finished: bool
    counts: dict[str, int]
    tasks: dict[str, str]

    @classmethod
    def of(cls, status: WorkflowStatus) -> WorkflowInfo:
        """From the client's status."""
        return cls(
            id=status.id,
            total=status.total,
            finished=status.finished,
            counts=status.counts,
            tasks=status.states,
        )


class WorkflowProgress(BaseModel):
    """One workflow in a list: its progress, ``done`` (tasks in a terminal state) of ``total``."""

    id: str
    submitted_at: float
    total: int
    done: int
    finished: bool
    counts: dict[str, int]


class WorkflowList(BaseModel):
    """Tasks waiting on parents (in workflows or not), and the newest workflows."""

    waiting: int
    workflows: list[WorkflowProgress]


class WorkflowCancelled(BaseModel):
    """What cancelling a workflow did: how many unfinished tasks were cancelled or flagged."""

    id: str
    cancelled: int


def _client(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


def _status(client: Client, workflow_id: str) -> WorkflowStatus:
    if not client.store.workflows.members(workflow_id):
        raise ApiError(404, "not_found", f"no workflow {workflow_id!r} (or it expired)")
    return client.workflow(workflow_id)


@router.post(
    "/workflows",
    status_code=201,
    responses=_WRITE,
    summary="Submit a workflow",
    operation_id="submit_workflow",
)
def submit_workflow(
    body: WorkflowRequest,
    request: Request,
    _: Annotated[Principal, Depends(require("submit"))],
) -> WorkflowSubmitted:
    """Validate the graph (unknown parents, cycles, self-dependencies, the size limit
    ``YM_MAX_WORKFLOW``; errors name the ids) and store every task or none."""
    limit: int = request.app.state.settings.api_max_batch
    if len(body.tasks) > limit:
        raise ApiError(
            422,
            "too_large",
            f"tasks: {len(body.tasks)} tasks in one workflow; at most {limit} are allowed over "
            "HTTP (YM_API_MAX_BATCH)",
            field="tasks",
        )
    items = [t.model_dump(exclude_defaults=True) | {"id": t.id} for t in body.tasks]
    client = _client(request)
    try:
        wf, handles = client.submit_workflow(items, body.id)
    except InvalidInputError as exc:
        if isinstance(exc, UnknownTaskError):
            raise ApiError(422, "unknown_task", str(exc), field=exc.field) from None
        raise ApiError(422, "invalid_input", str(exc), field=exc.field) from None
    states = client.store.tasks.states([h.id for h in handles])
    return WorkflowSubmitted(
        id=wf,
        tasks=[
            Submitted(id=h.id, state=TaskState(s or "pending"))
            for h, s in zip(handles, states, strict=True)
        ],
    )


@router.get(
    "/workflows",
    responses=documented(401, 403, 422, 429, 503),
    summary="Workflows with their progress",
    operation_id="list_workflows",
)
def list_workflows(
    request: Request,
    _: Annotated[Principal, Depends(require("read"))],
    live: Annotated[
        bool, Query(description="Only the unfinished ones (of the 200 newest)")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=200, description="Most workflows listed")] = 20,
) -> WorkflowList:
    """The newest workflows first, each with ``done`` of ``total`` and counts by state, and
    how many tasks wait on parents. Each listed workflow costs a read of its tasks'
    states, so only the 200 newest are looked at."""
    store = _client(request).store
    found = recent_workflows(store, 200 if live else limit)
    if live:
        found = [wf for wf in found if not wf["finished"]]
    return WorkflowList(
        waiting=store.workflows.waiting(),
        workflows=[WorkflowProgress(**wf) for wf in found[:limit]],
    )


@router.get(
    "/workflows/{workflow_id}",
    responses=_ONE,
    summary="A workflow's status",
    operation_id="get_workflow",
)
def workflow_status(
    workflow_id: WorkflowId, request: Request, _: Annotated[Principal, Depends(require("read"))]
) -> WorkflowInfo:
    """Counts of its tasks by state, each task's state, and whether all are finished."""
    return WorkflowInfo.of(_status(_client(request), workflow_id))


@router.post(
    "/workflows/{workflow_id}/cancel",
    responses=_ONE,
    summary="Cancel a workflow",
    operation_id="cancel_workflow",
)
def cancel_workflow(
    workflow_id: WorkflowId, request: Request, _: Annotated[Principal, Depends(require("submit"))]
) -> WorkflowCancelled:
    """Cancel every unfinished task; running ones are flagged, as for one task."""
    client = _client(request)
    _status(client, workflow_id)
    return WorkflowCancelled(id=workflow_id, cancelled=client.cancel_workflow(workflow_id))
