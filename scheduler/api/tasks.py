"""Task endpoints: submit one or a batch, status, result, cancel, list by state."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from scheduler.api.errors import ApiError, documented
from scheduler.api.schemas import (
    BatchRequest,
    BatchSubmitted,
    CancelReply,
    SubmitRequest,
    Submitted,
    TaskInfo,
    TaskPage,
    TaskResult,
)
from scheduler.api.security import Principal, require
from scheduler.client import Client, TaskHandle
from scheduler.errors import InvalidInputError, TaskNotFoundError, UnknownTaskError
from scheduler.models import TaskSpec, TaskState
from scheduler.settings import Settings
from scheduler.store import Store

router = APIRouter(prefix="/v1", tags=["tasks"])

TaskId = Annotated[
    str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$", description="Task id")
]
_WRITE = documented(401, 403, 413, 415, 422, 429, 503)
_READ = documented(401, 403, 422, 429, 503)
_ONE = documented(401, 403, 404, 422, 429, 503)


def _client(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _submit(request: Request, specs: list[SubmitRequest], single: bool) -> list[Submitted]:
    """Check the API's own limits, then submit through the client (names checked there)."""
    settings: Settings = request.app.state.settings
    for i, spec in enumerate(specs):
        where = "" if single else f"tasks[{i}]."
        try:
            args, kwargs = spec.encoded_args()
        except InvalidInputError as exc:  # not strict JSON (NaN, Infinity)
            raise ApiError(422, "invalid_input", f"{where}{exc}", field=where + exc.field) from None
        size = len(args.encode()) + len(kwargs.encode())
        if size > settings.api_max_args:
            field = where + "args"
            raise ApiError(
                422,
                "too_large",
                f"{field}: the arguments take {size} bytes as JSON; at most "
                f"{settings.api_max_args} are allowed (YM_API_MAX_ARGS)",
                field=field,
            )
    plain: list[TaskSpec] = list(specs)
    try:
        strict = any(getattr(spec, "strict", False) for spec in specs)
        handles = _client(request).submit_many(plain, strict=strict)
    except InvalidInputError as exc:
        field = exc.field.removeprefix("tasks[0].") if single else exc.field
        message = str(exc).replace("tasks[0].", "", 1) if single else str(exc)
        if isinstance(exc, UnknownTaskError):
            raise ApiError(422, "unknown_task", message, field=field) from None
        raise ApiError(422, "invalid_input", message, field=field) from None
    return [_submitted(h, bool(spec.depends_on)) for h, spec in zip(handles, specs, strict=True)]


def _submitted(handle: TaskHandle, dependent: bool = False) -> Submitted:
    """A new task is pending (or waiting, with unfinished parents); one answered without
    a new run (cache, coalescing, idempotency key; see cache-and-locks.md) is in whatever
    state it has."""
    if dependent:
        return Submitted(id=handle.id, state=handle.status())
    if handle.answered_by is None:
        return Submitted(id=handle.id, state=TaskState.PENDING)
    return Submitted(id=handle.id, state=handle.status(), answered_by=handle.answered_by)


