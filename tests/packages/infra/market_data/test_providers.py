"""Providers against recorded responses: parsing, pagination, retries, rate limiting, offline errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import ccxt
import httpx
import numpy as np
import pandas as pd
import pytest
import requests
from alpaca.data.historical.crypto import CryptoHistoricalDataClient
from alpaca.data.historical.stock import StockHistoricalDataClient

from packages.domain.market_data.bars import Market, Timeframe
from packages.domain.market_data.sync import ProviderError, ProviderUnavailable
from packages.domain.market_data.timeconv import to_ns
from packages.infra.market_data.providers.alpaca_bars import AlpacaBarProvider
from packages.infra.market_data.providers.base import RetryPolicy, TokenBucket
from packages.infra.market_data.providers.ccxt_ohlcv import CcxtBarProvider
from packages.infra.market_data.providers.yahoo import YahooChartProvider

FIXTURES = Path(__file__).parent / "fixtures"
AAPL_FEB_2013 = json.loads((FIXTURES / "yahoo_chart_aapl_1d_2013-02.json").read_text())["chart"]["result"][0]
AAPL_CLOSES = AAPL_FEB_2013["indicators"]["quote"][0]["close"]
Text = Callable[[str], str]
Session = Callable[..., tuple[requests.Session, Any]]


def yahoo(handler: httpx.MockTransport, retry: RetryPolicy, limiter: TokenBucket) -> YahooChartProvider:
    return YahooChartProvider(client=httpx.Client(transport=handler), retry=retry, limiter=limiter)


def test_yahoo_daily_bars_are_restamped_to_trading_dates(
    fast_retry: RetryPolicy, unlimited: TokenBucket, fixture_text: Text
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=fixture_text("yahoo_chart_aapl_1d_2013-02.json"))

    bars = yahoo(httpx.MockTransport(handler), fast_retry, unlimited).fetch_bars(
        "AAPL", Timeframe.D1, to_ns("2013-02-04"), to_ns("2013-02-16")
    )
    assert [str(d.date()) for d in pd.to_datetime(bars.ts, utc=True)][:3] == [
        "2013-02-04",
        "2013-02-05",
        "2013-02-06",
    ]
    assert len(bars) == 10 and np.all(bars.ts % (86_400 * 10**9) == 0)
    np.testing.assert_array_equal(bars.close, AAPL_CLOSES)
    params = seen[0].url.params
    assert seen[0].url.path == "/v8/finance/chart/AAPL"
    assert (params["interval"], params["period1"]) == ("1d", str(to_ns("2013-02-04") // 10**9))


def test_yahoo_unknown_symbol_is_a_fatal_error_without_retries(
    fast_retry: RetryPolicy, unlimited: TokenBucket, sleeps: Any, fixture_text: Text
) -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(404, text=fixture_text("yahoo_chart_not_found.json"))
    )
    with pytest.raises(ProviderError) as raised:
        yahoo(transport, fast_retry, unlimited).fetch_bars(
            "NOPE", Timeframe.D1, to_ns("2024-01-01"), to_ns("2024-02-01")
        )
    assert not isinstance(raised.value, ProviderUnavailable) and sleeps.calls == []


def test_yahoo_retries_transient_errors_with_growing_jittered_backoff(
    unlimited: TokenBucket, sleeps: Any, fixture_text: Text
) -> None:
    statuses = iter([503, 429, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(statuses)
        return httpx.Response(
            status, text=fixture_text("yahoo_chart_aapl_1d_2013-02.json") if status == 200 else "busy"
        )

    policy = RetryPolicy(max_attempts=4, base_delay_s=1.0, max_delay_s=30.0, sleep=sleeps)
    bars = yahoo(httpx.MockTransport(handler), policy, unlimited).fetch_bars(
        "AAPL", Timeframe.D1, to_ns("2013-02-01"), to_ns("2013-03-01")
    )
    assert len(bars) == 10 and len(sleeps.calls) == 2
    assert 0 <= sleeps.calls[0] <= 1.0 and 0 <= sleeps.calls[1] <= 2.0


def test_yahoo_offline_raises_provider_unavailable(
    fast_retry: RetryPolicy, unlimited: TokenBucket, sleeps: Any
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution", request=request)

    with pytest.raises(ProviderUnavailable, match="unreachable"):
        yahoo(httpx.MockTransport(handler), fast_retry, unlimited).fetch_bars(
            "AAPL", Timeframe.D1, 0, to_ns("2024-01-01")
        )
    assert len(sleeps.calls) == fast_retry.max_attempts - 1


def test_yahoo_refuses_intraday_timeframes(fast_retry: RetryPolicy, unlimited: TokenBucket) -> None:
    provider = yahoo(httpx.MockTransport(lambda r: httpx.Response(500)), fast_retry, unlimited)
    assert not provider.supports(Market.US_STOCKS, Timeframe.M5)
    with pytest.raises(ProviderError, match="does not serve"):
        provider.fetch_bars("AAPL", Timeframe.M5, 0, 1)


def test_token_bucket_paces_requests() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(rate_per_s=2.0, capacity=2.0, clock=lambda: now[0], sleep=sleep)
    waits = [bucket.acquire() for _ in range(6)]
    assert waits[:2] == [0.0, 0.0]
    assert sum(slept) == pytest.approx(2.0)  # 4 extra requests at 2 per second
    now[0] += 10
    assert bucket.acquire() == 0.0


def binance_exchange(recorded_session: Session, responder: Callable) -> tuple[Any, Any]:
    session, adapter = recorded_session(responder)
    exchange = ccxt.binance({"enableRateLimit": False, "session": session})
    exchange.set_markets(
        [
            {
                "id": "BTCUSDT",
                "symbol": "BTC/USDT",
                "base": "BTC",
                "quote": "USDT",
                "baseId": "BTC",
                "quoteId": "USDT",
                "type": "spot",
                "spot": True,
                "margin": False,
                "swap": False,
                "future": False,
                "option": False,
                "contract": False,
                "linear": None,
                "inverse": None,
                "active": True,
                "precision": {},
                "limits": {},
            }
        ]
    )
    return exchange, adapter


def test_ccxt_pages_through_recorded_klines(
    fast_retry: RetryPolicy, unlimited: TokenBucket, fixture_text: Text, recorded_session: Session
) -> None:
    klines = json.loads(fixture_text("binance_klines_btcusdt_1h_2024-01-01.json"))

    def responder(request: requests.PreparedRequest) -> tuple[int, str]:
        query = parse_qs(urlparse(request.url).query)
        start, limit = int(query["startTime"][0]), int(query["limit"][0])
        return 200, json.dumps([k for k in klines if k[0] >= start][:limit])

    exchange, adapter = binance_exchange(recorded_session, responder)
    provider = CcxtBarProvider(exchange=exchange, page_limit=4, retry=fast_retry, limiter=unlimited)
    bars = provider.fetch_bars("BTC/USDT", Timeframe.H1, to_ns("2024-01-01"), to_ns("2024-01-01T06:00:00Z"))
    assert len(bars) == 6 and len(adapter.requests) == 2
    assert bars.open[0] == 42283.58 and bars.close[-1] == 42286.57
    assert np.all(np.diff(bars.ts) == 3600 * 10**9)
    assert provider.supports(Market.CRYPTO, Timeframe.W1) and provider.name == "ccxt_binance"


def test_ccxt_network_failures_become_provider_unavailable(
    fast_retry: RetryPolicy, unlimited: TokenBucket, sleeps: Any, recorded_session: Session
) -> None:
    def responder(request: requests.PreparedRequest) -> tuple[int, str]:
        raise requests.ConnectionError(
            "Failed to establish a new connection: [Errno 101] Network is unreachable"
        )

    exchange, _ = binance_exchange(recorded_session, responder)
    provider = CcxtBarProvider(exchange=exchange, retry=fast_retry, limiter=unlimited)
    with pytest.raises(ProviderUnavailable):
        provider.fetch_bars("BTC/USDT", Timeframe.H1, to_ns("2024-01-01"), to_ns("2024-01-02"))
    assert len(sleeps.calls) == fast_retry.max_attempts - 1


def test_ccxt_rate_limit_response_is_retried(
    fast_retry: RetryPolicy, unlimited: TokenBucket, fixture_text: Text, recorded_session: Session
) -> None:
    klines = fixture_text("binance_klines_btcusdt_1h_2024-01-01.json")
    answers = iter(
        [
            (
                429,
                '{"code":-1003,"msg":"Too many requests; current limit is 6000 request weight per 1 MINUTE."}',
            ),
            (200, klines),
            (200, "[]"),
        ]
    )
    exchange, _ = binance_exchange(recorded_session, lambda request: next(answers))
    provider = CcxtBarProvider(exchange=exchange, retry=fast_retry, limiter=unlimited)
    assert len(provider.fetch_bars("BTC/USDT", Timeframe.H1, to_ns("2024-01-01"), to_ns("2024-01-02"))) == 6


def alpaca_stock_client(recorded_session: Session, responder: Callable) -> tuple[Any, Any]:
    client = StockHistoricalDataClient("PKTESTKEY", "testsecret", raw_data=True)
    session, adapter = recorded_session(responder)
    client._session = session  # alpaca-py exposes no public hook for its requests session
    return client, adapter


def test_alpaca_stock_bars_follow_pages_and_restamp_daily_bars(
    fast_retry: RetryPolicy, unlimited: TokenBucket, fixture_text: Text, recorded_session: Session
) -> None:
    def responder(request: requests.PreparedRequest) -> tuple[int, str]:
        query = parse_qs(urlparse(request.url).query)
        page = "page2" if "page_token" in query else "page1"
        return 200, fixture_text(f"alpaca_stock_bars_aapl_1d_{page}.json")

    client, adapter = alpaca_stock_client(recorded_session, responder)
    provider = AlpacaBarProvider(None, None, stock_client=client, retry=fast_retry, limiter=unlimited)
    bars = provider.fetch_bars("AAPL", Timeframe.D1, to_ns("2013-02-04"), to_ns("2013-02-16"))
    assert len(bars) == 10 and len(adapter.requests) == 2
    assert adapter.requests[0].headers["APCA-API-KEY-ID"] == "PKTESTKEY"
    assert "feed=iex" in (adapter.requests[0].url or "")
    np.testing.assert_array_equal(bars.close, AAPL_CLOSES)
    assert str(pd.Timestamp(bars.ts[0], tz="UTC")) == "2013-02-04 00:00:00+00:00"


def test_alpaca_errors_are_classified(
    fast_retry: RetryPolicy, unlimited: TokenBucket, sleeps: Any, recorded_session: Session
) -> None:
    forbidden, _ = alpaca_stock_client(
        recorded_session,
        lambda request: (403, '{"code":40310000,"message":"access key verification failed"}'),
    )
    with pytest.raises(ProviderError, match="verification failed") as raised:
        AlpacaBarProvider(None, None, stock_client=forbidden, retry=fast_retry, limiter=unlimited).fetch_bars(
            "AAPL", Timeframe.D1, to_ns("2024-01-01"), to_ns("2024-01-05")
        )
    assert not isinstance(raised.value, ProviderUnavailable) and sleeps.calls == []

    def offline(request: requests.PreparedRequest) -> tuple[int, str]:
        raise requests.ConnectionError("Max retries exceeded with url: /v2/stocks/bars")

    unreachable, _ = alpaca_stock_client(recorded_session, offline)
    with pytest.raises(ProviderUnavailable):
        AlpacaBarProvider(
            None, None, stock_client=unreachable, retry=fast_retry, limiter=unlimited
        ).fetch_bars("AAPL", Timeframe.D1, to_ns("2024-01-01"), to_ns("2024-01-05"))
    with pytest.raises(ProviderError, match="API key"):
        AlpacaBarProvider(None, None, retry=fast_retry, limiter=unlimited).fetch_bars(
            "AAPL", Timeframe.D1, 0, 1
        )


def test_alpaca_crypto_bars_need_no_keys(
    fast_retry: RetryPolicy, unlimited: TokenBucket, fixture_text: Text, recorded_session: Session
) -> None:
    client = CryptoHistoricalDataClient(raw_data=True)
    session, adapter = recorded_session(
        lambda request: (200, fixture_text("alpaca_crypto_bars_btcusd_1h.json"))
    )
    client._session = session
    provider = AlpacaBarProvider(None, None, crypto_client=client, retry=fast_retry, limiter=unlimited)
    bars = provider.fetch_bars("BTC/USD", Timeframe.H1, to_ns("2024-01-01"), to_ns("2024-01-01T03:00:00Z"))
    assert len(bars) == 3 and bars.close.tolist() == [42470.3, 42610.0, 42577.95]
    assert "/v1beta3/crypto/us/bars" in (adapter.requests[0].url or "")
