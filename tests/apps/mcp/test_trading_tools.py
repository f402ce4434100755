"""Trading tools through the official MCP client: money-moving tools never act on the model's word
(a preview and a token for the user, or the user's yes through elicitation), safety tools act at
once and are recorded with actor 'model', and another user's deployment is an error."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import ElicitResult

from packages.infra.db.models import ChatSession
from tests.packages.core.trading.trading_kit import REPLAY_START, new_trader
from tests.support.mcp_client import mcp_session

MONEY_MOVING = {"create_deployment", "start_deployment", "manual_action", "set_risk_limits"}
READ_ONLY = {
    "capabilities",
    "list_broker_accounts",
    "check_deployment_readiness",
    "list_deployments",
    "get_deployment",
    "get_positions",
    "get_orders",
    "get_fills",
    "get_pnl",
    "get_reconciliation",
}
EXPECTED_TOOLS = (
    MONEY_MOVING
    | READ_ONLY
    | {"create_paper_account", "pause_deployment", "stop_deployment", "set_kill_switch"}
)


async def _chat_token(trader: Any, api_app: Any) -> tuple[str, uuid.UUID]:
    async with api_app.state.resources.unit_of_work() as uow:
        chat = ChatSession(user_id=uuid.UUID(trader.account.user_id), title="paper trading")
        uow.session.add(chat)
    token = (await trader.account.mcp_token(domains=["trading"], session_id=str(chat.id)))["token"]
    return token, chat.id


def _deployment_arguments(trader: Any, **overrides: Any) -> dict[str, Any]:
    return {
        "strategy_id": trader.strategy_id,
        "capital": 5000,
        "clock": "replay",
        "replay_start": REPLAY_START,
        "replay_speed": 3600,
        **overrides,
    }


async def test_tools_preview_money_moving_actions_and_act_at_once_on_safety(
    mcp_server: str, api: httpx.AsyncClient, make_account: Any, api_app: Any
) -> None:
    trader = await new_trader(api, make_account)
    token, chat_id = await _chat_token(trader, api_app)
    async with mcp_session(mcp_server, "trading", token) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == EXPECTED_TOOLS
        assert all(tools[name].annotations.destructive_hint is True for name in MONEY_MOVING)
        assert all(tools[name].annotations.read_only_hint is True for name in READ_ONLY)
        assert tools["stop_deployment"].annotations.destructive_hint is True
        assert "idempotency_key" in tools["create_deployment"].input_schema["properties"]
        assert "idempotency_key" in tools["create_paper_account"].input_schema["properties"]

        accounts = [
            await session.call_tool(
                "create_paper_account",
                {"name": "From chat", "starting_cash": 2500, "idempotency_key": "acct-1"},
            )
            for _ in range(2)
        ]
        assert accounts[0].structured_content["id"] == accounts[1].structured_content["id"]
        assert accounts[0].structured_content["is_default"] is False  # the trader already has one
        listed = await session.call_tool("list_broker_accounts", {})
        assert len(listed.structured_content["items"]) == 2

        # create_deployment: the client cannot be asked, so nothing happens until the user confirms.
        created = await session.call_tool(
            "create_deployment", _deployment_arguments(trader, idempotency_key="dep-1")
        )
        assert not created.is_error, created.content
        outcome = created.structured_content
        assert outcome["status"] == "confirmation_required"
        assert "You cannot confirm it yourself" in outcome["message"]
        confirmation = outcome["confirmation"]
        assert (await api.get("/deployments", headers=trader.headers)).json()["items"] == []
        mcp_refused = await api.post(
            f"/confirmations/{confirmation['token']}", headers={"Authorization": f"Bearer {token}"}
        )
        assert mcp_refused.status_code == 403
        confirmed = await api.post(f"/confirmations/{confirmation['token']}", headers=trader.headers)
        deployment_id = confirmed.json()["deployment"]["id"]
        replayed = await session.call_tool(
            "create_deployment", _deployment_arguments(trader, idempotency_key="dep-1")
        )
        assert replayed.structured_content["status"] == "done"
        assert replayed.structured_content["confirmed"]["deployment"]["id"] == deployment_id

        readiness = await session.call_tool("check_deployment_readiness", {"deployment_id": deployment_id})
        assert readiness.structured_content["ready"] is True, readiness.structured_content
        start = await session.call_tool("start_deployment", {"deployment_id": deployment_id})
        assert start.structured_content["status"] == "confirmation_required"
        assert "Start the paper deployment" in start.structured_content["confirmation"]["summary"]
        token_of_start = start.structured_content["confirmation"]["token"]
        assert (await api.post(f"/confirmations/{token_of_start}", headers=trader.headers)).status_code == 200

        # Safety tools act at once, recorded as the model's, with its chat session.
        paused = await session.call_tool(
            "pause_deployment", {"deployment_id": deployment_id, "reason": "user asked"}
        )
        assert paused.structured_content["status"] == "paused"
        flatten = await session.call_tool(
            "manual_action", {"deployment_id": deployment_id, "action": "flatten"}
        )
        assert flatten.structured_content["status"] == "recorded"
        assert flatten.structured_content["manual_action"]["actor"] == "model"
        opening = await session.call_tool(
            "manual_action",
            {
                "deployment_id": deployment_id,
                "action": "open",
                "symbol": "SYNTH-PT",
                "direction": "long",
                "quantity": 3,
            },
        )
        assert opening.is_error and "only be opened in an active deployment" in opening.content[0].text
        bad = await session.call_tool("manual_action", {"deployment_id": deployment_id, "action": "reduce"})
        assert bad.is_error and "/symbol" in bad.content[0].text  # the pointer names the argument
        switch = await session.call_tool(
            "set_kill_switch",
            {"scope": "deployment", "deployment_id": deployment_id, "reason": "model saw a spike"},
        )
        assert switch.structured_content["set_by"] == "model"
        raised = await session.call_tool(
            "set_risk_limits", {"deployment_id": deployment_id, "risk_limits": {"max_daily_loss": 0.5}}
        )
        assert raised.structured_content["status"] == "confirmation_required"
        tighter = await session.call_tool(
            "set_risk_limits", {"deployment_id": deployment_id, "risk_limits": {"max_daily_loss": 0.01}}
        )
        assert tighter.structured_content["status"] == "done"
        assert tighter.structured_content["deployment"]["risk_limits"]["max_daily_loss"] == 0.01
        reconciliation = await session.call_tool("get_reconciliation", {"deployment_id": deployment_id})
        assert (
            reconciliation.is_error
            and "not available until the deployment has run" in reconciliation.content[0].text
        )
        stopped = await session.call_tool("stop_deployment", {"deployment_id": deployment_id})
        assert stopped.structured_content["status"] == "stopped"
        for name in ("get_positions", "get_orders", "get_fills", "get_pnl", "get_deployment"):
            result = await session.call_tool(name, {"deployment_id": deployment_id})
            assert not result.is_error, (name, result.content)

    transitions = (await api.get(f"/deployments/{deployment_id}/transitions", headers=trader.headers)).json()[
        "items"
    ]
    assert [(t["to_value"], t["actor"]) for t in reversed(transitions)] == [
        ("pending", "user"),
        ("active", "user"),
        ("paused", "model"),
        ("stopped", "model"),
    ]
    assert transitions[1]["reason"] == f"paused by the model (chat session {chat_id}): user asked"

    # Another user's deployment is not theirs to see or touch.
    stranger = await make_account()
    stranger_token = (await stranger.mcp_token(domains=["trading"]))["token"]
    async with mcp_session(mcp_server, "trading", stranger_token) as session:
        for name in ("get_deployment", "pause_deployment", "start_deployment", "get_positions"):
            result = await session.call_tool(name, {"deployment_id": deployment_id})
            assert result.is_error and "not_found" in result.content[0].text, name
        refused = await session.call_tool("set_kill_switch", {"scope": "global", "reason": "all"})
        assert refused.is_error


@asynccontextmanager
async def modern_client(
    mcp_server: str, token: str, answer: ElicitResult
) -> AsyncIterator[tuple[Client, list[str]]]:
    """The SDK's high-level client on the 2026-07-28 protocol, whose elicitation rides inside the tool
    call; ``answer`` is what its user says to every question (the questions are collected)."""
    asked: list[str] = []

    async def user(context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return answer

    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        transport = streamable_http_client(f"{mcp_server}/trading/mcp", http_client=http)
        async with Client(transport, elicitation_callback=user) as client:
            yield client, asked


async def test_a_client_that_can_ask_its_user_confirms_through_elicitation(
    mcp_server: str, api: httpx.AsyncClient, make_account: Any
) -> None:
    trader = await new_trader(api, make_account)
    token = (await trader.account.mcp_token(domains=["trading"]))["token"]
    async with modern_client(mcp_server, token, ElicitResult(action="accept", content={"confirm": True})) as (
        client,
        asked,
    ):
        created = await client.call_tool("create_deployment", _deployment_arguments(trader))
        assert created.structured_content["status"] == "done", created.content
        deployment = created.structured_content["confirmed"]["deployment"]
        assert deployment["status"] == "pending"
        assert (
            len(asked) == 1
            and "Create the paper deployment" in asked[0]
            and "Do exactly this now?" in asked[0]
        )
        started = await client.call_tool("start_deployment", {"deployment_id": deployment["id"]})
        assert started.structured_content["confirmed"]["deployment"]["status"] == "active"
        # A safety action asks nothing.
        paused = await client.call_tool("pause_deployment", {"deployment_id": deployment["id"]})
        assert paused.structured_content["status"] == "paused" and len(asked) == 2

    async with modern_client(mcp_server, token, ElicitResult(action="decline")) as (client, asked):
        declined = await client.call_tool("create_deployment", _deployment_arguments(trader, capital=100))
        outcome = declined.structured_content
        assert outcome["status"] == "confirmation_required" and "did not confirm" in outcome["message"]
        assert len(asked) == 1
    items = (await api.get("/deployments", headers=trader.headers)).json()["items"]
    assert [d["id"] for d in items] == [deployment["id"]]  # the declined one was not created
    transitions = (
        await api.get(f"/deployments/{deployment['id']}/transitions", headers=trader.headers)
    ).json()["items"]
    assert [(t["to_value"], t["actor"]) for t in reversed(transitions)] == [
        ("pending", "model"),
        ("active", "model"),
        ("paused", "model"),
    ]
    # The user can still change their mind in the app, within the token's lifetime.
    late = await api.post(f"/confirmations/{outcome['confirmation']['token']}", headers=trader.headers)
    assert late.status_code == 200 and late.json()["deployment"]["capital"] == 100
