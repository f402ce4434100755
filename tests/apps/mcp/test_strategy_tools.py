from __future__ import annotations

import copy
import json
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


async def test_patch_errors_point_into_the_patch(
    mcp_server: str, make_account: Any, market_data_ready: dict[str, Any]
) -> None:
    account = await make_account()
    token = (await account.mcp_token(domains=["strategy"]))["token"]
    async with mcp_session(mcp_server, "strategy", token) as session:
        created = await session.call_tool("upsert_strategy", {"document": get_example("sma_crossover_trend")})
        sid = created.structured_content["id"]
        new_macd = {"id": "m", "indicator": "macd", "params": {"fast_period": 30, "slow_period": 10}}
        for operations, expected in [
            (
                [{"op": "replace", "path": "/timeframe", "value": "7m"}],
                "/patch/0/value: In the patched document at /timeframe:",
            ),
            (
                [{"op": "add", "path": "/factors/-", "value": new_macd}],
                "/patch/0/value/params/fast_period: In the patched document at /factors/2/params/fast_period:",
            ),
            (
                [{"op": "remove", "path": "/metadata/name"}],
                "/patch/0: In the patched document at /metadata/name:",
            ),
        ]:
            refused = await session.call_tool(
                "patch_strategy", {"strategy_id": sid, "patch": operations, "expected_version": 1}
            )
            assert refused.is_error and expected in refused.content[0].text, refused.content
        assert (await session.call_tool("get_strategy", {"strategy_id": sid})).structured_content[
            "current_version"
        ] == 1


MODERN_PROTOCOL = "2026-07-28"


async def _call_with_escapes(
    mcp_server: str, token: str, tool: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """A tools/call written as ASCII JSON, so lone surrogates travel as escapes. The official client
    cannot send them (it encodes requests as UTF-8), and the handshake-era transport refuses them
    while parsing; a single-exchange request (protocol 2026-07-28) hands them to the tool."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN_PROTOCOL,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "escapes", "version": "1"},
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": meta},
    }
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
        "mcp-protocol-version": MODERN_PROTOCOL,
        "mcp-method": "tools/call",
        "mcp-name": tool,
    }
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.post(
            f"{mcp_server}/strategy/mcp", content=json.dumps(body).encode("ascii"), headers=headers
        )
    assert response.status_code == 200, response.text
    return dict(response.json()["result"])


async def test_lone_surrogates_are_refused_with_a_pointer_and_nothing_is_stored(
    mcp_server: str, make_account: Any, market_data_ready: dict[str, Any]
) -> None:
    account = await make_account()
    token = (await account.mcp_token(domains=["strategy"]))["token"]
    document = copy.deepcopy(get_example("sma_crossover_trend"))
    async with mcp_session(mcp_server, "strategy", token) as session:
        sid = (await session.call_tool("upsert_strategy", {"document": document})).structured_content["id"]
    bad = copy.deepcopy(document)
    bad["metadata"]["name"] = "a\ud800b"
    cases = [
        ("upsert_strategy", {"document": bad}, "/document/metadata/name"),
        (
            "upsert_strategy",
            {"document": bad, "strategy_id": sid, "expected_version": 1},
            "/document/metadata/name",
        ),
        ("validate_strategy", {"document": bad}, "/document/metadata/name"),
        ("validate_strategy", {"document": {**document, "x-\udc80": 1}}, "/document:"),
        (
            "patch_strategy",
            {
                "strategy_id": sid,
                "patch": [{"op": "replace", "path": "/metadata/name", "value": "\udfff"}],
                "expected_version": 1,
            },
            "patch.0",
        ),
    ]
    for tool, arguments, where in cases:
        result = await _call_with_escapes(mcp_server, token, tool, arguments)
        text = result["content"][0]["text"]
        assert result["isError"] and "lone_surrogate" in text and where in text, (tool, text)
    async with mcp_session(mcp_server, "strategy", token) as session:
        listed = (await session.call_tool("list_strategies", {})).structured_content["items"]
        assert [(s["id"], s["current_version"]) for s in listed] == [(sid, 1)]
        stored = (await session.call_tool("get_strategy", {"strategy_id": sid})).structured_content
        assert stored["document"] == document


async def test_version_numbers_have_the_same_bounds_as_in_rest(
    mcp_server: str, make_account: Any, market_data_ready: dict[str, Any]
) -> None:
    account = await make_account()
    token = (await account.mcp_token(domains=["strategy"]))["token"]
    async with mcp_session(mcp_server, "strategy", token) as session:
        sid = (
            await session.call_tool("upsert_strategy", {"document": get_example("sma_crossover_trend")})
        ).structured_content["id"]
        for version, answer in [(2**31, "less than or equal to 2147483647"), (2**31 - 1, "not_found")]:
            for tool, arguments in [
                ("get_strategy_version", {"strategy_id": sid, "version": version}),
                ("diff_strategy_versions", {"strategy_id": sid, "from_version": 1, "to_version": version}),
                ("get_tunable_parameters", {"strategy_id": sid, "version": version}),
                ("rollback_strategy", {"strategy_id": sid, "version": version, "expected_version": 1}),
            ]:
                result = await session.call_tool(tool, arguments)
                assert result.is_error and answer in result.content[0].text, (tool, version, result.content)


async def test_tunable_parameters_are_the_same_over_mcp_and_rest(
    mcp_server: str, make_account: Any, api: httpx.AsyncClient, market_data_ready: dict[str, Any]
) -> None:
    account = await make_account()
    token = (await account.mcp_token(domains=["strategy"]))["token"]
    document = copy.deepcopy(get_example("bollinger_reversion_limit"))
    created = await api.post("/strategies", json={"document": document}, headers=account.headers)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    rest = (await api.get(f"/strategies/{sid}/tunable-parameters", headers=account.headers)).json()
    async with mcp_session(mcp_server, "strategy", token) as session:
        answer = await session.call_tool("get_tunable_parameters", {"strategy_id": sid})
    assert not answer.is_error, answer.content
    assert answer.structured_content == rest
    assert json.loads(answer.content[0].text) == rest
    by_label = {p["label"]: p for p in rest["parameters"]}
    valid_bars = by_label["long.order_valid_bars"]
    assert all(type(valid_bars[f]) is int for f in ("value", "minimum", "maximum")), valid_bars
    stop = by_label["long.stop.distance.value"]
    assert (stop["maximum"], stop["exclusive_maximum"]) == (100, True)
