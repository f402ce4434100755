"""Market tools: what data exists, candles, metadata, regime snapshots, and filling data gaps."""

from __future__ import annotations

import uuid
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from apps.mcp.auth import principal_of
from apps.mcp.domains.common import add_capabilities_tool
from apps.mcp.registry import domain_errors, new_domain_server
from packages.core.idempotency import IdempotencyKey
from packages.core.jobs.schemas import CancelOut
from packages.core.market_data.schemas import (
    BarsPage,
    DatasetOut,
    GapsOut,
    Instant,
    MarketName,
    RegimeSnapshotOut,
    SearchText,
    Symbol,
    SymbolDetail,
    SymbolList,
    SymbolSummary,
    SyncJobCreate,
    SyncJobOut,
    TimeframeName,
    TradingFrequencyName,
)
from packages.core.market_data.service import MarketDataService
from packages.core.resources import Resources

SUMMARY = "Find symbols, coverage, candles and regime snapshots in the market-data store; fill data gaps."

READ_ONLY = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False)
STARTS_JOB = ToolAnnotations(
    readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=True
)
CANCELS_JOB = ToolAnnotations(
    readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False
)

MAX_CANDLES = 1000

MarketArg = Annotated[MarketName, Field(description="us_stocks, crypto, forex or futures.")]
SymbolArg = Annotated[Symbol, Field(description="Ticker as stored, e.g. AAPL, SPX, EURUSD, BTC/USDT.")]
TimeframeArg = Annotated[TimeframeName, Field(description="1m, 5m, 15m, 30m, 1h, 2h, 4h, 1d or 1w.")]
StartArg = Annotated[Instant, Field(description="Range start, ISO 8601 (UTC if no offset).")]
EndArg = Annotated[Instant, Field(description="Range end (exclusive), ISO 8601 (UTC if no offset).")]


class Availability(BaseModel):
    symbol: str
    available: bool
    matches: list[SymbolSummary] = Field(description="Stored datasets of exactly this symbol, per market.")
    similar: list[str] = Field(description="Other stored symbols containing the text, as market:SYMBOL.")


class CoverageOut(BaseModel):
    market: MarketName
    symbol: str
    scope: str = Field(description="Where bars are read from: your import shadows shared data.")
    datasets: list[DatasetOut] = Field(description="Stored timeframes with first/last bar and row count.")
    servable_timeframes: list[str]


class CandlesOut(BaseModel):
    candles: BarsPage
    note: str


