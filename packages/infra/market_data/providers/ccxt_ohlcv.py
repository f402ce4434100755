"""Crypto OHLCV from public exchange endpoints through CCXT (no API key).

CCXT's own throttle is switched off: the shared token bucket paces requests so every provider
behaves the same way. Pages of ``fetch_ohlcv`` are walked from ``start`` until ``end``.
"""

from __future__ import annotations

from typing import Any

import ccxt
import numpy as np

from packages.domain.market_data.bars import Bars, Market, Timeframe, sort_unique
from packages.infra.market_data.providers.base import (
    ErrorKind,
    ProviderBase,
    ProviderMetadata,
    RetryPolicy,
    TokenBucket,
    call_with_retries,
)

_NS_PER_MS = 1_000_000


def classify_ccxt_error(error: Exception) -> ErrorKind:
    if isinstance(error, ccxt.ExchangeNotAvailable | ccxt.OnMaintenance):
        return "offline"
    if isinstance(error, ccxt.NetworkError):  # timeouts, DDoS protection, rate limits
        return "transient"
    return "fatal"


class CcxtBarProvider(ProviderBase):
    def __init__(
        self,
        exchange_id: str = "binance",
        *,
        exchange: Any | None = None,
        page_limit: int = 1000,
        rate_per_s: float = 5.0,
        timeout_ms: int = 15_000,
        retry: RetryPolicy | None = None,
        limiter: TokenBucket | None = None,
    ) -> None:
        super().__init__(rate_per_s=rate_per_s, retry=retry, limiter=limiter)
        self.exchange = exchange or getattr(ccxt, exchange_id)(
            {"enableRateLimit": False, "timeout": timeout_ms}
        )
        self.page_limit = page_limit
        self.metadata = ProviderMetadata(
            name=f"ccxt_{self.exchange.id}",
            markets=(Market.CRYPTO,),
            timeframes=tuple(tf for tf in Timeframe if tf.value in (self.exchange.timeframes or {})),
            requires_credentials=False,
            max_bars_per_request=page_limit,
            description=f"public OHLCV from {self.exchange.id} via CCXT (symbols like BTC/USDT)",
        )

    def fetch_bars(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> Bars:
        self._require(timeframe)
        step_ms = timeframe.nanos // _NS_PER_MS
        since_ms = start_ns // _NS_PER_MS
        end_ms = end_ns // _NS_PER_MS
        rows: list[list[Any]] = []
        while since_ms < end_ms:
            cursor = since_ms

            def request(cursor: int = cursor) -> list[list[Any]]:
                page: list[list[Any]] = self.exchange.fetch_ohlcv(
                    symbol, timeframe.value, cursor, self.page_limit
                )
                return page

            page = call_with_retries(
                request,
                describe=f"{self.name} {symbol} {timeframe.value}",
                classify=classify_ccxt_error,
                policy=self.retry,
                limiter=self.limiter,
            )
            if not page:
                break
            rows.extend(page)
            last_ms = int(page[-1][0])
            if last_ms < since_ms:
                break
            since_ms = last_ms + step_ms
        if not rows:
            return Bars.empty()
        table = np.array([row[:6] for row in rows], dtype=np.float64)
        bars = Bars.from_columns(
            table[:, 0].astype(np.int64) * _NS_PER_MS,
            table[:, 1],
            table[:, 2],
            table[:, 3],
            table[:, 4],
            table[:, 5],
        )
        return sort_unique(bars).between(start_ns, end_ns)
