"""Backtest tools: start a job, follow it, read its summary, analysis views, trades and trade snapshots."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from apps.mcp.auth import principal_of
from apps.mcp.domains.common import add_capabilities_tool, validated
from apps.mcp.registry import domain_errors, new_domain_server
from packages.core.backtests.schemas import (
    AnalysisOut,
    AnalysisView,
    BacktestList,
    BacktestOut,
    CreateBacktestRequest,
    TradePage,
    TradeSnapshotOut,
)
from packages.core.backtests.service import BacktestService
from packages.core.idempotency import IdempotencyKey
from packages.core.jobs.schemas import CancelOut, JobStatus
from packages.core.resources import Resources
from packages.core.strategies.schemas import MAX_VERSION
from packages.domain.backtest.assumptions import ExecutionAssumptions

SUMMARY = "Run backtests of your strategies on stored market data and read their results and analysis views."

READ_ONLY = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False)

BacktestId = Annotated[uuid.UUID, Field(description="A backtest id from create_backtest or list_backtests.")]


def build(resources: Resources) -> MCPServer:
    server = new_domain_server(resources, "backtest", SUMMARY)
    add_capabilities_tool(server, "backtest", SUMMARY)

    @server.tool(
        description=(
            "Start a backtest of a saved strategy (strategy_id, optional version) or of an unsaved document, "
            "over [start, end) of the stored bars (defaults: all stored data). Returns the job at once "
            "(status 'queued'); poll get_backtest until status is 'succeeded' (usually a second or two). "
            "Pass the same idempotency_key when retrying so a retry does not start a second job."
        ),
        annotations=ToolAnnotations(
            readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False
        ),
    )
    @domain_errors
    async def create_backtest(
        ctx: Context,
        strategy_id: Annotated[uuid.UUID | None, Field(description="A saved strategy.")] = None,
        version: Annotated[int | None, Field(ge=1, le=MAX_VERSION)] = None,
        document: Annotated[
            dict[str, Any] | None, Field(description="An unsaved strategy document instead of strategy_id.")
        ] = None,
        start: Annotated[str | None, Field(max_length=40, description="ISO date or time, UTC.")] = None,
        end: Annotated[
            str | None, Field(max_length=40, description="ISO date or time, UTC; exclusive.")
        ] = None,
        assumptions: Annotated[
            ExecutionAssumptions | None,
            Field(description="Initial cash, fees, slippage, spread, margin...; conservative defaults."),
        ] = None,
        benchmark: Annotated[str | None, Field(max_length=32, description="e.g. 'SPX'.")] = None,
        idempotency_key: Annotated[str | None, Field(min_length=1, max_length=200)] = None,
    ) -> BacktestOut:
        principal = principal_of(ctx)
        body = validated(
            CreateBacktestRequest,
            "backtest",
            strategy_id=strategy_id,
            version=version,
            document=document,
            start=start,
            end=end,
            assumptions=assumptions,
            benchmark=benchmark,
        )
        async with resources.unit_of_work() as uow:
            job, _ = await BacktestService(uow, principal, resources).create(
                body, IdempotencyKey.argument(idempotency_key)
            )
        return job

    @server.tool(
        description=(
            "A backtest's status and progress; once succeeded, a compact summary: key metrics (returns "
            "as fractions, e.g. 0.12 = 12%), trade count, warnings to heed, and provenance hashes."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_backtest(ctx: Context, backtest_id: BacktestId) -> BacktestOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            detail = await BacktestService(uow, principal, resources).get(backtest_id)
        return BacktestOut(**detail.model_dump(exclude={"metrics"}))

    @server.tool(
        description=(
            "One analysis view of a succeeded backtest: monthly_returns, pnl_by_entry_hour, "
            "pnl_by_entry_weekday, holding_period_bins, long_short, exit_reasons, per_symbol, "
            "underwater (drawdown series + worst episodes), rolling (return/volatility/Sharpe). Returns, "
            "drawdowns and win rates are fractions (0.0123 = 1.23%)."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_backtest_analysis(
        ctx: Context,
        backtest_id: BacktestId,
        view: AnalysisView,
        points: Annotated[
            int, Field(ge=10, le=500, description="Series length for underwater/rolling.")
        ] = 100,
        window: Annotated[int, Field(ge=2, le=2000, description="Return periods for rolling.")] = 63,
    ) -> AnalysisOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await BacktestService(uow, principal, resources).analysis(
                backtest_id, view, points=points, window=window
            )

    @server.tool(
        description=(
            "A page of a succeeded backtest's trades in entry order: entry/exit times and prices, PnL, exit "
            "reason, and trade_return, mae and mfe as fractions (0.0123 = 1.23%)."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_backtest_trades(
        ctx: Context,
        backtest_id: BacktestId,
        offset: Annotated[int, Field(ge=0, le=10_000_000)] = 0,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
    ) -> TradePage:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await BacktestService(uow, principal, resources).trades(
                backtest_id, offset=offset, limit=limit
            )

    @server.tool(
        description=(
            "Why a trade happened: the bars around trade `trade_number` (from get_backtest_trades) with "
            "factor values, and which condition leaves of the strategy held at its entry and exit signals."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_trade_snapshot(
        ctx: Context,
        backtest_id: BacktestId,
        trade_number: Annotated[int, Field(ge=0, le=10_000_000)],
        bars_before: Annotated[int, Field(ge=0, le=50)] = 10,
        bars_after: Annotated[int, Field(ge=0, le=50)] = 5,
    ) -> TradeSnapshotOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await BacktestService(uow, principal, resources).trade_snapshot(
                backtest_id, trade_number, bars_before=bars_before, bars_after=bars_after
            )

    @server.tool(
        description="Cancel a queued or running backtest. A finished backtest is left unchanged.",
        annotations=ToolAnnotations(
            readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False
        ),
    )
    @domain_errors
    async def cancel_backtest(ctx: Context, backtest_id: BacktestId) -> CancelOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await BacktestService(uow, principal, resources).cancel(backtest_id)

    @server.tool(description="Your backtests, newest first (optionally one status).", annotations=READ_ONLY)
    @domain_errors
    async def list_backtests(
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Field(max_length=200)] = None,
        status: JobStatus | None = None,
    ) -> BacktestList:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await BacktestService(uow, principal, resources).list(
                limit=limit, cursor=cursor, status=status
            )

    return server
