"""Inputs and outputs of backtest jobs, shared by the REST routes and the MCP tools."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import BaseModel, Field, field_validator, model_validator

from packages.core.jobs.schemas import JobStatus
from packages.core.schemas import StrictModel
from packages.core.strategies.schemas import MAX_VERSION
from packages.domain.backtest.assumptions import ExecutionAssumptions

# The engine's analysis views (packages.domain.backtest.analytics.VIEWS), by the same names.
AnalysisView = Literal[
    "monthly_returns",
    "pnl_by_entry_hour",
    "pnl_by_entry_weekday",
    "holding_period_bins",
    "long_short",
    "exit_reasons",
    "per_symbol",
    "underwater",
    "rolling",
]
ANALYSIS_VIEWS: tuple[AnalysisView, ...] = get_args(AnalysisView)

BenchmarkSymbol = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[\^A-Za-z0-9./=_\-]+$")]

# Upper bounds on assumption values: the engine accepts any non-negative number, a request does not.
_ASSUMPTION_BOUNDS: dict[str, float] = {
    "initial_cash": 1e12,
    "fee_bps": 1_000.0,
    "fee_fixed": 1e6,
    "slippage_bps": 1_000.0,
    "volume_impact": 100.0,
    "spread_bps": 1_000.0,
    "margin_leverage": 100.0,
    "borrow_rate": 10.0,
    "quantity_step": 1e9,
    "periods_per_year": 1e7,
}


_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("the time is out of range") from exc
    if not _EARLIEST <= moment < _LATEST:
        raise ValueError("the time must lie between 1900 and 2200")
    return moment


class StrategyRunRequest(StrictModel):
    """A saved strategy (``strategy_id`` + optional ``version``) or an inline ``document``, over a range:
    what every job that runs a strategy (a backtest, each stress test) starts from."""

    strategy_id: uuid.UUID | None = Field(
        default=None, description="A saved strategy; its current version unless `version` is given."
    )
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION, description="Strategy version to test.")
    document: dict[str, Any] | None = Field(
        default=None, description="An unsaved strategy document in the Minsy DSL (instead of strategy_id)."
    )
    start: datetime | None = Field(
        default=None,
        description="First bar (open time, inclusive; UTC when no offset is given). Default: first stored bar.",
    )
    end: datetime | None = Field(
        default=None,
        description="End of the range (bar open times before it, exclusive). Default: after the last stored bar.",
    )
    assumptions: ExecutionAssumptions = Field(
        default_factory=ExecutionAssumptions,
        description="Execution assumptions (initial cash, fees, slippage, spread, margin, ...); echoed in the result.",
    )
    benchmark: BenchmarkSymbol | None = Field(
        default=None,
        description=(
            "A symbol of the strategy's market to compare against (buy and hold), e.g. 'SPX'. Default: "
            "an equal-weight buy and hold of the strategy's own universe."
        ),
    )

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)

    @field_validator("assumptions")
    @classmethod
    def _bounded(cls, value: ExecutionAssumptions) -> ExecutionAssumptions:
        for name, bound in _ASSUMPTION_BOUNDS.items():
            number = getattr(value, name)
            if number is not None and number > bound:
                raise ValueError(f"{name} must be at most {bound:g}")
        if not -1.0 <= value.risk_free_rate <= 1.0:
            raise ValueError("risk_free_rate must be between -1 and 1 (an annual fraction)")
        return value

    @model_validator(mode="after")
    def _one_strategy(self) -> Self:
        if (self.strategy_id is None) == (self.document is None):
            raise ValueError("give exactly one of strategy_id and document")
        if self.version is not None and self.strategy_id is None:
            raise ValueError("version needs strategy_id")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class CreateBacktestRequest(StrategyRunRequest):
    """A backtest of a saved strategy (``strategy_id`` + optional ``version``) or an inline ``document``."""


class JobRequest(BaseModel):
    """What a job row keeps in ``request``: everything the worker needs, resolved at submission
    (a saved strategy's document is copied, so the job runs the version it was asked for)."""

    document: dict[str, Any]
    document_hash: str
    market: str
    symbols: list[str]
    timeframe: str
    start: datetime | None
    end: datetime | None
    assumptions: ExecutionAssumptions
    benchmark: str | None
    estimated_bars: int

    @property
    def strategy_name(self) -> str | None:
        metadata = self.document.get("metadata")
        return str(metadata["name"]) if isinstance(metadata, dict) and metadata.get("name") else None


class BacktestCompact(BaseModel):
    """The part of a result worth reading first."""

    key_metrics: dict[str, float | int | str | bool | None] = Field(
        description=(
            "Returns, risk and trade statistics; the full set is under /analysis or in `metrics`. Returns, "
            "drawdowns, rates and shares are fractions (0.0123 = 1.23%), never percents."
        )
    )
    trades: int
    orders: int
    bars: int
    symbols: list[str]
    start: str | None
    end: str | None
    warnings: list[str] = Field(description="Things to check before trusting the numbers.")
    provenance: dict[str, Any] = Field(
        description="engine_version, dsl_version, dsl_hash, data_hash, order_hash: what makes the result reproducible."
    )


class StrategyJobOut(BaseModel):
    """What every job that runs a strategy (a backtest, each stress test) shows of itself."""

    id: uuid.UUID
    status: JobStatus
    progress: float
    progress_message: str | None
    attempts: int
    cancel_requested: bool
    error: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    strategy_id: uuid.UUID | None
    strategy_version: int | None
    strategy_name: str | None
    market: str
    symbols: list[str]
    timeframe: str

    @classmethod
    def fields_of(cls, job: Any, request: JobRequest) -> dict[str, Any]:
        """These fields of a job row (any table with the job columns) and its resolved request."""
        return {
            "id": job.id,
            "status": job.status,
            "progress": job.progress,
            "progress_message": job.progress_message,
            "attempts": job.attempts,
            "cancel_requested": job.cancel_requested,
            "error": job.error,
            "created_at": job.created_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "strategy_id": job.strategy_id,
            "strategy_version": job.strategy_version,
            "strategy_name": request.strategy_name,
            "market": request.market,
            "symbols": request.symbols,
            "timeframe": request.timeframe,
        }


class BacktestOut(StrategyJobOut):
    start: datetime | None
    end: datetime | None
    assumptions: dict[str, Any] = Field(description="The execution assumptions the job runs with.")
    benchmark: str | None
    result_hash: str | None
    summary: BacktestCompact | None = Field(description="Present once the job succeeded.")


class BacktestDetail(BacktestOut):
    metrics: dict[str, float | int | str | bool | None] | None = Field(
        description=(
            "Every metric the engine computed (present once the job succeeded); returns, drawdowns, rates "
            "and shares are fractions (0.0123 = 1.23%)."
        )
    )


class BacktestListItem(BaseModel):
    id: uuid.UUID
    status: JobStatus
    progress: float
    created_at: datetime
    finished_at: datetime | None
    strategy_id: uuid.UUID | None
    strategy_version: int | None
    strategy_name: str | None
    market: str
    symbols: list[str]
    timeframe: str
    total_return: float | None
    trades: int | None


class BacktestList(BaseModel):
    items: list[BacktestListItem]
    next_cursor: str | None


class SeriesOut(BaseModel):
    time: list[str] = Field(description="Bar open times, UTC ISO-8601.")
    bar: list[int] = Field(description="Bar positions in the backtest.")
    value: list[float | None]


class EquityOut(BaseModel):
    id: uuid.UUID
    points: int = Field(description="Points per series; minima and maxima are always kept.")
    initial_cash: float
    equity: SeriesOut
    drawdown: SeriesOut = Field(description="Fraction below the running peak (<= 0).")


class TradeOut(BaseModel):
    number: int = Field(description="Position in the trade list (0-based), used by /trades/{n}/snapshot.")
    trade_id: int
    symbol: str
    direction: Literal["long", "short"]
    quantity: float
    signal_time: str
    entry_time: str
    entry_price: float
    exit_signal_time: str
    exit_time: str
    exit_price: float
    exit_reason: str
    pnl: float | None
    trade_return: float | None = Field(
        description="Net return of the trade as a fraction (0.0123 = 1.23%): pnl / (quantity x entry price)."
    )
    fees: float
    slippage: float
    borrow: float
    holding_bars: int
    mae: float | None = Field(
        description="Maximum adverse excursion: worst move against the trade, a fraction of entry price (<= 0)."
    )
    mfe: float | None = Field(
        description="Maximum favourable excursion: best move in favour, a fraction of entry price (>= 0)."
    )
    is_open: bool


class TradePage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[TradeOut]


class OrderOut(BaseModel):
    number: int
    time: str
    symbol: str
    side: Literal["buy", "sell"]
    type: str
    quantity: float
    price: float
    raw_price: float
    fee: float
    slippage: float
    reason: str
    trade_id: int
    filled_at: str = Field(description="open, intrabar or close.")


class OrderPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[OrderOut]


class AnalysisOut(BaseModel):
    id: uuid.UUID
    view: AnalysisView
    description: str
    data: Any = Field(description="The view's table or series.")


class SnapshotBar(BaseModel):
    bar: int
    time: str
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    volume: float | None
    factors: dict[str, float | None] = Field(description="Factor values at the bar's close.")
    marks: list[Literal["entry_signal", "entry", "exit_signal", "exit"]]


class LeafTruth(BaseModel):
    pointer: str = Field(description="JSON pointer of the condition leaf in the strategy document.")
    label: str
    at_entry_signal: bool | None = Field(description="Leaf value at the close of the entry signal bar.")
    at_exit_signal: bool | None = Field(description="Leaf value at the close of the exit decision bar.")


class TradeSnapshotOut(BaseModel):
    id: uuid.UUID
    trade: TradeOut
    bars: list[SnapshotBar] = Field(
        description="Bars around the trade; long trades show the bars around entry and exit (bar numbers jump)."
    )
    leaves: list[LeafTruth]
