"""Stress tools through the official MCP client: create, poll, read the description, the items and the
Pareto front; bad calls are errors that say how to fix them; another user's test is not found."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.packages.core.stress.test_stress_api import FAST, SLOW, spx_document
from tests.support.mcp_client import mcp_session

EXPECTED_TOOLS = {
    "capabilities",
    "list_crisis_windows",
    "create_crisis_test",
    "create_monte_carlo",
    "create_sensitivity_scan",
    "create_optimisation",
    "create_walk_forward",
    "get_stress_test",
    "get_stress_items",
    "get_pareto_front",
    "cancel_stress_test",
    "list_stress_tests",
}


async def _finished(session: Any, test_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        result = await session.call_tool("get_stress_test", {"stress_test_id": test_id})
        assert not result.is_error, result.content
        test = result.structured_content
        if test["status"] in ("succeeded", "failed", "cancelled"):
            return dict(test)
        assert time.monotonic() < deadline, test
        await asyncio.sleep(0.2)


async def test_stress_tools_run_and_read_back(
    mcp_server: str,
    make_account: Any,
    api: httpx.AsyncClient,
    celery_workers: dict[str, str],
    market_data_ready: Any,
) -> None:
    account = await make_account()
    saved = await api.post("/strategies", json={"document": spx_document()}, headers=account.headers)
    strategy_id = saved.json()["id"]
    token = (await account.mcp_token(domains=["stress"]))["token"]
    async with mcp_session(mcp_server, "stress", token) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == EXPECTED_TOOLS
        assert all(tools[name].description for name in EXPECTED_TOOLS)
        creators = {name for name in EXPECTED_TOOLS if name.startswith("create_")}
        assert all(tools[n].annotations.read_only_hint is False for n in creators)
        assert tools["cancel_stress_test"].annotations.destructive_hint is True

        windows = (await session.call_tool("list_crisis_windows", {})).structured_content["result"]
        assert {"financial_crisis_2008", "ftx_collapse_2022"} <= {w["id"] for w in windows}

        started = await session.call_tool(
            "create_optimisation",
            {
                "strategy_id": strategy_id,
                "start": "2004-01-01",
                "end": "2012-01-01",
                "method": "random",
                "budget": 12,
                "seed": 4,
                "dimensions": [
                    {"pointer": FAST, "low": 5, "high": 30},
                    {"pointer": SLOW, "low": 35, "high": 120},
                ],
                "objectives": [{"metric": "sharpe"}, {"metric": "max_drawdown"}],
            },
        )
        assert not started.is_error, started.content
        done = await _finished(session, started.structured_content["id"])
        assert done["status"] == "succeeded", done["error"]
        assert done["description"].startswith("Best of 12 trials")
        items = (
            await session.call_tool("get_stress_items", {"stress_test_id": done["id"], "limit": 5})
        ).structured_content
        assert items["total"] == 12 and len(items["items"]) == 5 and items["next_cursor"]
        front = (
            await session.call_tool("get_pareto_front", {"stress_test_id": done["id"]})
        ).structured_content
        assert front["front"] and front["front"][0]["patch"][0]["path"] in (FAST, SLOW)

        # A bad call says what to fix, with a pointer.
        bad = await session.call_tool(
            "create_sensitivity_scan",
            {"strategy_id": strategy_id, "parameters": ["/factors/9/params/period"]},
        )
        assert (
            bad.is_error
            and "/parameters/0" in bad.content[0].text
            and "get_tunable_parameters" in bad.content[0].text
        )
        wrong_method = await session.call_tool(
            "create_monte_carlo", {"strategy_id": strategy_id, "method": "iid_bootstrap", "block_length": 5}
        )
        assert wrong_method.is_error and "block_length" in wrong_method.content[0].text

    stranger = await make_account()
    stranger_token = (await stranger.mcp_token(domains=["stress"]))["token"]
    async with mcp_session(mcp_server, "stress", stranger_token) as session:
        missing = await session.call_tool("get_stress_test", {"stress_test_id": done["id"]})
        assert missing.is_error and "not_found" in missing.content[0].text
