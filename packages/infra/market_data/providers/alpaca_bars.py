"""US stock and crypto bars from Alpaca market data through ``alpaca-py`` (keys required for stocks).

The clients run with ``raw_data=True`` so bars arrive as the documented JSON objects
(``{"t": "2024-01-02T14:30:00Z", "o": ..., "h": ..., "l": ..., "c": ..., "v": ...}``); alpaca-py
follows ``next_page_token`` pages itself. Daily bars are stamped at midnight New York by Alpaca and
are restamped to 00:00 UTC of that date.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical.crypto import CryptoHistoricalDataClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import CryptoBarsRequest, StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from packages.domain.market_data.bars import NS_PER_DAY, Bars, Market, Timeframe, sort_unique
from packages.domain.market_data.sync import ProviderError
from packages.domain.market_data.timeconv import from_ns, to_ns
from packages.domain.market_data.timezones import to_wall_clock
from packages.infra.market_data.providers.base import (
    ErrorKind,
    ProviderBase,
    ProviderMetadata,
    RetryPolicy,
    TokenBucket,
    call_with_retries,
)

_TIMEFRAMES = {
    Timeframe.M1: TimeFrame(1, TimeFrameUnit.Minute),
    Timeframe.M5: TimeFrame(5, TimeFrameUnit.Minute),
    Timeframe.M15: TimeFrame(15, TimeFrameUnit.Minute),
    Timeframe.M30: TimeFrame(30, TimeFrameUnit.Minute),
    Timeframe.H1: TimeFrame(1, TimeFrameUnit.Hour),
    Timeframe.H2: TimeFrame(2, TimeFrameUnit.Hour),
    Timeframe.H4: TimeFrame(4, TimeFrameUnit.Hour),
    Timeframe.D1: TimeFrame(1, TimeFrameUnit.Day),
    Timeframe.W1: TimeFrame(1, TimeFrameUnit.Week),
}


def _disable_builtin_retries(client: Any) -> Any:
    """Our RetryPolicy owns retries and backoff.

    alpaca-py's REST client retries 429/504 itself (3 times, sleeping 3 s) and its data clients
    do not expose the setting, so without this every failure would be retried twice over.
    """
    if hasattr(client, "_retry"):
        client._retry = 0
    return client


def classify_alpaca_error(error: Exception) -> ErrorKind:
    if isinstance(error, requests.ConnectionError):
        return "offline"
    if isinstance(error, requests.Timeout):
        return "transient"
    if isinstance(error, APIError):
        status = error.status_code
        return "transient" if status is not None and (status == 429 or status >= 500) else "fatal"
    return "fatal"


class AlpacaBarProvider(ProviderBase):
    metadata = ProviderMetadata(
        name="alpaca",
        markets=(Market.US_STOCKS, Market.CRYPTO),
        timeframes=tuple(_TIMEFRAMES),
        requires_credentials=True,
        max_bars_per_request=10_000,
        description="Alpaca market data v2 (stocks, feed iex by default) and v1beta3 crypto bars",
    )

    def __init__(
        self,
        api_key: str | None,
        secret_key: str | None,
        *,
        feed: str = "iex",
        stock_client: StockHistoricalDataClient | None = None,
        crypto_client: CryptoHistoricalDataClient | None = None,
        rate_per_s: float = 3.0,
        retry: RetryPolicy | None = None,
        limiter: TokenBucket | None = None,
    ) -> None:
        super().__init__(rate_per_s=rate_per_s, retry=retry, limiter=limiter)
        self.feed = DataFeed(feed)
        if stock_client is None and api_key and secret_key:
            stock_client = StockHistoricalDataClient(api_key, secret_key, raw_data=True)
        self._stock_client = None if stock_client is None else _disable_builtin_retries(stock_client)
        self._crypto_client = _disable_builtin_retries(
            crypto_client or CryptoHistoricalDataClient(api_key, secret_key, raw_data=True)
        )

    def fetch_bars(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> Bars:
        self._require(timeframe)
        is_crypto = "/" in symbol
        start, end = from_ns(start_ns), from_ns(end_ns - 1)

        def request() -> Any:
            if is_crypto:
                return self._crypto_client.get_crypto_bars(
                    CryptoBarsRequest(
                        symbol_or_symbols=symbol, timeframe=_TIMEFRAMES[timeframe], start=start, end=end
                    )
                )
            if self._stock_client is None:
                raise ProviderError("alpaca stock data needs an API key and secret")
            return self._stock_client.get_stock_bars(
                StockBarsRequest(
                    symbol_or_symbols=symbol,
                    timeframe=_TIMEFRAMES[timeframe],
                    start=start,
                    end=end,
                    feed=self.feed,
                    adjustment=Adjustment.RAW,
                )
            )

        payload = call_with_retries(
            request,
            describe=f"{self.name} {symbol} {timeframe.value}",
            classify=classify_alpaca_error,
            policy=self.retry,
            limiter=self.limiter,
        )
        rows = payload.get(symbol, []) if isinstance(payload, dict) else []
        return parse_alpaca_bars(rows, timeframe, is_crypto=is_crypto).between(start_ns, end_ns)


def parse_alpaca_bars(rows: list[dict[str, Any]], timeframe: Timeframe, *, is_crypto: bool) -> Bars:
    if not rows:
        return Bars.empty()
    ts = np.array(
        [to_ns(dt.datetime.fromisoformat(row["t"].replace("Z", "+00:00"))) for row in rows], dtype=np.int64
    )
    if not timeframe.is_intraday:
        # Stock daily bars are stamped at New York midnight, crypto daily bars at UTC midnight.
        local = ts if is_crypto else to_wall_clock(ts, "America/New_York")
        ts = local // NS_PER_DAY * NS_PER_DAY
    column = {key: np.array([float(row[key]) for row in rows]) for key in ("o", "h", "l", "c", "v")}
    return sort_unique(Bars.from_columns(ts, column["o"], column["h"], column["l"], column["c"], column["v"]))
