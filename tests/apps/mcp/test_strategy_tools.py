from __future__ import annotations

import copy
from typing import Any

import httpx

from packages.domain.strategy.examples import get_example
from tests.support.mcp_client import mcp_session

EXPECTED_TOOLS = {
    "capabilities",
    "get_strategy_schema_document",
    "get_indicator_catalogue",
    "get_indicator_detail",
    "list_strategy_examples",
    "get_strategy_example",
    "validate_strategy",
    "upsert_strategy",
    "list_strategies",
    "get_strategy",
    "patch_strategy",
    "list_strategy_versions",
    "get_strategy_version",
    "diff_strategy_versions",
    "rollback_strategy",
    "get_tunable_parameters",
}


async def test_strategy_lifecycle_through_the_official_client(
    mcp_server: str, make_account: Any, api: httpx.AsyncClient, market_data_ready: dict[str, Any]
) -> None:
    account = await make_account()
    token = (await account.mcp_token(domains=["strategy"]))["token"]
    document = copy.deepcopy(get_example("rsi_mean_reversion"))
    async with mcp_session(mcp_server, "strategy", token) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) >= EXPECTED_TOOLS
        assert tools["patch_strategy"].annotations.read_only_hint is False
        assert tools["get_strategy"].annotations.read_only_hint is True

        schema = (await session.call_tool("get_strategy_schema_document", {})).structured_content
        rest_schema = (await api.get("/strategies/schema", headers=account.headers)).json()
        assert schema["json_schema"] == rest_schema  # one document, two surfaces

        broken = copy.deepcopy(document)
        broken["factors"][0]["indicator"] = "no_such_indicator"
        verdict = (await session.call_tool("validate_strategy", {"document": broken})).structured_content
        assert verdict["valid"] is False
        assert verdict["errors"][0]["pointer"].startswith("/factors/0")

        refused = await session.call_tool("upsert_strategy", {"document": broken})
        assert refused.is_error
        assert "/document/factors/0" in refused.content[0].text

        created = (await session.call_tool("upsert_strategy", {"document": document})).structured_content
        sid = created["id"]
        assert created["current_version"] == 1

        pointer = (await session.call_tool("get_tunable_parameters", {"strategy_id": sid})).structured_content
        first = pointer["parameters"][0]
        new_value = first["minimum"] + 1 if first["type"] == "int" else (first["value"] * 0.9)
        patched = await session.call_tool(
            "patch_strategy",
            {
                "strategy_id": sid,
                "patch": [{"op": "replace", "path": first["pointer"], "value": new_value}],
                "expected_version": 1,
            },
        )
        assert not patched.is_error, patched.content
        assert patched.structured_content["current_version"] == 2

        stale = await session.call_tool(
            "patch_strategy",
            {
                "strategy_id": sid,
                "patch": [{"op": "replace", "path": first["pointer"], "value": new_value}],
                "expected_version": 1,
            },
        )
        assert stale.is_error and "stale" in stale.content[0].text

        diff = (
            await session.call_tool(
                "diff_strategy_versions", {"strategy_id": sid, "from_version": 1, "to_version": 2}
            )
        ).structured_content
        assert diff["patch"] == [{"op": "replace", "path": first["pointer"], "value": new_value}]

        rolled = (
            await session.call_tool(
                "rollback_strategy", {"strategy_id": sid, "version": 1, "expected_version": 2}
            )
        ).structured_content
        assert rolled["current_version"] == 3 and rolled["document"] == document
        versions = (
            await session.call_tool("list_strategy_versions", {"strategy_id": sid})
        ).structured_content
        assert [v["change_type"] for v in versions["versions"]] == ["create", "patch", "rollback"]

        catalogue = (await session.call_tool("get_indicator_catalogue", {})).structured_content
        assert len(catalogue["indicators"]) >= 80
        examples = (await session.call_tool("list_strategy_examples", {})).structured_content
        assert len(examples["examples"]) >= 12

    # The same strategy through REST.
    assert (await api.get(f"/strategies/{sid}", headers=account.headers)).json()["current_version"] == 3


async def test_another_users_strategy_is_not_found_over_mcp(
    mcp_server: str, make_account: Any, market_data_ready: dict[str, Any]
) -> None:
    owner, intruder = await make_account(), await make_account()
    owner_token = (await owner.mcp_token(domains=["strategy"]))["token"]
    intruder_token = (await intruder.mcp_token(domains=["strategy"]))["token"]
    async with mcp_session(mcp_server, "strategy", owner_token) as session:
        created = await session.call_tool("upsert_strategy", {"document": get_example("sma_crossover_trend")})
        sid = created.structured_content["id"]
    async with mcp_session(mcp_server, "strategy", intruder_token) as session:
        for tool, args in [
            ("get_strategy", {"strategy_id": sid}),
            ("list_strategy_versions", {"strategy_id": sid}),
            ("get_tunable_parameters", {"strategy_id": sid}),
            ("rollback_strategy", {"strategy_id": sid, "version": 1, "expected_version": 1}),
        ]:
            result = await session.call_tool(tool, args)
            assert result.is_error and "not_found" in result.content[0].text, (tool, result.content)
        listed = (await session.call_tool("list_strategies", {})).structured_content
        assert listed["items"] == []
