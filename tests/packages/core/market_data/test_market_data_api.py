"""Symbols, bars, pagination, quotes and the UDF datafeed over the cold-started store (real data)."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.packages.core.market_data.helpers import bars_frame, csv_bytes, get_bars, synthetic_minutes, upload

PACKAGED = {
    ("us_stocks", "AAPL"),
    ("us_stocks", "MSFT"),
    ("us_stocks", "IBM"),
    ("us_stocks", "GOOG"),
    ("us_stocks", "SPX"),
    ("us_stocks", "IXIC"),
    ("forex", "EURUSD"),
}
PANDAS_RULES = {
    "1m": "1min",
    "5m": "5min",
    "15m": "15min",
    "30m": "30min",
    "1h": "1h",
    "2h": "2h",
    "4h": "4h",
    "1d": "1D",
    "1w": "W-MON",
}
OHLCV = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def pandas_resample(frame: pd.DataFrame, rule: str) -> pd.DataFrame:
    return frame.resample(rule, label="left", closed="left").agg(OHLCV).dropna()


async def test_cold_start_from_a_fresh_data_dir_serves_real_symbols(
    api: httpx.AsyncClient, make_account: Any, market_data_ready: dict[str, Any], settings: Any
) -> None:
    assert str(settings.market_data.store_dir).startswith(str(settings.runtime.data_dir))
    assert "minsy-test-" in str(settings.runtime.data_dir)  # the session's fresh data folder
    account = await make_account()
    listed = (await api.get("/market-data/symbols", params={"limit": 500}, headers=account.headers)).json()
    shared = {(item["market"], item["symbol"]) for item in listed["items"] if item["scope"] == "shared"}
    assert shared >= PACKAGED
    forex = (
        await api.get("/market-data/symbols", params={"market": "forex"}, headers=account.headers)
    ).json()
    assert {item["market"] for item in forex["items"]} == {"forex"}
    assert any(item["symbol"] == "EURUSD" and item["timeframes"] == ["1h"] for item in forex["items"])
    search = (await api.get("/market-data/symbols", params={"q": "ms"}, headers=account.headers)).json()
    assert [item["symbol"] for item in search["items"]] == ["MSFT"]

    detail = (await api.get("/market-data/symbols/us_stocks/AAPL", headers=account.headers)).json()
    dataset = detail["datasets"][0]
    assert dataset["timeframe"] == "1d" and dataset["source"] == "archive"
    assert dataset["coverage_start"].startswith("2000-03-01") and dataset["coverage_end"].startswith(
        "2013-03-01"
    )
    assert dataset["row_count"] == 3270
    assert dataset["provenance"]["package"] == "bokeh-sampledata" and "licence" in dataset["provenance"]
    assert detail["servable_timeframes"] == ["1d", "1w"]
    assert detail["session"]["timezone"] == "America/New_York"
    missing = await api.get("/market-data/symbols/us_stocks/NOPE", headers=account.headers)
    assert missing.status_code == 404 and "list" in missing.json()["detail"].lower()
    assert (await api.get("/market-data/symbols")).status_code == 401

    status = (await api.get("/status")).json()["market_data"]
    assert status["status"] == "ok" and status["info"]["state"] == "done"
    inventory = status["info"]["inventory"]
    assert inventory["datasets"] >= len(PACKAGED)
    assert inventory["markets"]["us_stocks"] >= 6 and inventory["markets"]["forex"] >= 1
    assert {"1d", "1h"} <= set(inventory["timeframes"])
    assert market_data_ready["archives"][0]["name"] == "minsy-demo-packaged"


async def test_every_timeframe_is_served_and_matches_pandas(
    api: httpx.AsyncClient, make_account: Any, market_data_ready: dict[str, Any]
) -> None:
    account = await make_account()
    # SYNTHETIC one-minute crypto bars (24/7 UTC sessions), imported as this user's private dataset.
    minutes = synthetic_minutes("2024-01-03 00:00", 10 * 24 * 60)
    response = await upload(
        api,
        account.headers,
        csv_bytes(minutes),
        mapping={"ts": "time"},
        market="crypto",
        symbol="SYNTH-1M",
        timeframe="1m",
        timezone="UTC",
    )
    assert response.status_code == 201, response.text
    source = minutes.assign(ts=pd.to_datetime(minutes["time"], utc=True)).set_index("ts")[list(OHLCV)]
    for timeframe, rule in PANDAS_RULES.items():
        served = bars_frame(
            await get_bars(
                api, account.headers, market="crypto", symbol="SYNTH-1M", timeframe=timeframe, limit=5000
            )
        )
        expected = pandas_resample(source, rule)
        assert list(served.index) == list(expected.index), timeframe
        np.testing.assert_allclose(served[list(OHLCV)].to_numpy(), expected.to_numpy(), rtol=1e-12)

    # Real daily AAPL to weekly: trading weeks labelled by their Monday.
    daily = bars_frame(
        await get_bars(api, account.headers, market="us_stocks", symbol="AAPL", timeframe="1d", limit=5000)
    )[list(OHLCV)]
    weekly = bars_frame(
        await get_bars(api, account.headers, market="us_stocks", symbol="AAPL", timeframe="1w", limit=5000)
    )
    expected_weekly = pandas_resample(daily, "W-MON")
    assert list(weekly.index) == list(expected_weekly.index)
    np.testing.assert_allclose(weekly[list(OHLCV)].to_numpy(), expected_weekly.to_numpy(), rtol=1e-12)

    # Real hourly EURUSD serves 2h/4h/1d/1w, and refuses a finer timeframe with a reason.
    for timeframe in ("1h", "2h", "4h", "1d", "1w"):
        page = await api.get(
            "/market-data/bars",
            params={"market": "forex", "symbol": "EURUSD", "timeframe": timeframe, "limit": 10},
            headers=account.headers,
        )
        assert page.status_code == 200 and page.json()["count"] == 10 and page.json()["served_from"] == "1h"
    finer = await api.get(
        "/market-data/bars",
        params={"market": "forex", "symbol": "EURUSD", "timeframe": "15m"},
        headers=account.headers,
    )
    assert finer.status_code == 422 and finer.json()["errors"][0]["code"] == "timeframe_not_servable"


async def test_cursor_pagination_round_trip(
    api: httpx.AsyncClient, make_account: Any, market_data_ready: dict[str, Any]
) -> None:
    account = await make_account()
    query = {
        "market": "us_stocks",
        "symbol": "MSFT",
        "timeframe": "1d",
        "start": "2005-01-01T00:00:00Z",
        "end": "2010-01-01T00:00:00Z",
    }
    whole = (
        await api.get("/market-data/bars", params={**query, "limit": 5000}, headers=account.headers)
    ).json()
    # NYSE sessions 2005-2009: 252 + 251 + 251 + 253 + 252
    assert whole["next_cursor"] is None and whole["count"] == 1259
    paged = await get_bars(api, account.headers, **query, limit=300)
    assert paged == whole["bars"]
    first = (
        await api.get("/market-data/bars", params={**query, "limit": 300}, headers=account.headers)
    ).json()
    assert first["count"] == 300 and first["next_cursor"]
    other_query = await api.get(
        "/market-data/bars",
        params={**query, "symbol": "IBM", "cursor": first["next_cursor"]},
        headers=account.headers,
    )
    assert other_query.status_code == 422 and other_query.json()["errors"][0]["code"] == "invalid_cursor"
    garbage = await api.get("/market-data/bars", params={**query, "cursor": "%%%"}, headers=account.headers)
    assert garbage.status_code == 422
    too_long = await api.get("/market-data/bars", params={**query, "limit": 5001}, headers=account.headers)
    assert too_long.status_code == 422


async def test_udf_datafeed(
    api: httpx.AsyncClient, make_account: Any, market_data_ready: dict[str, Any]
) -> None:
    account = await make_account()
    headers = account.headers
    config = (await api.get("/market-data/udf/config", headers=headers)).json()
    assert config["supports_search"] and "1D" in config["supported_resolutions"]
    found = (await api.get("/market-data/udf/search", params={"query": "AAP"}, headers=headers)).json()
    assert found[0]["ticker"] == "us_stocks:AAPL"
    info = (
        await api.get("/market-data/udf/symbols", params={"symbol": "us_stocks:AAPL"}, headers=headers)
    ).json()
    assert info["supported_resolutions"] == ["1D", "1W"] and info["has_intraday"] is False
    assert (await api.get("/market-data/udf/symbols", params={"symbol": "EURUSD"}, headers=headers)).json()[
        "intraday_multipliers"
    ] == ["60", "120", "240"]

    start, end = datetime(2013, 2, 1, tzinfo=UTC), datetime(2013, 2, 28, tzinfo=UTC)
    history = (
        await api.get(
            "/market-data/udf/history",
            params={
                "symbol": "us_stocks:AAPL",
                "resolution": "1D",
                "from": int(start.timestamp()),
                "to": int(end.timestamp()),
            },
            headers=headers,
        )
    ).json()
    bars = await get_bars(
        api,
        headers,
        market="us_stocks",
        symbol="AAPL",
        timeframe="1d",
        start=start.isoformat(),
        end="2013-03-01",
    )
    assert history["s"] == "ok" and set(history) >= {"t", "o", "h", "l", "c", "v"}
    assert history["t"] == [int(datetime.fromisoformat(b["ts"]).timestamp()) for b in bars]
    assert history["c"] == [b["close"] for b in bars] and history["v"] == [b["volume"] for b in bars]

    countback = (
        await api.get(
            "/market-data/udf/history",
            params={
                "symbol": "us_stocks:AAPL",
                "resolution": "1D",
                "from": 0,
                "to": int(end.timestamp()),
                "countback": 5,
            },
            headers=headers,
        )
    ).json()
    assert countback["t"] == history["t"][-5:]

    after = datetime(2013, 3, 10, tzinfo=UTC)
    empty = (
        await api.get(
            "/market-data/udf/history",
            params={
                "symbol": "us_stocks:AAPL",
                "resolution": "1D",
                "from": int(after.timestamp()),
                "to": int(after.timestamp()) + 86_400 * 7,
            },
            headers=headers,
        )
    ).json()
    assert empty == {**empty, "s": "no_data", "nextTime": int(datetime(2013, 3, 1, tzinfo=UTC).timestamp())}
    bad = await api.get(
        "/market-data/udf/history",
        params={"symbol": "us_stocks:AAPL", "resolution": "7", "from": 0, "to": 10},
        headers=headers,
    )
    assert bad.status_code == 422


async def test_replay_refresh_publishes_latest_bars_and_serves_quotes(
    api: httpx.AsyncClient, make_account: Any, api_app: Any, market_data_ready: dict[str, Any]
) -> None:
    from packages.core.market_data.realtime import channel, refresh_realtime
    from packages.core.resources import Resources

    resources = api_app.state.resources
    # A subscription of its own (IBM daily), so a running beat never races this test.
    settings = copy.copy(resources.settings)
    settings.market_data = settings.market_data.model_copy(
        update={"realtime_symbols": ["us_stocks:IBM:1d"], "replay_speed": 86_400.0}
    )
    isolated = Resources(
        settings=settings,
        engine=resources.engine,
        session_factory=resources.session_factory,
        redis=resources.redis,
        celery=resources.celery,
    )
    for key in await resources.redis.keys("minsy:market:*IBM*"):
        await resources.redis.delete(key)
    pubsub = resources.redis.pubsub()
    await pubsub.subscribe(channel("us_stocks", "IBM"))
    try:
        assert (await refresh_realtime(isolated))["published"] == 1
        message = None
        for _ in range(50):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message:
                break
        assert message is not None
        first = json.loads(message["data"])
        assert first["source"] == "replay" and first["bar"]["close"] > 0
        # A day of market time per wall second: a couple of seconds later the next bar has closed.
        await asyncio.sleep(2.2)
        assert (await refresh_realtime(isolated))["published"] == 1
        second = None
        for _ in range(50):
            second = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if second:
                break
        assert second is not None
        assert json.loads(second["data"])["bar"]["ts"] > first["bar"]["ts"]
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()

    account = await make_account()
    quote = (
        await api.get(
            "/market-data/quote", params={"market": "us_stocks", "symbol": "IBM"}, headers=account.headers
        )
    ).json()
    assert quote["source"] == "replay" and quote["bar"]["ts"] == json.loads(second["data"])["bar"]["ts"]
    assert quote["quote"]["bid"] < quote["quote"]["last"] < quote["quote"]["ask"]
    # Not subscribed, not cached: the replay clock answers on demand, from real stored bars.
    goog = (
        await api.get(
            "/market-data/quote", params={"market": "us_stocks", "symbol": "GOOG"}, headers=account.headers
        )
    ).json()
    assert goog["source"] == "replay" and goog["bar"]["ts"] >= "2004-08-19"
    assert (
        await api.get(
            "/market-data/quote", params={"market": "crypto", "symbol": "NOPE"}, headers=account.headers
        )
    ).status_code == 404


@pytest.mark.parametrize(
    ("params", "pointer"),
    [
        ({"start": "2010-01-01T00:00:00Z", "end": "2009-01-01T00:00:00Z"}, "/query/end"),
        ({"start": "1850-01-01T00:00:00Z", "end": "2009-01-01T00:00:00Z"}, "/query/start"),
    ],
)
async def test_gap_ranges_are_bounded(
    api: httpx.AsyncClient,
    make_account: Any,
    market_data_ready: dict[str, Any],
    params: dict[str, str],
    pointer: str,
) -> None:
    account = await make_account()
    response = await api.get(
        "/market-data/gaps",
        params={"market": "us_stocks", "symbol": "AAPL", "timeframe": "1d", **params},
        headers=account.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"].startswith(pointer)
