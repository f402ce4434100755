"""What each MCP server says about itself: its version, and tool descriptions that match the data."""

from __future__ import annotations

from typing import Any

import httpx

from packages.core.system.service import APP_VERSION
from packages.shared_settings import MCP_DOMAINS
from tests.support.mcp_client import mcp_session

# How bars are stamped (the store's convention, README "Market data"): the tools must say the same.
STAMPS = ("intraday bar", "open time", "daily bar", "trading day at 00:00 UTC", "weekly bar", "Monday")


async def test_every_domain_reports_the_app_version(mcp_server: str, make_account: Any) -> None:
    account = await make_account()
    token = (await account.mcp_token())["token"]
    assert APP_VERSION
    for domain in MCP_DOMAINS:
        async with mcp_session(mcp_server, domain, token) as session:
            info = session.server_info
            assert info is not None
            assert (info.name, info.version) == (f"minsy-{domain}", APP_VERSION)


async def test_candle_and_regime_descriptions_match_the_data(
    mcp_server: str, make_account: Any, api: httpx.AsyncClient
) -> None:
    account = await make_account()
    token = (await account.mcp_token(domains=["market"]))["token"]
    async with mcp_session(mcp_server, "market", token) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    candles = tools["get_candles"].description or ""
    assert "Timestamps are bar opens" not in candles
    assert all(words in candles for words in STAMPS), candles
    regime = tools["get_regime_snapshot"].description or ""
    assert "atr_to_price" in regime and "return_over_lookback" in regime and "fraction" in regime

    openapi = (await api.get("/openapi.json")).json()
    bars = next(path for name, path in openapi["paths"].items() if name.endswith("/market-data/bars"))
    assert all(words in bars["get"]["description"] for words in STAMPS), bars["get"]["description"]
