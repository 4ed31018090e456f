"""Errors as JSON: ``{"code", "field", "message"}`` for every refusal, with its status.

Every handler here turns one kind of failure into an :class:`ErrorBody`, so a
client in any language reads one shape, and the OpenAPI document lists it for
every status an operation can answer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from scheduler.api.schemas import ErrorBody, ErrorCode
from scheduler.errors import (
    BackpressureError,
    InvalidInputError,
    RedisOutOfMemoryError,
    RedisUnavailableError,
    TaskNotFoundError,
    UnknownTaskError,
)

log = logging.getLogger("yardmaster.api")


class ApiError(Exception):
    """A refusal with its HTTP status, error code, field and message."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(code=code, field=field, message=message)
        self.headers = headers


class BodyTooLarge(StarletteHTTPException):
    """The body passed the size limit while it was being read (raised inside the body read,
    where FastAPI lets only HTTP exceptions through)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes (YM_API_MAX_BODY)")


def error_response(
    status: int,
    code: ErrorCode,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON error response."""
    body = ErrorBody(code=code, field=field, message=message)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


_DESCRIPTIONS = {
    401: "No bearer token, or one the API does not know",
    403: "The token's scope does not allow this operation",
    404: "No such task",
    409: "The strategy configuration changed meanwhile (expected_version)",
    413: "The request body is larger than YM_API_MAX_BODY",
    415: "The body is not application/json",
    422: "A field is not acceptable (the error names it)",
    429: "Too many requests for this token, or the backlog reached YM_MAX_PENDING "
    "(see Retry-After)",
    503: "Redis cannot be reached, or its memory passed YM_MEMORY_HIGH_WATER (see Retry-After)",
}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entry of an operation: each status with the error body."""
    return {s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]} for s in statuses}


def field_path(loc: Sequence[int | str]) -> str:
    """``("body", "tasks", 3, "priority")`` -> ``tasks[3].priority``."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _allowed(request: Request) -> str:
    """Every method some route serves on this path (a 405 must list them all)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into an :class:`ErrorBody`."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body.model_dump(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = field_path(first.get("loc", ()))
        if first.get("type") == "json_invalid":
            ctx = first.get("ctx") or {}
            detail = ctx.get("error", "not valid JSON")
            return error_response(
                422, "invalid_json", f"the body is not valid JSON ({detail}); send JSON only"
            )
        msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        shown = f"{where}={_short(first.get('input'))}" if where else "the body"
        return error_response(
            422, "invalid_input", f"{shown} is not accepted: {msg}", where or None
        )

    @app.exception_handler(UnknownTaskError)
    async def _unknown(request: Request, exc: UnknownTaskError) -> JSONResponse:
        return error_response(422, "unknown_task", str(exc), exc.field)

    @app.exception_handler(InvalidInputError)
    async def _invalid(request: Request, exc: InvalidInputError) -> JSONResponse:
        return error_response(422, "invalid_input", str(exc), exc.field)

    @app.exception_handler(BackpressureError)
    async def _backpressure(request: Request, exc: BackpressureError) -> JSONResponse:
        # a full backlog is the client's to slow down (429); a full Redis is the
        # service's condition (503); both are retriable after Retry-After
        status = 429 if exc.reason == "pending" else 503
        retry = str(max(1, math.ceil(exc.retry_after)))
        return error_response(status, "backpressure", str(exc), headers={"Retry-After": retry})

    @app.exception_handler(RedisOutOfMemoryError)
    async def _full(request: Request, exc: RedisOutOfMemoryError) -> JSONResponse:
        # any other write Redis refused over its maxmemory (a strategy change): retriable
        log.warning("Redis is full: %s", exc.reply)
        return error_response(
            503,
            "backpressure",
            "Redis is over its maxmemory and refused the write; try again once the backlog drained",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(TaskNotFoundError)
    async def _missing(request: Request, exc: TaskNotFoundError) -> JSONResponse:
        return error_response(404, "not_found", str(exc), "task_id")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, BodyTooLarge):
            return error_response(413, "body_too_large", str(exc.detail), "body")
        if exc.status_code == 404:
            return error_response(404, "not_found", f"no such path: {request.url.path}")
        if exc.status_code == 405:
            return error_response(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed on {request.url.path}",
                headers={"Allow": _allowed(request)},
            )
        if exc.status_code == 400:  # FastAPI could not read the body (not UTF-8 text, ...)
            return error_response(
                422, "invalid_json", "the body is not valid JSON text; send JSON only"
            )
        return error_response(exc.status_code, "invalid_input", str(exc.detail))

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("Redis unavailable: %s", type(exc).__name__)
        return error_response(503, "unavailable", "Redis cannot be reached; try again shortly")

    app.add_exception_handler(RedisUnavailableError, _unavailable)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error; see the API's log")
