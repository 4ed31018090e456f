"""Steering endpoints: the live strategy and its parameters, versioned, with rollback.

Reading needs the ``read`` scope; changing needs ``admin``. Each change is
recorded as a new version with the token's name as its author.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from scheduler.api.errors import ApiError, documented
from scheduler.api.schemas import (
    ActiveStrategyInfo,
    Rollback,
    StrategyHistory,
    StrategySet,
    StrategyState,
    StrategyVersionInfo,
)
from scheduler.api.security import Principal, require
from scheduler.client import Client
from scheduler.errors import InvalidInputError
from scheduler.strategy_config import StrategyVersion

router = APIRouter(prefix="/v1/strategy", tags=["strategy"])


def _client(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


def _info(v: StrategyVersion) -> StrategyVersionInfo:
    return StrategyVersionInfo(
        version=v.version, strategy=v.strategy, params=v.params, who=v.who, at=v.at, note=v.note,
        experiment=v.experiment, guard=v.guard,
    )  # fmt: skip


@router.get("", responses=documented(401, 403, 429, 503), summary="The live strategy")
def show(request: Request, _: Annotated[Principal, Depends(require("read"))]) -> StrategyState:
    """The latest configuration version, and what the leading dispatcher runs now."""
    client = _client(request)
    config, active = client.strategy(), client.active_strategy()
    return StrategyState(
        config=None if config is None else _info(config),
        active=None
        if active is None
        else ActiveStrategyInfo(
            strategy=active.strategy,
            version=active.version,
            since=active.since,
            dispatcher=active.dispatcher,
        ),
        rollout=client.store.strategy.rollout(),
        guard_running=client.store.strategy.watched(),
    )


@router.put(
    "",
    responses=documented(401, 403, 409, 413, 415, 422, 429, 503),
    summary="Change the live strategy",
)
def change(
    body: StrategySet,
    request: Request,
    who: Annotated[Principal, Depends(require("admin"))],
) -> StrategyVersionInfo:
    """Switch strategy and parameters without a restart; stored as a new version.

    With ``expected_version``, applies only if that is still the current version (else 409).
    With ``guard``, a running ``yardmaster monitor`` watches the version for ``window``
    seconds and rolls it back by itself if it regresses (``guard_running`` in the
    strategy's view says whether one runs).
    """
    client = _client(request)
    if body.window is not None and not body.guard:
        raise InvalidInputError("window", body.window, "a window only with guard: true")
    watch = (body.window or client.store.settings.rollout_window) if body.guard else None
    try:
        version = client.set_strategy(
            body.strategy,
            body.params,
            who=f"api:{who.name}",
            note=body.note,
            expected_version=body.expected_version,
            guard=watch,
        )
    except InvalidInputError as exc:
        if exc.field == "expected_version":
            raise ApiError(409, "conflict", str(exc), field="expected_version") from None
        raise
    return _info(version)


@router.get("/history", responses=documented(401, 403, 422, 429, 503), summary="Versions")
def history(
    request: Request,
    _: Annotated[Principal, Depends(require("read"))],
    limit: Annotated[int, Query(ge=0, le=10000, description="The last N versions; 0: all")] = 0,
) -> StrategyHistory:
    """Every configuration version, oldest first."""
    return StrategyHistory(versions=[_info(v) for v in _client(request).strategy_history(limit)])


@router.post(
    "/rollback",
    responses=documented(401, 403, 413, 415, 422, 429, 503),
    summary="Roll the strategy back",
)
def rollback(
    request: Request,
    who: Annotated[Principal, Depends(require("admin"))],
    body: Rollback | None = None,
) -> StrategyVersionInfo:
    """Restore version ``to`` (by default the one before the current) as a new version."""
    to = None if body is None else body.to
    return _info(_client(request).rollback_strategy(to, who=f"api:{who.name}"))
