"""Recorded provider responses for sync jobs, plugged into the real IO worker (no network).

The worker builds its providers through ``MARKET_DATA_PROVIDER_FACTORY``; this folder's conftest
points it here before any worker starts. Only Yahoo daily AAPL is answered, from the other market-data
tests' recorded chart response (real AAPL prices, 2013-02-04 … 2013-02-15); every other request gets
the default provider, which is offline in tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from packages.domain.market_data.bars import Market, Timeframe
from packages.domain.market_data.sync import BarProvider
from packages.infra.market_data.providers.base import RetryPolicy, TokenBucket
from packages.infra.market_data.providers.yahoo import YahooChartProvider

FIXTURES = Path(__file__).resolve().parents[2] / "infra" / "market_data" / "fixtures"
RECORDED_CHART = FIXTURES / "yahoo_chart_aapl_1d_2013-02.json"
FACTORY_PATH = f"{__name__}:provider_for"


def recorded_chart() -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(RECORDED_CHART.read_text())
    return payload


def provider_for(name: str, market: Market, symbol: str, timeframe: Timeframe) -> BarProvider | None:
    if (name, market, symbol, timeframe) != ("yahoo", Market.US_STOCKS, "AAPL", Timeframe.D1):
        return None
    body = RECORDED_CHART.read_text()
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, text=body)))
    return YahooChartProvider(
        client=client, retry=RetryPolicy(max_attempts=1), limiter=TokenBucket(rate_per_s=1e9, capacity=1e9)
    )
