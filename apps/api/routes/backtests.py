from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from apps.api.deps import PrincipalDep, ResourcesDep, UowDep, idempotency_header
from apps.api.problems import problem_responses
from packages.core.backtests.schemas import (
    AnalysisOut,
    AnalysisView,
    BacktestDetail,
    BacktestList,
    BacktestOut,
    CreateBacktestRequest,
    EquityOut,
    OrderPage,
    TradePage,
    TradeSnapshotOut,
)
from packages.core.backtests.service import BacktestService
from packages.core.idempotency import IdempotencyKey
from packages.core.jobs.schemas import CancelOut, JobStatus

router = APIRouter(prefix="/backtests", tags=["backtests"])

READ = problem_responses(401, 404, 422)
RESULT = problem_responses(401, 404, 409, 422)

IdempotencyKeyHeader = Annotated[
    str | None,
    idempotency_header(
        "Optional, recommended: any unique string per intended job. Resending the same key and body "
        "returns the same job instead of starting a second one."
    ),
]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
PageLimit = Annotated[int, Query(ge=1, le=500)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="backtests_create",
    summary="Start a backtest job (returns at once; poll GET /backtests/{id})",
    description=(
        "Runs a saved strategy (strategy_id, optional version) or an inline document over stored "
        "bars on the CPU worker. 201 for a new job; 200 with the same job when the Idempotency-Key "
        "and body were sent before; 422 when the key was used with another body; 429 (Retry-After) "
        "when too many of your jobs are queued or running; 422 when the range holds too many bars."
    ),
    responses={
        200: {"model": BacktestOut, "description": "The job this Idempotency-Key already created"},
        **problem_responses(401, 413, 422, 429),
    },
)
async def create_backtest(
    body: CreateBacktestRequest,
    response: Response,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> BacktestOut:
    async with uow:
        job, created = await BacktestService(uow, principal, resources).create(
            body, IdempotencyKey.header(idempotency_key)
        )
    if not created:
        response.status_code = status.HTTP_200_OK
    return job


@router.get("", operation_id="backtests_list", summary="Your backtests, newest first", responses=READ)
async def list_backtests(
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    status_filter: Annotated[JobStatus | None, Query(alias="status")] = None,
) -> BacktestList:
    async with uow:
        return await BacktestService(uow, principal, resources).list(
            limit=limit, cursor=cursor, status=status_filter
        )


@router.get(
    "/{backtest_id}",
    operation_id="backtests_get",
    summary="Status, progress and (once done) the summary and every metric",
    responses=READ,
)
async def get_backtest(
    backtest_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> BacktestDetail:
    async with uow:
        return await BacktestService(uow, principal, resources).get(backtest_id)


@router.post(
    "/{backtest_id}/cancel",
    operation_id="backtests_cancel",
    summary="Cancel a queued or running backtest (a finished one is left as it is)",
    responses=READ,
)
async def cancel_backtest(
    backtest_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> CancelOut:
    async with uow:
        return await BacktestService(uow, principal, resources).cancel(backtest_id)


@router.get(
    "/{backtest_id}/equity",
    operation_id="backtests_equity",
    summary="Equity and drawdown, downsampled for charts (extremes kept)",
    responses=RESULT,
)
async def get_equity(
    backtest_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> EquityOut:
    async with uow:
        return await BacktestService(uow, principal, resources).equity(backtest_id)


@router.get(
    "/{backtest_id}/trades",
    operation_id="backtests_trades",
    summary="The trade list in entry order, one page at a time",
    responses=RESULT,
)
async def get_trades(
    backtest_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    offset: Offset = 0,
    limit: PageLimit = 100,
) -> TradePage:
    async with uow:
        return await BacktestService(uow, principal, resources).trades(
            backtest_id, offset=offset, limit=limit
        )


@router.get(
    "/{backtest_id}/orders",
    operation_id="backtests_orders",
    summary="Every filled order in time order, one page at a time",
    responses=RESULT,
)
async def get_orders(
    backtest_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    offset: Offset = 0,
    limit: PageLimit = 100,
) -> OrderPage:
    async with uow:
        return await BacktestService(uow, principal, resources).orders(
            backtest_id, offset=offset, limit=limit
        )


@router.get(
    "/{backtest_id}/analysis/{view}",
    operation_id="backtests_analysis",
    summary="One analysis view: monthly returns, PnL by hour/weekday, holding periods, long/short, exit reasons, per symbol, underwater, rolling",
    responses=RESULT,
)
async def get_analysis(
    backtest_id: uuid.UUID,
    view: AnalysisView,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    points: Annotated[
        int, Query(ge=10, le=5000, description="Series length of the underwater and rolling views.")
    ] = 500,
    window: Annotated[int, Query(ge=2, le=2000, description="Return periods of the rolling view.")] = 63,
) -> AnalysisOut:
    async with uow:
        return await BacktestService(uow, principal, resources).analysis(
            backtest_id, view, points=points, window=window
        )


@router.get(
    "/{backtest_id}/trades/{number}/snapshot",
    operation_id="backtests_trade_snapshot",
    summary="Bars around one trade with factor values, and which condition leaves held at entry and exit",
    responses=RESULT,
)
async def get_trade_snapshot(
    backtest_id: uuid.UUID,
    number: Annotated[int, Path(ge=0, le=10_000_000, description="The trade's `number` in /trades.")],
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    bars_before: Annotated[int, Query(ge=0, le=500)] = 20,
    bars_after: Annotated[int, Query(ge=0, le=500)] = 10,
) -> TradeSnapshotOut:
    async with uow:
        return await BacktestService(uow, principal, resources).trade_snapshot(
            backtest_id, number, bars_before=bars_before, bars_after=bars_after
        )