def build(resources: Resources) -> MCPServer:
    server = new_domain_server(resources, "market", SUMMARY)
    add_capabilities_tool(server, "market", SUMMARY)

    @server.tool(
        name="check_symbol_availability",
        description=(
            "Whether market data exists for a symbol (in any market, or one market), with its stored "
            "timeframes and coverage, and similar symbols when it does not. Call it before proposing a "
            "strategy on a symbol."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def check_symbol_availability(
        ctx: Context, symbol: SymbolArg, market: MarketArg | None = None
    ) -> Availability:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            found = await MarketDataService(uow, principal, resources).search_symbols(symbol, market, 50)
        wanted = symbol.strip().upper()
        matches = [item for item in found.items if item.symbol == wanted]
        similar = sorted({f"{item.market}:{item.symbol}" for item in found.items if item.symbol != wanted})
        return Availability(symbol=wanted, available=bool(matches), matches=matches, similar=similar[:20])

    @server.tool(
        name="list_symbols",
        description=(
            "List the symbols with stored data, optionally in one market and containing some text, with "
            "their stored timeframes and coverage. Use it to discover what can be backtested. When "
            "next_cursor is set, call again with cursor=next_cursor for more."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def list_symbols(
        ctx: Context,
        market: MarketArg | None = None,
        query: Annotated[SearchText | None, Field(description="Part of the symbol.")] = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 100,
        cursor: Annotated[
            str | None, Field(max_length=500, description="next_cursor of the previous page.")
        ] = None,
    ) -> SymbolList:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await MarketDataService(uow, principal, resources).search_symbols(
                query, market, limit, cursor
            )

    @server.tool(
        name="get_coverage",
        description=(
            "Coverage of one symbol: each stored timeframe with its first and last bar, row count and "
            "source, and every timeframe that can be served. Use it to pick a backtest range."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_coverage(ctx: Context, market: MarketArg, symbol: SymbolArg) -> CoverageOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            detail = await MarketDataService(uow, principal, resources).symbol_detail(market, symbol)
        return CoverageOut(
            market=detail.market,
            symbol=detail.symbol,
            scope=detail.scope,
            datasets=detail.datasets,
            servable_timeframes=detail.servable_timeframes,
        )

    @server.tool(
        name="get_symbol_metadata",
        description=(
            "Metadata of one symbol: asset class, trading session and time zone, where the data comes "
            "from (provenance, licence) and whether it is shared data or your own import."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_symbol_metadata(ctx: Context, market: MarketArg, symbol: SymbolArg) -> SymbolDetail:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await MarketDataService(uow, principal, resources).symbol_detail(market, symbol)

    @server.tool(
        name="get_candles",
        description=(
            f"OHLCV candles of a symbol at any timeframe: the last `limit` (at most {MAX_CANDLES}) bars "
            "stamped before `end` (default: the latest) and at or after `start`. Timestamps are UTC: an "
            "intraday bar carries its open time, a daily bar its trading day at 00:00 UTC and a weekly "
            "bar its week's Monday at 00:00 UTC. Use it to look at recent price action, not to download "
            "history."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_candles(
        ctx: Context,
        market: MarketArg,
        symbol: SymbolArg,
        timeframe: TimeframeArg,
        start: Annotated[Instant | None, Field(description="Earliest bar timestamp, ISO 8601.")] = None,
        end: Annotated[Instant | None, Field(description="Bars stamped before this, ISO 8601.")] = None,
        limit: Annotated[int, Field(ge=1, le=MAX_CANDLES)] = 200,
    ) -> CandlesOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            page = await MarketDataService(uow, principal, resources).latest_bars(
                market, symbol, timeframe, start, end, limit
            )
        served = page.served_from
        note = (
            f"{page.count} {timeframe} bars"
            + ("" if served == timeframe else f", resampled from stored {served} bars")
            + f" ({page.scope} data)."
        )
        return CandlesOut(candles=page, note=note)

    @server.tool(
        name="get_regime_snapshot",
        description=(
            "Pre-strategy regime snapshot for a symbol and the user's trading style: picks timeframes "
            "matching the trading frequency and holding period, computes trend, mean-reversion and "
            "volatility features (ADX, efficiency ratio, Hurst, volatility percentiles...) and scores "
            "the three strategy families in [0, 1] with the evidence. Ratios and returns are fractions "
            "(atr_to_price 0.0123 = ATR of 1.23% of price; return_over_lookback over the bars used); "
            "percentiles run 0-100. Call it before choosing a strategy family."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_regime_snapshot(
        ctx: Context,
        market: MarketArg,
        symbol: SymbolArg,
        trading_frequency: Annotated[
            TradingFrequencyName, Field(description="scalping, intraday, swing or position.")
        ],
        holding_period_minutes: Annotated[
            float | None,
            Field(ge=1, le=525_600, description="Typical holding period; default per frequency."),
        ] = None,
    ) -> RegimeSnapshotOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await MarketDataService(uow, principal, resources).regime(
                market, symbol, trading_frequency, holding_period_minutes
            )

    @server.tool(
        name="detect_missing_ranges",
        description=(
            "Missing bars of a symbol between start and end, against its market calendar (weekends, "
            "holidays and session hours are not gaps). Use it before a backtest; fill gaps with "
            "fetch_missing_ranges."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def detect_missing_ranges(
        ctx: Context,
        market: MarketArg,
        symbol: SymbolArg,
        timeframe: TimeframeArg,
        start: StartArg,
        end: EndArg,
    ) -> GapsOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await MarketDataService(uow, principal, resources).gaps(
                market, symbol, timeframe, start, end
            )

    @server.tool(
        name="fetch_missing_ranges",
        description=(
            "Start a background job that fetches the missing bars between start and end from the "
            "market's provider, in chunks. Returns the job at once; poll get_sync_job with its id. "
            "When network access is disabled every chunk reports that clearly."
        ),
        annotations=STARTS_JOB,
    )
    @domain_errors
    async def fetch_missing_ranges(
        ctx: Context,
        market: MarketArg,
        symbol: SymbolArg,
        timeframe: TimeframeArg,
        start: StartArg,
        end: EndArg,
        idempotency_key: Annotated[
            str | None,
            Field(min_length=1, max_length=200, description="The same key on a retry returns the first job."),
        ] = None,
    ) -> SyncJobOut:
        principal = principal_of(ctx)
        body = SyncJobCreate(market=market, symbol=symbol, timeframe=timeframe, start=start, end=end)
        async with resources.unit_of_work() as uow:
            job, _created = await MarketDataService(uow, principal, resources).create_sync_job(
                body, IdempotencyKey.argument(idempotency_key)
            )
        return job

    @server.tool(
        name="get_sync_job",
        description=(
            "Status of a sync job started by fetch_missing_ranges: progress, rows written and each "
            "chunk's result or error."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_sync_job(
        ctx: Context, job_id: Annotated[uuid.UUID, Field(description="Id from fetch_missing_ranges.")]
    ) -> SyncJobOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await MarketDataService(uow, principal, resources).get_sync_job(job_id)

    @server.tool(
        name="cancel_sync_job",
        description=(
            "Stop a sync job started by fetch_missing_ranges. Chunks already fetched stay stored; a "
            "finished job is left as it is."
        ),
        annotations=CANCELS_JOB,
    )
    @domain_errors
    async def cancel_sync_job(
        ctx: Context, job_id: Annotated[uuid.UUID, Field(description="Id from fetch_missing_ranges.")]
    ) -> CancelOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await MarketDataService(uow, principal, resources).cancel_sync_job(job_id)

    return server
