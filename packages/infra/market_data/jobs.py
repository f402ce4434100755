"""Entry points the API, MCP tools and Celery tasks call: providers from settings, gap sync, regime.

These functions hold no state of their own; the caller passes the store, the catalog sink and the
configuration, so the same code runs in an API process, a worker or a CLI command.
"""

from __future__ import annotations

from dataclasses import dataclass

from packages.domain.market_data.bars import Bars, Market, Timeframe, parse_timeframe
from packages.domain.market_data.catalog import CatalogSink
from packages.domain.market_data.gaps import MissingRange, detect_missing_ranges
from packages.domain.market_data.regime import TradingFrequency, choose_timeframes, regime_snapshot
from packages.domain.market_data.sessions import calendar_for
from packages.domain.market_data.sync import (
    BarProvider,
    ProviderError,
    SyncPlan,
    SyncProgress,
    SyncReport,
    plan_sync,
    run_sync,
)
from packages.domain.market_data.timeconv import TimeLike, to_ns
from packages.infra.market_data.providers.alpaca_bars import AlpacaBarProvider
from packages.infra.market_data.providers.ccxt_ohlcv import CcxtBarProvider
from packages.infra.market_data.providers.yahoo import YahooChartProvider
from packages.infra.market_data.store import PUBLIC_NAMESPACE, DatasetNotFound, ParquetBarStore

PROVIDER_NAMES = ("alpaca", "ccxt", "yahoo")


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """What the settings layer hands over to build providers (keys come from secrets)."""

    alpaca_api_key: str | None = None
    alpaca_secret_key: str | None = None
    alpaca_feed: str = "iex"
    alpaca_rate_per_s: float = 3.0
    ccxt_exchange: str = "binance"
    ccxt_rate_per_s: float = 5.0
    yahoo_base_url: str = "https://query1.finance.yahoo.com"
    yahoo_rate_per_s: float = 1.0


def make_provider(name: str, settings: ProviderSettings) -> BarProvider:
    if name == "alpaca":
        return AlpacaBarProvider(
            settings.alpaca_api_key,
            settings.alpaca_secret_key,
            feed=settings.alpaca_feed,
            rate_per_s=settings.alpaca_rate_per_s,
        )
    if name == "ccxt":
        return CcxtBarProvider(settings.ccxt_exchange, rate_per_s=settings.ccxt_rate_per_s)
    if name == "yahoo":
        return YahooChartProvider(base_url=settings.yahoo_base_url, rate_per_s=settings.yahoo_rate_per_s)
    raise ValueError(f"unknown provider {name!r}; available: {', '.join(PROVIDER_NAMES)}")


def default_provider_name(
    market: Market | str, timeframe: Timeframe | str, settings: ProviderSettings
) -> str:
    """Crypto from the public exchange, stocks from Alpaca when keys exist, else Yahoo-style daily data."""
    market, timeframe = Market(market), parse_timeframe(timeframe)
    if market == Market.CRYPTO:
        return "ccxt"
    if market == Market.US_STOCKS and settings.alpaca_api_key and settings.alpaca_secret_key:
        return "alpaca"
    if timeframe in (Timeframe.D1, Timeframe.W1):
        return "yahoo"
    raise ProviderError(f"no configured provider serves {market.value} {timeframe.value} bars")


def detect_missing(
    store: ParquetBarStore,
    market: Market | str,
    symbol: str,
    timeframe: Timeframe | str,
    start: TimeLike,
    end: TimeLike,
    *,
    namespace: str = PUBLIC_NAMESPACE,
) -> list[MissingRange]:
    """Missing ranges of the stored ``timeframe`` dataset (all of the range if nothing is stored)."""
    market, timeframe = Market(market), parse_timeframe(timeframe)
    try:
        existing = store.read_base(market, symbol, timeframe, start, end, namespace=namespace)
    except DatasetNotFound:
        existing = Bars.empty()
    return detect_missing_ranges(calendar_for(market), timeframe, existing.ts, to_ns(start), to_ns(end))


def plan_missing(
    store: ParquetBarStore,
    provider: BarProvider,
    market: Market | str,
    symbol: str,
    timeframe: Timeframe | str,
    start: TimeLike,
    end: TimeLike,
    *,
    namespace: str = PUBLIC_NAMESPACE,
) -> SyncPlan:
    """The chunked plan a sync job executes (store it with the job row for progress and resumes)."""
    market, timeframe = Market(market), parse_timeframe(timeframe)
    if not provider.supports(market, timeframe):
        raise ProviderError(f"{provider.name} does not serve {market.value} {timeframe.value} bars")
    missing = detect_missing(store, market, symbol, timeframe, start, end, namespace=namespace)
    return plan_sync(
        missing,
        market=market,
        symbol=symbol,
        timeframe=timeframe,
        provider=provider.name,
        max_bars_per_chunk=provider.max_bars_per_request(timeframe),
        namespace=namespace,
    )


def execute_sync(
    plan: SyncPlan,
    provider: BarProvider,
    store: ParquetBarStore,
    *,
    catalog: CatalogSink | None = None,
    progress: SyncProgress | None = None,
    skip_chunk_ids: frozenset[int] = frozenset(),
) -> SyncReport:
    """Run a plan (the body of the ``market_data`` queue task) and refresh the catalog entry."""
    report = run_sync(plan, provider, store, progress, skip_chunk_ids=skip_chunk_ids)
    info = store.dataset(plan.market, plan.symbol, plan.timeframe, namespace=plan.namespace)
    if catalog is not None and info is not None:
        catalog.upsert_dataset(info.catalog_entry())
    return report


def build_regime_snapshot(
    store: ParquetBarStore,
    market: Market | str,
    symbol: str,
    frequency: TradingFrequency | str,
    holding_minutes: float | None = None,
    *,
    namespace: str = PUBLIC_NAMESPACE,
    lookback: int = 500,
) -> dict[str, object]:
    """Regime snapshot for a stored symbol: timeframes chosen from the style and the data available."""
    market = Market(market)
    stored = store.coverage(market, symbol, namespace=namespace)
    if not stored:
        raise DatasetNotFound(f"no data stored for {market.value}:{symbol}")
    finest = min((info.timeframe for info in stored), key=lambda tf: tf.nanos)
    choice = choose_timeframes(frequency, holding_minutes, finest_available=finest)
    # Percentile features need history beyond the lookback window itself.
    history = lookback + 300
    bars = {choice.primary: store.read(market, symbol, choice.primary, limit=history, namespace=namespace)}
    if choice.context is not None:
        bars[choice.context] = store.read(market, symbol, choice.context, limit=history, namespace=namespace)
    return regime_snapshot(bars, choice, symbol=symbol, frequency=frequency, lookback=lookback)
