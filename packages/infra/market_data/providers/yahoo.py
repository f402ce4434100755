"""Yahoo-style daily bars from the public chart JSON endpoint (``/v8/finance/chart/{symbol}``).

Response shape (documented by usage; no key needed)::

    {"chart": {"result": [{"meta": {"symbol": ..., "gmtoffset": -18000, ...},
                           "timestamp": [1704205800, ...],
                           "indicators": {"quote": [{"open": [...], "high": [...], "low": [...],
                                                     "close": [...], "volume": [...]}]}}],
               "error": null}}

Daily timestamps are the session open in UTC; they are restamped to 00:00 UTC of the exchange-local
trading date. Rows with a null price (halted days in the feed) are dropped.
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np

from packages.domain.market_data.bars import NS_PER_DAY, NS_PER_SECOND, Bars, Market, Timeframe, sort_unique
from packages.domain.market_data.sync import ProviderError
from packages.infra.market_data.providers.base import (
    ErrorKind,
    ProviderBase,
    ProviderMetadata,
    RetryPolicy,
    TokenBucket,
    call_with_retries,
)

DEFAULT_BASE_URL = "https://query1.finance.yahoo.com"
_INTERVALS = {Timeframe.D1: "1d", Timeframe.W1: "1wk"}


def classify_httpx_error(error: Exception) -> ErrorKind:
    if isinstance(error, httpx.ConnectError):
        return "offline"
    if isinstance(error, httpx.TransportError):
        return "transient"
    if isinstance(error, httpx.HTTPStatusError):
        status = error.response.status_code
        return "transient" if status == 429 or status >= 500 else "fatal"
    return "fatal"


class YahooChartProvider(ProviderBase):
    metadata = ProviderMetadata(
        name="yahoo_chart",
        markets=(Market.US_STOCKS, Market.FOREX, Market.CRYPTO, Market.FUTURES),
        timeframes=(Timeframe.D1, Timeframe.W1),
        requires_credentials=False,
        max_bars_per_request=5000,
        description="Yahoo-style daily/weekly chart JSON over HTTP (unofficial, rate-limited)",
    )

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        base_url: str = DEFAULT_BASE_URL,
        rate_per_s: float = 1.0,
        timeout_s: float = 15.0,
        retry: RetryPolicy | None = None,
        limiter: TokenBucket | None = None,
    ) -> None:
        super().__init__(rate_per_s=rate_per_s, retry=retry, limiter=limiter)
        self._client = client or httpx.Client(
            timeout=timeout_s, headers={"User-Agent": "minsy-market-data/1"}
        )
        self._base_url = base_url.rstrip("/")

    def fetch_bars(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> Bars:
        self._require(timeframe)
        params = {
            "period1": str(start_ns // NS_PER_SECOND),
            "period2": str(-(-end_ns // NS_PER_SECOND)),
            "interval": _INTERVALS[timeframe],
            "includePrePost": "false",
            "events": "div,split",
        }
        url = f"{self._base_url}/v8/finance/chart/{symbol}"

        def request() -> dict[str, Any]:
            response = self._client.get(url, params=params)
            response.raise_for_status()
            payload: dict[str, Any] = response.json()
            return payload

        payload = call_with_retries(
            request,
            describe=f"{self.name} {symbol} {timeframe.value}",
            classify=classify_httpx_error,
            policy=self.retry,
            limiter=self.limiter,
        )
        return parse_chart_payload(payload, symbol).between(start_ns, end_ns)


def parse_chart_payload(payload: dict[str, Any], symbol: str) -> Bars:
    chart = payload.get("chart") or {}
    if chart.get("error"):
        error = chart["error"]
        raise ProviderError(f"yahoo_chart {symbol}: {error.get('code')}: {error.get('description')}")
    results = chart.get("result") or []
    if not results:
        return Bars.empty()
    result = results[0]
    seconds = np.asarray(result.get("timestamp") or [], dtype=np.int64)
    if seconds.shape[0] == 0:
        return Bars.empty()
    quote = result["indicators"]["quote"][0]
    columns = {
        name: np.array([np.nan if v is None else v for v in quote.get(name) or []], dtype=np.float64)
        for name in ("open", "high", "low", "close", "volume")
    }
    offset_s = int(result.get("meta", {}).get("gmtoffset", 0))
    dates = (seconds + offset_s) * NS_PER_SECOND // NS_PER_DAY * NS_PER_DAY
    prices_valid = np.all([np.isfinite(columns[n]) for n in ("open", "high", "low", "close")], axis=0)
    volume = np.nan_to_num(columns["volume"], nan=0.0)
    bars = Bars.from_columns(
        dates, columns["open"], columns["high"], columns["low"], columns["close"], volume
    )
    return sort_unique(bars.take(prices_valid))
