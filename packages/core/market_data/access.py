"""Where this process finds market data: the Parquet store, whose namespaces a caller sees, which
stored dataset serves a request, and which provider fetches what is missing."""

from __future__ import annotations

import functools
import importlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packages.core.errors import FieldError, NotFound, ValidationFailed
from packages.core.principal import Principal
from packages.domain.market_data.bars import Bars, Market, Timeframe
from packages.domain.market_data.resample import TimeframeNotServable
from packages.domain.market_data.sync import BarProvider, ProviderError
from packages.infra.market_data.store import PUBLIC_NAMESPACE, DatasetInfo, DatasetNotFound, ParquetBarStore
from packages.shared_settings import Settings

if TYPE_CHECKING:
    from packages.infra.market_data.jobs import ProviderSettings as ProviderConfig

USER_NAMESPACE_PREFIX = "user-"

ProviderHook = Callable[[str, Market, str, Timeframe], BarProvider | None]


def user_namespace(user_id: uuid.UUID) -> str:
    return f"{USER_NAMESPACE_PREFIX}{user_id}"


def namespace_owner(namespace: str) -> uuid.UUID | None:
    """The user a private namespace belongs to; None for shared data."""
    if namespace == PUBLIC_NAMESPACE:
        return None
    if not namespace.startswith(USER_NAMESPACE_PREFIX):
        raise ValueError(f"unknown namespace {namespace!r}")
    return uuid.UUID(namespace.removeprefix(USER_NAMESPACE_PREFIX))


def visible_namespaces(principal: Principal) -> tuple[str, str]:
    """The caller's own imports first, then shared data: a private dataset shadows a shared one."""
    return (user_namespace(principal.user_id), PUBLIC_NAMESPACE)


def scope_of(namespace: str) -> str:
    return "shared" if namespace == PUBLIC_NAMESPACE else "private"


def normalise_symbol(symbol: str) -> str:
    return symbol.strip().upper()


@functools.cache
def _store_at(root: str, cache_bytes: int) -> ParquetBarStore:
    return ParquetBarStore(root, cache_max_bytes=cache_bytes)


def market_store(settings: Settings) -> ParquetBarStore:
    """The process-wide store: one instance per folder, so its resample cache is shared."""
    config = settings.market_data
    return _store_at(str(config.store_dir), config.resample_cache_mb * 1024 * 1024)


@dataclass(frozen=True, slots=True)
class ServedDataset:
    """The stored dataset a request is answered from (exact timeframe or a finer base to resample)."""

    namespace: str
    base: DatasetInfo

    @property
    def scope(self) -> str:
        return scope_of(self.namespace)


def unknown_symbol(market: Market, symbol: str) -> NotFound:
    return NotFound(
        f"No market data for {market.value}:{symbol}. List what exists with GET /market-data/symbols "
        f"(MCP: list_symbols market='{market.value}'), import a file, or start a sync job to fetch it."
    )


def resolve_dataset(
    store: ParquetBarStore, namespaces: Sequence[str], market: Market, symbol: str, timeframe: Timeframe
) -> ServedDataset:
    """The first namespace whose data can serve ``timeframe``; a private dataset that cannot (e.g.
    daily bars asked for 1h) falls through to shared data."""
    refused: TimeframeNotServable | None = None
    for namespace in namespaces:
        try:
            return ServedDataset(namespace, store.base_for(market, symbol, timeframe, namespace=namespace))
        except DatasetNotFound:
            continue
        except TimeframeNotServable as error:
            refused = refused or error
    if refused is not None:
        raise ValidationFailed(
            f"{refused}. Ask for a coarser timeframe, or import finer bars.",
            errors=[FieldError("timeframe_not_servable", "/timeframe", str(refused))],
        )
    raise unknown_symbol(market, symbol)


def read_served(
    store: ParquetBarStore,
    served: ServedDataset,
    timeframe: Timeframe,
    start_ns: int | None,
    end_ns: int | None,
    limit: int | None = None,
) -> Bars:
    base = served.base
    return store.read(
        base.market, base.symbol, timeframe, start_ns, end_ns, limit, namespace=served.namespace
    )


