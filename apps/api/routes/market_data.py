from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from apps.api.deps import PrincipalDep, ResourcesDep, UowDep, idempotency_header
from apps.api.problems import problem_responses
from packages.core.errors import FieldError, ValidationFailed
from packages.core.idempotency import IdempotencyKey
from packages.core.jobs.schemas import CancelOut
from packages.core.market_data.schemas import (
    BarsPage,
    GapPolicyName,
    GapsOut,
    ImportList,
    ImportOut,
    ImportParams,
    Instant,
    MarketName,
    QuoteOut,
    RegimeSnapshotOut,
    SearchText,
    StorableText,
    Symbol,
    SymbolDetail,
    SymbolList,
    SyncJobCreate,
    SyncJobList,
    SyncJobOut,
    TimeframeName,
    TradingFrequencyName,
    UdfConfig,
    UdfHistory,
    UdfSearchItem,
    UdfSymbolInfo,
    UdfTicker,
)
from packages.core.market_data.service import MarketDataService, parse_mapping_json
from packages.core.market_data.udf import UdfService

router = APIRouter(prefix="/market-data", tags=["market-data"])
udf_router = APIRouter(prefix="/market-data/udf", tags=["market-data-udf"])

MarketQuery = Annotated[MarketName, Query(description="us_stocks, crypto, forex or futures")]
SymbolQuery = Annotated[Symbol, Query(description="Ticker as stored, e.g. AAPL, EURUSD, BTC/USDT")]
TimeframeQuery = Annotated[TimeframeName, Query(description="1m, 5m, 15m, 30m, 1h, 2h, 4h, 1d or 1w")]
IdempotencyKeyHeader = Annotated[
    str | None, idempotency_header("Repeat a request safely: the same key and body return the first job.")
]
CursorQuery = Annotated[
    Annotated[str, StorableText] | None,
    Query(max_length=500, description="next_cursor of the previous page; omit for the first page."),
]