def _links(pointer: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI links from a submission to the operations on the task it made."""
    ops = {"GetTask": "get_task", "GetResult": "get_result", "CancelTask": "cancel_task"}
    links = {
        name: {"operationId": op, "parameters": {"task_id": f"$response.body#{pointer}"}}
        for name, op in ops.items()
    }
    return {201: {"description": "Accepted", "links": links}}


@router.post(
    "/tasks",
    status_code=201,
    responses={**_links("/id"), **_WRITE},
    summary="Submit a task",
    operation_id="submit_task",
)
def submit(
    body: SubmitRequest,
    request: Request,
    _: Annotated[Principal, Depends(require("submit"))],
) -> Submitted:
    """Accept one task; it waits in Redis until the strategy gives it a worker slot."""
    (submitted,) = _submit(request, [body], single=True)
    return submitted


@router.post(
    "/tasks/batch",
    status_code=201,
    responses={**_links("/tasks/0/id"), **_WRITE},
    summary="Submit tasks",
    operation_id="submit_tasks",
)
def submit_batch(
    body: BatchRequest,
    request: Request,
    _: Annotated[Principal, Depends(require("submit"))],
) -> BatchSubmitted:
    """Accept up to ``YM_API_MAX_BATCH`` tasks, all or none, in pipelined round trips."""
    limit: int = request.app.state.settings.api_max_batch
    if len(body.tasks) > limit:
        raise ApiError(
            422,
            "too_large",
            f"tasks: {len(body.tasks)} tasks in one batch; at most {limit} are allowed "
            "(YM_API_MAX_BATCH)",
            field="tasks",
        )
    return BatchSubmitted(tasks=_submit(request, body.tasks, single=False))


@router.get("/tasks", responses=_READ, summary="List tasks in a state", operation_id="list_tasks")
def list_by_state(
    request: Request,
    _: Annotated[Principal, Depends(require("read"))],
    state: Annotated[TaskState, Query(description="The state to list")],
    limit: Annotated[int, Query(ge=1, le=1000, description="Tasks per page")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
    name: Annotated[
        str, Query(max_length=200, description="Only tasks whose name contains this")
    ] = "",
    worker: Annotated[
        str, Query(max_length=200, description="Only tasks whose worker contains this")
    ] = "",
) -> TaskPage:
    """Pending tasks in submission order, dispatched and running ones by id, finished ones
    newest first; ``name`` and ``worker`` keep those whose name and worker contain them
    (case-insensitive)."""
    records, next_cursor = _store(request).tasks.find(
        state, limit, cursor, name=name, worker=worker
    )
    return TaskPage(state=state, tasks=[TaskInfo.of(r) for r in records], next_cursor=next_cursor)


@router.get("/tasks/{task_id}", responses=_ONE, summary="A task's status", operation_id="get_task")
def status(
    task_id: TaskId, request: Request, _: Annotated[Principal, Depends(require("read"))]
) -> TaskInfo:
    """The task's record: state, worker, timestamps, attempt."""
    rec = _store(request).tasks.records([task_id])[0]
    if rec is None:
        raise TaskNotFoundError(task_id)
    return TaskInfo.of(rec)


@router.get(
    "/tasks/{task_id}/result",
    responses=_ONE,
    summary="A task's result",
    operation_id="get_result",
)
async def result(
    task_id: TaskId,
    request: Request,
    _: Annotated[Principal, Depends(require("read"))],
    wait: Annotated[
        float, Query(ge=0, le=30, description="Seconds to wait for the task to finish")
    ] = 0.0,
) -> TaskResult:
    """What the task returned (or why it did not); waits up to ``wait`` seconds for it.

    Waiting sleeps on the event loop, so a waiting caller holds no worker thread.
    """
    store = _store(request)
    end = time.monotonic() + wait
    delay = 0.01
    while True:
        state, value, error = await run_in_threadpool(store.tasks.outcome, task_id)
        if state is None:
            raise TaskNotFoundError(task_id)
        done = TaskState(state).terminal
        if done or time.monotonic() >= end:
            break
        await asyncio.sleep(min(delay, max(0.0, end - time.monotonic())))
        delay = min(0.2, delay * 2)
    payload = json.loads(value) if state == TaskState.SUCCEEDED and value else None
    return TaskResult(
        id=task_id, state=TaskState(state), done=done, result=payload, error=error or None
    )


@router.post(
    "/tasks/{task_id}/cancel",
    responses=_ONE,
    summary="Cancel a task",
    operation_id="cancel_task",
)
def cancel(
    task_id: TaskId, request: Request, _: Annotated[Principal, Depends(require("submit"))]
) -> CancelReply:
    """Cancel a task that has not started; a running task is not interrupted."""
    reply = _store(request).tasks.cancel(task_id, "cancelled over the HTTP API")
    if reply == "missing":
        raise TaskNotFoundError(task_id)
    if reply == "cancelled":
        return CancelReply(id=task_id, cancelled=True, state=TaskState.CANCELLED)
    state = reply.removeprefix("already:")
    return CancelReply(id=task_id, cancelled=False, state=TaskState(state))
