from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from pydantic_core import PydanticCustomError

from packages.core.schemas import StrictModel, find_unstorable_text

MarketName = Literal["us_stocks", "crypto", "forex", "futures"]
TimeframeName = Literal["1m", "5m", "15m", "30m", "1h", "2h", "4h", "1d", "1w"]
Scope = Literal["shared", "private"]
GapPolicyName = Literal["keep", "forward_fill", "drop_incomplete_sessions"]
TradingFrequencyName = Literal["scalping", "intraday", "swing", "position"]

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/=^-]{0,63}$"
Symbol = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=SYMBOL_PATTERN),
]


def _storable(value: str) -> str:
    """Free text that reaches the database (or is echoed back) must be storable: no NUL character,
    no lone surrogate. Request bodies get this from ``StrictModel``; query parameters from here."""
    found = find_unstorable_text(value)
    if found is not None:
        raise PydanticCustomError(found.code, "{message}", {"message": found.message})
    return value


StorableText = AfterValidator(_storable)
SearchText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64), StorableText]
# A UDF ticker: "market:SYMBOL" or a bare symbol.
UdfTicker = Annotated[str, StringConstraints(min_length=1, max_length=80), StorableText]

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _utc_in_bounds(value: datetime) -> datetime:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not EARLIEST <= aware <= LATEST:
        raise ValueError("must lie between 1900-01-01 and 2200-01-01")
    return aware.astimezone(UTC)


# Naive values are read as UTC; bars exist for years between 1900 and 2200.
Instant = Annotated[datetime, AfterValidator(_utc_in_bounds)]


# -------------------------------------------------------------------------------------- symbols
class DatasetOut(BaseModel):
    scope: Scope = Field(description="shared: everyone's data; private: your own import.")
    timeframe: str = Field(description="The stored (base) timeframe; coarser ones are resampled from it.")
    coverage_start: datetime | None
    coverage_end: datetime | None = Field(description="Open time of the last stored bar.")
    row_count: int
    checksum: str
    source: str = Field(description="archive, import or sync")
    asset_class: str | None
    provenance: dict[str, Any]
    updated_at: datetime


class SymbolSummary(BaseModel):
    market: MarketName
    symbol: str
    scope: Scope
    asset_class: str | None
    timeframes: list[str] = Field(description="Stored base timeframes.")
    coverage_start: datetime | None
    coverage_end: datetime | None


class SymbolList(BaseModel):
    items: list[SymbolSummary]
    total: int = Field(description="How many there are in all.")
    limit: int
    next_cursor: str | None = Field(description="Pass as 'cursor' for the next page; null at the end.")


class SessionInfo(BaseModel):
    calendar: str
    timezone: str


class SymbolDetail(BaseModel):
    market: MarketName
    symbol: str
    asset_class: str | None
    scope: Scope = Field(description="Where bars are read from: your import shadows shared data.")
    datasets: list[DatasetOut]
    servable_timeframes: list[str] = Field(description="Every timeframe GET /bars can answer.")
    session: SessionInfo


# ----------------------------------------------------------------------------------------- bars
class Bar(BaseModel):
    ts: datetime = Field(description="Bar open, UTC.")
    open: float
    high: float
    low: float
    close: float
    volume: float


class BarsPage(BaseModel):
    market: MarketName
    symbol: str
    timeframe: TimeframeName
    scope: Scope
    served_from: str = Field(description="Stored timeframe the bars come from (resampled when coarser).")
    count: int
    bars: list[Bar]
    next_cursor: str | None = Field(description="Pass as 'cursor' for the next page; null at the end.")


class QuoteValues(BaseModel):
    ts: datetime
    bid: float | None
    ask: float | None
    last: float


class QuoteOut(BaseModel):
    market: MarketName
    symbol: str
    timeframe: str
    source: str = Field(description="'replay' (stored history on a replay clock) or the provider's name.")
    as_of: datetime = Field(description="Market time of the snapshot (simulated time for replay).")
    bar: Bar | None = Field(description="Latest completed bar.")
    quote: QuoteValues | None
    exhausted: bool = Field(description="Replay only: the clock reached the end of stored history.")


# ----------------------------------------------------------------------------------------- gaps
class GapRange(BaseModel):
    start: datetime
    end: datetime = Field(description="Exclusive end of the missing span.")
    missing_bars: int


class GapsOut(BaseModel):
    market: MarketName
    symbol: str
    timeframe: TimeframeName
    checked_timeframe: str = Field(description="Stored timeframe whose bars were checked.")
    scope: Scope | None = Field(description="Dataset checked; null when nothing is stored yet.")
    start: datetime
    end: datetime
    expected_bars: int
    missing_bars: int
    ranges: list[GapRange]
    ranges_total: int
    truncated: bool = Field(description="True when more ranges exist than are listed.")


# -------------------------------------------------------------------------------------- imports
MappedColumn = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ColumnMappingIn(StrictModel):
    """Which input column holds each bar field."""

    ts: MappedColumn = "ts"
    open: MappedColumn = "open"
    high: MappedColumn = "high"
    low: MappedColumn = "low"
    close: MappedColumn = "close"
    volume: MappedColumn | None = Field(default="volume", description="null when the file has no volume.")
    timestamp_format: Annotated[str, StringConstraints(max_length=100)] | None = Field(
        default=None, description="strftime format of the timestamp column; default: inferred."
    )


