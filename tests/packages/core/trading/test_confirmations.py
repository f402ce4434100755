"""Confirmations the model cannot give itself: a preview bound to one exact action, a token only the
user's API sign-in redeems, once, before it expires; every step audited."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from packages.infra.db.models import AuditRecord, Confirmation
from tests.packages.core.trading.trading_kit import create_deployment, deployment_body, new_trader


async def _audit(api_app: Any, confirmation_id: str) -> list[tuple[str, Any]]:
    async with api_app.state.resources.session_factory() as session:
        rows = await session.scalars(
            select(AuditRecord).where(AuditRecord.subject_id == confirmation_id).order_by(AuditRecord.id)
        )
        return [(row.action, row.details.get("reason")) for row in rows.all()]


async def test_a_preview_runs_once_with_the_users_api_token_only(
    api: httpx.AsyncClient, make_account: Any, api_app: Any
) -> None:
    trader = await new_trader(api, make_account)
    preview = (await api.post("/deployments", json=deployment_body(trader), headers=trader.headers)).json()
    token = preview["token"]
    assert token.startswith("cfm_") and len(preview["action_hash"]) == 64
    assert "POST /api/v1/confirmations/" + token in preview["confirm_with"]

    async with api_app.state.resources.session_factory() as session:
        row = await session.scalar(
            select(Confirmation).where(Confirmation.id == uuid.UUID(preview["confirmation_id"]))
        )
    assert row is not None
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()  # only the hash is kept
    assert token not in str(row.payload) + str(row.preview) + str(row.result)
    assert row.requested_via == "api" and row.status == "pending"

    shown = await api.get(f"/confirmations/{token}", headers=trader.headers)
    assert shown.status_code == 200
    assert (shown.json()["status"], shown.json()["summary"]) == ("pending", preview["summary"])

    # A model holding an MCP token of this very user cannot confirm, nor even look.
    mcp = (await trader.account.mcp_token(domains=["trading"]))["token"]
    for method in ("GET", "POST"):
        refused = await api.request(
            method, f"/confirmations/{token}", headers={"Authorization": f"Bearer {mcp}"}
        )
        assert refused.status_code == 403, refused.text
        assert "MCP token cannot confirm" in refused.json()["detail"]
    assert (await api.post(f"/confirmations/{token}")).status_code == 401
    stranger = await make_account()
    assert (await api.post(f"/confirmations/{token}", headers=stranger.headers)).status_code == 404

    # The app may say which action it showed; another one is refused without spending the token.
    other = await api.post(f"/confirmations/{token}", json={"action_hash": "0" * 64}, headers=trader.headers)
    assert other.status_code == 409 and other.json()["reason"] == "action_changed"
    done = await api.post(
        f"/confirmations/{token}", json={"action_hash": preview["action_hash"]}, headers=trader.headers
    )
    assert done.status_code == 200, done.text
    assert done.json()["deployment"]["status"] == "pending"
    again = await api.post(f"/confirmations/{token}", headers=trader.headers)
    assert again.status_code == 409 and again.json()["reason"] == "already_used"
    assert (await api.get("/deployments", headers=trader.headers)).json()["items"][0]["id"] == done.json()[
        "deployment"
    ]["id"]
    assert len((await api.get("/deployments", headers=trader.headers)).json()["items"]) == 1
    assert (await api.get(f"/confirmations/{token}", headers=trader.headers)).json()["status"] == "confirmed"

    assert await _audit(api_app, preview["confirmation_id"]) == [
        ("issued", None),
        ("refused", "action_mismatch"),
        ("confirmed", None),
        ("refused", "already_used"),
    ]


async def test_tokens_expire_and_a_changed_action_needs_a_new_one(
    api: httpx.AsyncClient, make_account: Any, api_app: Any
) -> None:
    trader = await new_trader(api, make_account)
    first = (
        await api.post("/deployments", json=deployment_body(trader, capital=1000), headers=trader.headers)
    ).json()
    second = (
        await api.post("/deployments", json=deployment_body(trader, capital=2000), headers=trader.headers)
    ).json()
    # A different action is a different token and hash; each runs exactly its own action.
    assert first["token"] != second["token"] and first["action_hash"] != second["action_hash"]
    async with api_app.state.resources.session_factory() as session, session.begin():
        await session.execute(
            update(Confirmation)
            .where(Confirmation.id == uuid.UUID(first["confirmation_id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    expired = await api.post(f"/confirmations/{first['token']}", headers=trader.headers)
    assert expired.status_code == 409 and expired.json()["reason"] == "expired"
    assert (await api.get(f"/confirmations/{first['token']}", headers=trader.headers)).json()[
        "status"
    ] == "expired"
    made = (await api.post(f"/confirmations/{second['token']}", headers=trader.headers)).json()["deployment"]
    assert made["capital"] == 2000

    # Starting is previewed against the deployment as it is; when it changes before the user
    # confirms (here its limits are tightened), the token no longer holds.
    deployment = await create_deployment(api, trader, capital=500)
    start = (await api.post(f"/deployments/{deployment['id']}/start", headers=trader.headers)).json()
    tightened = await api.put(
        f"/deployments/{deployment['id']}/risk-limits", json={"max_drawdown": 0.05}, headers=trader.headers
    )
    assert tightened.status_code == 200
    stale = await api.post(f"/confirmations/{start['token']}", headers=trader.headers)
    assert stale.status_code == 409 and stale.json()["reason"] == "action_changed", stale.text
    assert (await api.get(f"/confirmations/{start['token']}", headers=trader.headers)).json()[
        "status"
    ] == "refused"
    assert (await api.get(f"/deployments/{deployment['id']}", headers=trader.headers)).json()[
        "status"
    ] == "pending"
    fresh = (await api.post(f"/deployments/{deployment['id']}/start", headers=trader.headers)).json()
    assert fresh["token"] != start["token"]
    assert (await api.post(f"/confirmations/{fresh['token']}", headers=trader.headers)).json()["deployment"][
        "status"
    ] == "active"
    assert [a for a, _ in await _audit(api_app, start["confirmation_id"])] == ["issued", "refused"]


async def test_idempotent_requests_get_the_same_confirmation_or_its_result(
    api: httpx.AsyncClient, make_account: Any
) -> None:
    trader = await new_trader(api, make_account)
    headers = {**trader.headers, "Idempotency-Key": "deploy-once"}
    body = deployment_body(trader)
    first = (await api.post("/deployments", json=body, headers=headers)).json()
    retry = await api.post("/deployments", json=body, headers=headers)
    assert retry.status_code == 202
    assert retry.json()["confirmation_id"] == first["confirmation_id"]
    # The retry's fresh token replaces the lost one.
    assert (await api.post(f"/confirmations/{first['token']}", headers=trader.headers)).status_code == 404
    created = (await api.post(f"/confirmations/{retry.json()['token']}", headers=trader.headers)).json()
    replay = await api.post("/deployments", json=body, headers=headers)
    assert replay.status_code == 200
    assert replay.json()["deployment"]["id"] == created["deployment"]["id"]
    reused = await api.post("/deployments", json={**body, "capital": 1}, headers=headers)
    assert reused.status_code == 422 and reused.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert len((await api.get("/deployments", headers=trader.headers)).json()["items"]) == 1