@router.get(
    "/symbols",
    operation_id="market_data_search_symbols",
    summary="Search stored symbols by text and market (shared data and your imports), paged by cursor",
    responses=problem_responses(401, 422),
)
async def search_symbols(
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    q: Annotated[SearchText | None, Query(description="Part of the symbol, case-insensitive")] = None,
    market: Annotated[MarketName | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: CursorQuery = None,
) -> SymbolList:
    async with uow:
        return await MarketDataService(uow, principal, resources).search_symbols(q, market, limit, cursor)


@router.get(
    "/symbols/{market}/{symbol:path}",
    operation_id="market_data_get_symbol",
    summary="A symbol's metadata: stored datasets with coverage, servable timeframes, session",
    responses=problem_responses(401, 404, 422),
)
async def get_symbol(
    market: MarketName, symbol: Symbol, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> SymbolDetail:
    async with uow:
        return await MarketDataService(uow, principal, resources).symbol_detail(market, symbol)


@router.get(
    "/bars",
    operation_id="market_data_get_bars",
    summary="OHLCV bars of any timeframe, oldest first, paged with an opaque cursor",
    description=(
        "Bars stamped in [start, end). Timestamps are UTC: an intraday bar carries its open time, a "
        "daily bar its trading day at 00:00 UTC and a weekly bar its week's Monday at 00:00 UTC. "
        "Without start, from the first stored bar. Coarser timeframes are resampled from the stored "
        "base along the market's sessions. When next_cursor is set, call again with the same "
        "parameters and cursor=next_cursor."
    ),
    responses=problem_responses(401, 404, 422),
)
async def get_bars(
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    market: MarketQuery,
    symbol: SymbolQuery,
    timeframe: TimeframeQuery,
    start: Annotated[Instant | None, Query()] = None,
    end: Annotated[Instant | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    cursor: CursorQuery = None,
) -> BarsPage:
    limit = min(limit, resources.settings.market_data.max_page_bars)
    async with uow:
        return await MarketDataService(uow, principal, resources).bars(
            market, symbol, timeframe, start, end, limit, cursor
        )


@router.get(
    "/quote",
    operation_id="market_data_get_quote",
    summary="Latest completed bar and quote: realtime cache, else the offline replay clock",
    responses=problem_responses(401, 404, 422),
)
async def get_quote(
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    market: MarketQuery,
    symbol: SymbolQuery,
) -> QuoteOut:
    async with uow:
        return await MarketDataService(uow, principal, resources).quote(market, symbol)


@router.get(
    "/gaps",
    operation_id="market_data_detect_gaps",
    summary="Missing ranges of a symbol's stored bars against its market calendar",
    responses=problem_responses(401, 422),
)
async def detect_gaps(
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    market: MarketQuery,
    symbol: SymbolQuery,
    timeframe: TimeframeQuery,
    start: Annotated[Instant, Query()],
    end: Annotated[Instant, Query()],
) -> GapsOut:
    async with uow:
        return await MarketDataService(uow, principal, resources).gaps(market, symbol, timeframe, start, end)


@router.get(
    "/regime",
    operation_id="market_data_regime_snapshot",
    summary="Regime snapshot: trend, mean-reversion and volatility scores for a trading style",
    responses=problem_responses(401, 404, 422),
)
async def regime_snapshot(
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    market: MarketQuery,
    symbol: SymbolQuery,
    trading_frequency: Annotated[TradingFrequencyName, Query()],
    holding_period_minutes: Annotated[float | None, Query(ge=1, le=525_600)] = None,
) -> RegimeSnapshotOut:
    async with uow:
        return await MarketDataService(uow, principal, resources).regime(
            market, symbol, trading_frequency, holding_period_minutes
        )


@router.post(
    "/imports",
    status_code=status.HTTP_201_CREATED,
    operation_id="market_data_create_import",
    summary="Import bars from a CSV or Parquet file; returns the data-quality report",
    description=(
        "Multipart form: 'file', plus 'market', 'symbol', 'timeframe', 'timezone' (IANA zone of "
        "timestamps without an offset), optional 'mapping' (JSON object: bar field -> column, e.g. "
        '{"ts": "Date", "open": "Open", "volume": null}), \'gap_policy\' (keep, forward_fill, '
        "drop_incomplete_sessions), 'file_format' (csv or parquet; default: detected) and "
        "'outlier_threshold'. The dataset is private to you; a rejected file answers 422 and is "
        "recorded with the reason."
    ),
    responses=problem_responses(401, 413, 422),
)
async def create_import(
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    file: Annotated[UploadFile, File(description="CSV (with a header row) or Parquet")],
    market: Annotated[MarketName, Form()],
    symbol: Annotated[Symbol, Form()],
    timeframe: Annotated[TimeframeName, Form()],
    timezone: Annotated[str, Form(min_length=1, max_length=64)],
    mapping: Annotated[str | None, Form(max_length=4000)] = None,
    gap_policy: Annotated[GapPolicyName, Form()] = "keep",
    file_format: Annotated[str | None, Form(pattern="^(csv|parquet)$")] = None,
    outlier_threshold: Annotated[float, Form(ge=3.0, le=100.0)] = 10.0,
) -> ImportOut:
    try:
        params = ImportParams.model_validate(
            {
                "market": market,
                "symbol": symbol,
                "timeframe": timeframe,
                "timezone": timezone,
                "mapping": parse_mapping_json(mapping),
                "gap_policy": gap_policy,
                "file_format": file_format,
                "outlier_threshold": outlier_threshold,
            }
        )
    except ValidationError as error:
        raise ValidationFailed(
            "The import parameters are not valid.",
            errors=[_form_error(e) for e in error.errors()],
        ) from error
    data = await file.read()
    if not data:
        raise ValidationFailed(
            "The uploaded file is empty.", errors=[FieldError("empty_file", "/file", "no bytes")]
        )
    async with uow:
        return await MarketDataService(uow, principal, resources).create_import(
            params, data, file.filename or "upload"
        )


def _form_error(error: ErrorDetails) -> FieldError:
    """A form field's error; a model-wide check (unstorable text) names the field in its context."""
    pointer = "".join(f"/{part}" for part in error["loc"])
    inner = (error.get("ctx") or {}).get("pointer")
    if isinstance(inner, str):
        pointer += inner
    return FieldError(str(error["type"]), pointer, str(error["msg"]))


@router.get(
    "/imports",
    operation_id="market_data_list_imports",
    summary="Your imports, newest first",
    responses=problem_responses(401, 422),
)
async def list_imports(
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: CursorQuery = None,
) -> ImportList:
    async with uow:
        return await MarketDataService(uow, principal, resources).list_imports(limit, cursor)


@router.get(
    "/imports/{import_id}",
    operation_id="market_data_get_import",
    summary="One of your imports with its data-quality report",
    responses=problem_responses(401, 404, 422),
)
async def get_import(
    import_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> ImportOut:
    async with uow:
        return await MarketDataService(uow, principal, resources).get_import(import_id)


@router.post(
    "/sync-jobs",
    status_code=status.HTTP_201_CREATED,
    operation_id="market_data_create_sync_job",
    summary="Fetch a range's missing bars from the market's provider, as a chunked background job",
    description=(
        "Detects the missing ranges now and queues one job that fetches them chunk by chunk on the "
        "market_data queue. With network access disabled (the development default) every chunk "
        "fails with a clear error. 200 instead of 201 when an Idempotency-Key repeats a request."
    ),
    responses={
        200: {"model": SyncJobOut, "description": "repeated Idempotency-Key"},
        **problem_responses(401, 422),
    },
)
async def create_sync_job(
    body: SyncJobCreate,
    response: Response,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> SyncJobOut:
    async with uow:
        job, created = await MarketDataService(uow, principal, resources).create_sync_job(
            body, IdempotencyKey.header(idempotency_key)
        )
    if not created:
        response.status_code = status.HTTP_200_OK
    return job


@router.get(
    "/sync-jobs/{job_id}",
    operation_id="market_data_get_sync_job",
    summary="A sync job's status, progress, row counts and per-chunk results",
    responses=problem_responses(401, 404, 422),
)
async def get_sync_job(
    job_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> SyncJobOut:
    async with uow:
        return await MarketDataService(uow, principal, resources).get_sync_job(job_id)


@router.get(
    "/sync-jobs",
    operation_id="market_data_list_sync_jobs",
    summary="Your sync jobs, newest first",
    responses=problem_responses(401, 422),
)
async def list_sync_jobs(
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: CursorQuery = None,
) -> SyncJobList:
    async with uow:
        return await MarketDataService(uow, principal, resources).list_sync_jobs(limit, cursor)


@router.post(
    "/sync-jobs/{job_id}/cancel",
    operation_id="market_data_cancel_sync_job",
    summary="Cancel a queued or running sync job (chunks already fetched stay stored)",
    responses=problem_responses(401, 404, 422),
)
async def cancel_sync_job(
    job_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> CancelOut:
    async with uow:
        return await MarketDataService(uow, principal, resources).cancel_sync_job(job_id)


# ---------------------------------------------------------------- TradingView UDF-style datafeed
@udf_router.get(
    "/config",
    operation_id="market_data_udf_config",
    summary="UDF datafeed configuration",
    responses=problem_responses(401),
)
async def udf_config(principal: PrincipalDep, uow: UowDep, resources: ResourcesDep) -> UdfConfig:
    async with uow:
        return await UdfService(MarketDataService(uow, principal, resources)).config()


@udf_router.get(
    "/search",
    operation_id="market_data_udf_search",
    summary="UDF symbol search",
    responses=problem_responses(401, 422),
)
async def udf_search(
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    query: Annotated[SearchText, Query()] = "",
    symbol_type: Annotated[str, Query(alias="type", max_length=32), StorableText] = "",
    exchange: Annotated[MarketName | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
) -> list[UdfSearchItem]:
    async with uow:
        return await UdfService(MarketDataService(uow, principal, resources)).search(
            query, symbol_type, exchange, limit
        )


@udf_router.get(
    "/symbols",
    operation_id="market_data_udf_symbol",
    summary="UDF symbol information ('market:SYMBOL', or a bare symbol)",
    responses=problem_responses(401, 404, 422),
)
async def udf_symbol(
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    symbol: Annotated[UdfTicker, Query()],
) -> UdfSymbolInfo:
    async with uow:
        return await UdfService(MarketDataService(uow, principal, resources)).symbol_info(symbol)


@udf_router.get(
    "/history",
    operation_id="market_data_udf_history",
    summary="UDF bars: parallel arrays s/t/o/h/l/c/v (unix seconds), or no_data with nextTime",
    responses=problem_responses(401, 404, 422),
)
async def udf_history(
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    symbol: Annotated[UdfTicker, Query()],
    resolution: Annotated[str, Query(min_length=1, max_length=8), StorableText],
    from_: Annotated[int, Query(alias="from", ge=-2_208_988_800, le=7_258_118_400)],
    to: Annotated[int, Query(ge=-2_208_988_800, le=7_258_118_400)],
    countback: Annotated[int | None, Query(ge=1, le=5000)] = None,
) -> UdfHistory:
    async with uow:
        return await UdfService(MarketDataService(uow, principal, resources)).history(
            symbol, resolution, from_, to, countback
        )