# ---------------------------------------------------------------------------------------- providers
class OfflineProvider:
    """Stands in for a network provider while MARKET_DATA_NETWORK_ENABLED is false: every chunk
    fails with the same clear reason instead of waiting for timeouts."""

    def __init__(self, provider: BarProvider) -> None:
        self._provider = provider
        self.name = provider.name

    def supports(self, market: Market, timeframe: Timeframe) -> bool:
        return self._provider.supports(market, timeframe)

    def max_bars_per_request(self, timeframe: Timeframe) -> int:
        return self._provider.max_bars_per_request(timeframe)

    def fetch_bars(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> Bars:
        raise ProviderError(
            f"network access is disabled (MARKET_DATA_NETWORK_ENABLED=false), so {self.name} was not "
            "called; enable it and run the sync again, or import the bars from a file"
        )


class SymbolMappedProvider:
    """Asks the provider for its own ticker of a symbol (Yahoo names EURUSD 'EURUSD=X')."""

    def __init__(self, provider: BarProvider, provider_symbol: str) -> None:
        self._provider = provider
        self._provider_symbol = provider_symbol
        self.name = provider.name

    def supports(self, market: Market, timeframe: Timeframe) -> bool:
        return self._provider.supports(market, timeframe)

    def max_bars_per_request(self, timeframe: Timeframe) -> int:
        return self._provider.max_bars_per_request(timeframe)

    def fetch_bars(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> Bars:
        return self._provider.fetch_bars(self._provider_symbol, timeframe, start_ns, end_ns)


# Our index symbols (see the packaged data's provenance) under Yahoo's tickers.
_YAHOO_INDEX_TICKERS = {"SPX": "^GSPC", "IXIC": "^IXIC", "NDX": "^NDX"}


def provider_symbol(provider: str, market: Market, symbol: str) -> str:
    if provider != "yahoo":
        return symbol
    if market == Market.FOREX:
        return symbol.replace("/", "") + "=X"
    if market == Market.FUTURES:
        return symbol if symbol.endswith("=F") else symbol + "=F"
    if market == Market.CRYPTO:
        return symbol.replace("/", "-")
    return _YAHOO_INDEX_TICKERS.get(symbol, symbol)


def provider_config(settings: Settings) -> ProviderConfig:
    from packages.infra.market_data.jobs import ProviderSettings as ProviderConfig

    keys = settings.providers
    config = settings.market_data
    return ProviderConfig(
        alpaca_api_key=keys.alpaca_api_key.get_secret_value() if keys.alpaca_api_key else None,
        alpaca_secret_key=keys.alpaca_api_secret.get_secret_value() if keys.alpaca_api_secret else None,
        alpaca_feed=config.alpaca_feed,
        ccxt_exchange=config.ccxt_exchange,
        yahoo_base_url=config.yahoo_base_url,
    )


@functools.cache
def _load_hook(dotted: str) -> ProviderHook:
    module_name, _, attribute = dotted.partition(":")
    hook: ProviderHook = getattr(importlib.import_module(module_name), attribute)
    return hook


def provider_name_for(settings: Settings, market: Market, timeframe: Timeframe) -> str:
    # Provider modules pull in ccxt and alpaca-py: imported only where a provider is needed.
    from packages.infra.market_data.jobs import default_provider_name

    try:
        return default_provider_name(market, timeframe, provider_config(settings))
    except ProviderError as error:
        raise ValidationFailed(
            f"{error}. Crypto is fetched from {settings.market_data.ccxt_exchange} (any timeframe), US "
            "stocks from Alpaca (needs ALPACA_API_KEY/ALPACA_API_SECRET) or Yahoo (1d, 1w), forex and "
            "futures from Yahoo (1d, 1w); import other data from a file.",
            errors=[FieldError("no_provider", "/timeframe", str(error))],
        ) from error


def choose_provider(settings: Settings, market: Market, symbol: str, timeframe: Timeframe) -> BarProvider:
    """The provider for a market and timeframe; offline it answers every fetch with a clear error."""
    from packages.infra.market_data.jobs import make_provider

    name = provider_name_for(settings, market, timeframe)
    hook = settings.market_data.provider_factory
    if hook:
        plugged = _load_hook(hook)(name, market, symbol, timeframe)
        if plugged is not None:
            return plugged
    provider: BarProvider = make_provider(name, provider_config(settings))
    mapped = provider_symbol(name, market, symbol)
    if mapped != symbol:
        provider = SymbolMappedProvider(provider, mapped)
    if not settings.providers.network_enabled:
        provider = OfflineProvider(provider)
    return provider
