"""Market tools through the official MCP client, over the store the real IO worker cold-started."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.packages.core.market_data.helpers import wait_for_cold_start
from tests.support.jobs import poll
from tests.support.mcp_client import mcp_session

EXPECTED_TOOLS = {
    "capabilities",
    "check_symbol_availability",
    "list_symbols",
    "get_coverage",
    "get_candles",
    "get_symbol_metadata",
    "get_regime_snapshot",
    "detect_missing_ranges",
    "fetch_missing_ranges",
    "get_sync_job",
    "cancel_sync_job",
}
STATE_CHANGING = {"fetch_missing_ranges", "cancel_sync_job"}


@pytest.fixture(scope="module")
async def stocked(celery_workers: dict[str, str], api_app: Any) -> None:
    """Wait for the cold start the IO worker enqueues when it becomes ready."""
    await wait_for_cold_start(api_app.state.resources)


async def test_market_tools_answer_through_the_official_client(
    mcp_server: str, make_account: Any, api: httpx.AsyncClient, stocked: None
) -> None:
    account = await make_account()
    token = (await account.mcp_token(domains=["market"]))["token"]
    async with mcp_session(mcp_server, "market", token) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == EXPECTED_TOOLS
        assert all(tools[name].annotations.read_only_hint for name in EXPECTED_TOOLS - STATE_CHANGING)
        assert not any(tools[name].annotations.read_only_hint for name in STATE_CHANGING)
        assert all(tools[name].description for name in EXPECTED_TOOLS)

        available = (
            await session.call_tool("check_symbol_availability", {"symbol": "aapl"})
        ).structured_content
        assert available["available"] and available["matches"][0]["market"] == "us_stocks"
        absent = (await session.call_tool("check_symbol_availability", {"symbol": "ZZZZ"})).structured_content
        assert absent["available"] is False

        forex = (await session.call_tool("list_symbols", {"market": "forex"})).structured_content
        assert [item["symbol"] for item in forex["items"]] == ["EURUSD"]
        stocks = (await session.call_tool("list_symbols", {"market": "us_stocks"})).structured_content
        first = (
            await session.call_tool("list_symbols", {"market": "us_stocks", "limit": 2})
        ).structured_content
        rest = (
            await session.call_tool(
                "list_symbols", {"market": "us_stocks", "limit": 200, "cursor": first["next_cursor"]}
            )
        ).structured_content
        assert first["items"] + rest["items"] == stocks["items"] and rest["next_cursor"] is None
        assert first["total"] == rest["total"] == len(stocks["items"]) > 2

        coverage = (
            await session.call_tool("get_coverage", {"market": "us_stocks", "symbol": "AAPL"})
        ).structured_content
        assert coverage["datasets"][0]["timeframe"] == "1d" and coverage["servable_timeframes"] == [
            "1d",
            "1w",
        ]
        metadata = (
            await session.call_tool("get_symbol_metadata", {"market": "forex", "symbol": "EURUSD"})
        ).structured_content
        assert metadata["session"]["calendar"] == "forex_17_new_york"
        assert "licence" in metadata["datasets"][0]["provenance"]

        candles = (
            await session.call_tool(
                "get_candles",
                {"market": "us_stocks", "symbol": "AAPL", "timeframe": "1w", "end": "2013-01-01", "limit": 5},
            )
        ).structured_content
        rest = (
            await api.get(
                "/market-data/bars",
                params={
                    "market": "us_stocks",
                    "symbol": "AAPL",
                    "timeframe": "1w",
                    "start": "2012-12-03",
                    "end": "2013-01-01",
                },
                headers=account.headers,
            )
        ).json()
        assert candles["candles"]["bars"] == rest["bars"] and len(rest["bars"]) == 5
        assert "resampled from stored 1d" in candles["note"]

        regime = (
            await session.call_tool(
                "get_regime_snapshot", {"market": "us_stocks", "symbol": "SPX", "trading_frequency": "swing"}
            )
        ).structured_content
        assert regime["timeframes"]["primary"] == "1d"
        assert set(regime["families"]) == {"trend_continuation", "mean_reversion", "volatility_regime"}

        window = {
            "market": "us_stocks",
            "symbol": "MSFT",
            "timeframe": "1d",
            "start": "2013-02-20",
            "end": "2013-04-01",
        }
        gaps = (await session.call_tool("detect_missing_ranges", window)).structured_content
        assert gaps["ranges"][0]["start"].startswith("2013-03-04") and gaps["scope"] == "shared"
        keyed = {**window, "idempotency_key": "mcp-fill"}
        job = (await session.call_tool("fetch_missing_ranges", keyed)).structured_content
        assert job["status"] == "queued" and job["chunks_total"] == 1
        again = (await session.call_tool("fetch_missing_ranges", keyed)).structured_content
        assert again["id"] == job["id"]
        reused = await session.call_tool("fetch_missing_ranges", {**keyed, "end": "2013-03-29"})
        assert reused.is_error and "/idempotency_key: " in reused.content[0].text
        assert "idempotency_key_reused" in reused.content[0].text

        async def read_job() -> dict[str, Any]:
            found: dict[str, Any] = (
                await session.call_tool("get_sync_job", {"job_id": job["id"]})
            ).structured_content
            return found

        job = await poll(read_job, lambda found: found["status"] not in ("queued", "running"), interval=0.3)
        assert job["status"] == "failed" and "MARKET_DATA_NETWORK_ENABLED" in job["chunks"][0]["error"]
        finished = (await session.call_tool("cancel_sync_job", {"job_id": job["id"]})).structured_content
        assert finished["status"] == "failed" and "nothing to cancel" in finished["message"]

        unknown = await session.call_tool(
            "get_candles", {"market": "us_stocks", "symbol": "ZZZZ", "timeframe": "1d"}
        )
        assert unknown.is_error and "list_symbols" in unknown.content[0].text
        too_many = await session.call_tool(
            "get_candles", {"market": "us_stocks", "symbol": "AAPL", "timeframe": "1d", "limit": 5000}
        )
        assert too_many.is_error
        finer = await session.call_tool(
            "get_candles", {"market": "us_stocks", "symbol": "AAPL", "timeframe": "1h"}
        )
        assert finer.is_error and "coarser timeframe" in finer.content[0].text

    stranger = await make_account()
    their_token = (await stranger.mcp_token(domains=["market"]))["token"]
    async with mcp_session(mcp_server, "market", their_token) as session:
        for tool in ("get_sync_job", "cancel_sync_job"):
            hidden = await session.call_tool(tool, {"job_id": job["id"]})
            assert hidden.is_error and "not_found" in hidden.content[0].text


async def test_market_tools_refuse_unstorable_text_and_far_dates_clearly(
    mcp_server: str, make_account: Any
) -> None:
    account = await make_account()
    token = (await account.mcp_token(domains=["market"]))["token"]
    day = {"market": "us_stocks", "symbol": "AAPL", "timeframe": "1d"}
    async with mcp_session(mcp_server, "market", token) as session:
        nul = await session.call_tool("list_symbols", {"query": "AA\x00PL"})
        assert nul.is_error and "NUL character" in nul.content[0].text
        refused = [
            ("check_symbol_availability", {"symbol": "AAPL\x00"}),
            ("get_coverage", {"market": "us_stocks", "symbol": "\x00"}),
            ("get_symbol_metadata", {"market": "us_stocks\x00", "symbol": "AAPL"}),
            ("get_candles", {**day, "end": "0000-01-01"}),
            ("get_candles", {**day, "start": "1677-01-01"}),
            ("detect_missing_ranges", {**day, "start": "2262-05-01", "end": "2263-01-01"}),
            ("fetch_missing_ranges", {**day, "symbol": "A\x00", "start": "2020-01-01", "end": "2020-02-01"}),
            (
                "get_regime_snapshot",
                {"market": "us_stocks", "symbol": "SPX\x00", "trading_frequency": "swing"},
            ),
        ]
        for tool, arguments in refused:
            result = await session.call_tool(tool, arguments)
            assert result.is_error, (tool, arguments)
            text = result.content[0].text.lower()
            assert "asyncpg" not in text and "sqlalchemy" not in text and "traceback" not in text, text
        after = await session.call_tool("list_symbols", {"query": "AAPL"})
        assert not after.is_error
