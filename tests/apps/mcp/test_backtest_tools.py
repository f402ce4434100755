"""Backtest tools through the official MCP client: start a job, poll it to completion, read it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from packages.core.backtests.schemas import ANALYSIS_VIEWS
from packages.domain.strategy.examples import get_example
from tests.packages.core.backtests.helpers import submit, wait_for
from tests.support.mcp_client import mcp_session

EXPECTED_TOOLS = {
    "capabilities",
    "create_backtest",
    "get_backtest",
    "get_backtest_analysis",
    "get_backtest_trades",
    "get_trade_snapshot",
    "cancel_backtest",
    "list_backtests",
}


async def test_backtest_from_mcp_completes_and_reads_back(
    mcp_server: str,
    make_account: Any,
    api: httpx.AsyncClient,
    celery_workers: dict[str, str],
    market_data_ready: dict[str, Any],
) -> None:
    account = await make_account()
    saved = await api.post(
        "/strategies", json={"document": get_example("index_macd_long_short")}, headers=account.headers
    )
    strategy_id = saved.json()["id"]
    token = (await account.mcp_token(domains=["backtest"]))["token"]
    async with mcp_session(mcp_server, "backtest", token) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == EXPECTED_TOOLS
        assert all(tools[name].description for name in EXPECTED_TOOLS)
        assert tools["create_backtest"].annotations.read_only_hint is False
        assert tools["cancel_backtest"].annotations.destructive_hint is True
        assert all(
            tools[name].annotations.read_only_hint
            for name in EXPECTED_TOOLS - {"create_backtest", "cancel_backtest"}
        )

        arguments = {
            "strategy_id": strategy_id,
            "start": "2004-01-01",
            "end": "2010-01-01",
            "assumptions": {"fee_bps": 5, "initial_cash": 50_000},
            "idempotency_key": "mcp-first",
        }
        started = await session.call_tool("create_backtest", arguments)
        assert not started.is_error, started.content
        job = started.structured_content
        assert job["status"] == "queued" and job["assumptions"]["initial_cash"] == 50_000
        retried = (await session.call_tool("create_backtest", arguments)).structured_content
        assert retried["id"] == job["id"]

        deadline = time.monotonic() + 60
        while job["status"] not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, job
            await asyncio.sleep(0.05)
            job = (await session.call_tool("get_backtest", {"backtest_id": job["id"]})).structured_content
        assert job["status"] == "succeeded", job
        summary = job["summary"]
        assert summary["trades"] > 0 and summary["symbols"] == ["SPX", "IXIC"]
        assert {"total_return", "sharpe", "max_drawdown", "win_rate"} <= set(summary["key_metrics"])
        assert "metrics" not in job  # the compact form, not all metrics

        # The same job through REST agrees with what the model read.
        rest = (await api.get(f"/backtests/{job['id']}", headers=account.headers)).json()
        assert rest["summary"] == summary and rest["metrics"]["trades"] == summary["trades"]

        for view in ANALYSIS_VIEWS:
            analysis = await session.call_tool(
                "get_backtest_analysis", {"backtest_id": job["id"], "view": view, "points": 50}
            )
            assert not analysis.is_error, (view, analysis.content)
            assert analysis.structured_content["view"] == view
        long_short = (
            await session.call_tool("get_backtest_analysis", {"backtest_id": job["id"], "view": "long_short"})
        ).structured_content["data"]
        assert sum(row["trades"] for row in long_short) == summary["trades"]

        page = (
            await session.call_tool(
                "get_backtest_trades", {"backtest_id": job["id"], "offset": 1, "limit": 3}
            )
        ).structured_content
        assert page["total"] == summary["trades"] and [t["number"] for t in page["items"]] == [1, 2, 3]
        # Returns are fractions (0.0123 = 1.23%) in every output the model reads, as in the metrics.
        assert not any(name.endswith("_pct") for name in [*page["items"][0], *summary["key_metrics"]])
        for trade in page["items"]:
            notional = trade["quantity"] * trade["entry_price"]
            assert trade["trade_return"] == pytest.approx(trade["pnl"] / notional, rel=1e-12)
            assert trade["mae"] <= 0.0 <= trade["mfe"]
        snapshot = (
            await session.call_tool("get_trade_snapshot", {"backtest_id": job["id"], "trade_number": 1})
        ).structured_content
        assert snapshot["trade"] == page["items"][0]
        assert any("entry" in bar["marks"] for bar in snapshot["bars"])
        assert snapshot["leaves"] and all(leaf["label"] for leaf in snapshot["leaves"])

        listed = (await session.call_tool("list_backtests", {})).structured_content
        assert [item["id"] for item in listed["items"]] == [job["id"]]
        done = (await session.call_tool("cancel_backtest", {"backtest_id": job["id"]})).structured_content
        assert done["status"] == "succeeded" and "nothing to cancel" in done["message"]

        invalid = await session.call_tool("create_backtest", {"strategy_id": strategy_id, "document": {}})
        assert invalid.is_error and "exactly one" in invalid.content[0].text


async def test_another_users_backtest_is_an_error_in_mcp(
    mcp_server: str,
    make_account: Any,
    api: httpx.AsyncClient,
    celery_workers: dict[str, str],
    market_data_ready: dict[str, Any],
) -> None:
    owner, stranger = await make_account(), await make_account()
    body = {"document": get_example("sma_crossover_trend"), "start": "2011-01-01", "end": "2012-01-01"}
    job = (await submit(api, owner.headers, body)).json()
    await wait_for(api, owner.headers, job["id"])
    token = (await stranger.mcp_token(domains=["backtest"]))["token"]
    async with mcp_session(mcp_server, "backtest", token) as session:
        for tool, extra in (
            ("get_backtest", {}),
            ("get_backtest_analysis", {"view": "monthly_returns"}),
            ("get_backtest_trades", {}),
            ("get_trade_snapshot", {"trade_number": 0}),
            ("cancel_backtest", {}),
        ):
            result = await session.call_tool(tool, {"backtest_id": job["id"], **extra})
            assert result.is_error, tool
            assert "not_found" in result.content[0].text
        assert (await session.call_tool("list_backtests", {})).structured_content["items"] == []