class ImportParams(StrictModel):
    market: MarketName
    symbol: Symbol
    timeframe: TimeframeName
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="IANA zone of timestamps without an offset, e.g. America/New_York or UTC."
    )
    mapping: ColumnMappingIn = ColumnMappingIn()
    gap_policy: GapPolicyName = "keep"
    file_format: Literal["csv", "parquet"] | None = None
    outlier_threshold: float = Field(default=10.0, ge=3.0, le=100.0)


ImportStatus = Literal["succeeded", "rejected"]


class ImportSummary(BaseModel):
    id: uuid.UUID
    status: ImportStatus
    file_name: str
    file_format: str
    file_bytes: int
    market: str
    symbol: str
    timeframe: str
    timezone: str
    gap_policy: str
    rows_in: int | None
    rows_out: int | None
    defect_names: list[str] = Field(description="Defects the quality report found.")
    created_at: datetime
    finished_at: datetime | None


class ImportOut(ImportSummary):
    column_mapping: dict[str, Any]
    quality_report: dict[str, Any] | None = Field(
        description="Every defect found (gaps, duplicates, non-monotonic rows, zero volume, OHLC "
        "inconsistencies, outlier jumps, DST artefacts...) with the rows concerned and the action taken."
    )
    error: dict[str, Any] | None
    dataset: DatasetOut | None


class ImportList(BaseModel):
    items: list[ImportSummary]
    total: int = Field(description="How many there are in all.")
    limit: int
    next_cursor: str | None = Field(description="Pass as 'cursor' for the next page; null at the end.")


# ------------------------------------------------------------------------------------ sync jobs
class SyncJobCreate(StrictModel):
    market: MarketName
    symbol: Symbol
    timeframe: TimeframeName
    start: Instant
    end: Instant


SyncJobStatus = Literal["queued", "running", "succeeded", "partial", "failed", "cancelled"]


class SyncChunkOut(BaseModel):
    chunk_id: int
    start: datetime
    end: datetime
    status: Literal["pending", "done", "failed", "skipped"]
    rows_fetched: int = 0
    rows_written: int = 0
    error: str | None = None
    seconds: float = 0.0


class SyncJobOut(BaseModel):
    id: uuid.UUID
    status: SyncJobStatus = Field(
        description="partial: some chunks failed (see chunks[].error); failed: none succeeded."
    )
    market: str
    symbol: str
    timeframe: str
    scope: Scope
    provider: str
    range_start: datetime
    range_end: datetime
    progress: float
    progress_message: str | None
    cancel_requested: bool
    chunks_total: int
    chunks_failed: int
    rows_written: int
    chunks: list[SyncChunkOut]
    error: dict[str, Any] | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class SyncJobList(BaseModel):
    items: list[SyncJobOut]
    total: int = Field(description="How many there are in all.")
    limit: int
    next_cursor: str | None = Field(description="Pass as 'cursor' for the next page; null at the end.")


# ---------------------------------------------------------------------------------------- regime
class RegimeSnapshotOut(BaseModel):
    market: MarketName
    symbol: str
    scope: Scope
    frequency: TradingFrequencyName
    holding_period_minutes: float | None
    timeframes: dict[str, str | None] = Field(description="primary and context timeframes used.")
    notes: list[str]
    as_of: datetime
    features: dict[str, Any]
    families: dict[str, Any] = Field(
        description="trend_continuation, mean_reversion, volatility_regime: score in [0, 1] with evidence."
    )
    leading_family: str


# ------------------------------------------------------------------------------------------- UDF
class UdfExchange(BaseModel):
    value: str
    name: str
    desc: str


class UdfSymbolType(BaseModel):
    name: str
    value: str


class UdfConfig(BaseModel):
    supported_resolutions: list[str]
    supports_search: bool = True
    supports_group_request: bool = False
    supports_marks: bool = False
    supports_timescale_marks: bool = False
    supports_time: bool = False
    exchanges: list[UdfExchange]
    symbols_types: list[UdfSymbolType]


class UdfSearchItem(BaseModel):
    symbol: str
    full_name: str
    description: str
    exchange: str
    ticker: str
    type: str


class UdfSymbolInfo(BaseModel):
    name: str
    ticker: str
    description: str
    type: str
    session: str
    timezone: str
    exchange: str
    listed_exchange: str
    minmov: int
    pricescale: int
    has_intraday: bool
    has_daily: bool
    has_weekly_and_monthly: bool
    supported_resolutions: list[str]
    intraday_multipliers: list[str]
    volume_precision: int
    data_status: str


class UdfHistory(BaseModel):
    """TradingView UDF history: parallel arrays (unix seconds), or no_data with nextTime."""

    s: Literal["ok", "no_data"]
    t: list[int] = []
    o: list[float] = []
    h: list[float] = []
    l: list[float] = []  # noqa: E741 (the UDF field name)
    c: list[float] = []
    v: list[float] = []
    nextTime: int | None = None
