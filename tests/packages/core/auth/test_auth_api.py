from __future__ import annotations

import uuid
from typing import Any

import httpx


async def test_register_login_me(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    me = await api.get("/auth/me", headers=account.headers)
    assert me.status_code == 200
    assert me.json()["email"] == account.email

    login = await api.post("/auth/login", json={"email": account.email.upper(), "password": account.password})
    assert login.status_code == 200
    assert login.json()["user"]["id"] == account.user_id


async def test_duplicate_registration_is_a_generic_conflict(
    api: httpx.AsyncClient, make_account: Any
) -> None:
    account = await make_account()
    response = await api.post(
        "/auth/register", json={"email": account.email.upper(), "password": "another-password"}
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "conflict"
    # The answer names no account: it neither echoes the email nor says that an account exists.
    assert account.email.split("@")[0] not in response.text.lower()
    assert "log in" in response.json()["detail"]
    assert "exists" not in response.json()["detail"]


async def test_wrong_password_and_unknown_email_look_the_same(
    api: httpx.AsyncClient, make_account: Any
) -> None:
    account = await make_account()
    wrong = await api.post("/auth/login", json={"email": account.email, "password": "wrong-password"})
    unknown = await api.post(
        "/auth/login", json={"email": "nobody@example.com", "password": "wrong-password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_refresh_rotates_and_reuse_revokes_the_family(
    api: httpx.AsyncClient, make_account: Any
) -> None:
    account = await make_account()
    first = account.tokens["refresh_token"]
    rotated = await api.post("/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first
    assert (
        await api.get("/auth/me", headers={"Authorization": f"Bearer {rotated.json()['access_token']}"})
    ).status_code == 200

    replay = await api.post("/auth/refresh", json={"refresh_token": first})
    assert replay.status_code == 401
    # The leak detection revoked the whole family: the newest token is dead too.
    assert (await api.post("/auth/refresh", json={"refresh_token": second})).status_code == 401


async def test_logout_revokes_refresh(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    assert (
        await api.post("/auth/logout", json={"refresh_token": account.tokens["refresh_token"]})
    ).status_code == 204
    assert (
        await api.post("/auth/refresh", json={"refresh_token": account.tokens["refresh_token"]})
    ).status_code == 401


async def test_a_token_signed_with_the_published_dev_default_is_rejected(
    api: httpx.AsyncClient, make_account: Any, settings: Any
) -> None:
    from datetime import timedelta

    from packages.infra.security.tokens import issue_access_token

    account = await make_account()
    # The value the settings shipped as SECRET_KEY's default before dev secrets were generated.
    forged, _ = issue_access_token(
        uuid.UUID(account.user_id),
        secret="dev-insecure-secret-key-change-me",
        issuer=settings.auth.issuer,
        ttl=timedelta(minutes=5),
    )
    response = await api.get("/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert (await api.get("/auth/me", headers=account.headers)).status_code == 200


async def test_me_requires_a_valid_token(api: httpx.AsyncClient) -> None:
    missing = await api.get("/auth/me")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    forged = await api.get("/auth/me", headers={"Authorization": "Bearer abc.def.ghi"})
    assert forged.status_code == 401
    assert forged.json()["code"] == "unauthorized"


async def test_mcp_token_for_own_session_only(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    issued = await account.mcp_token(domains=["strategy", "market"], ttl_minutes=5)
    assert set(issued["servers"]) == {"strategy", "market"}
    assert issued["servers"]["strategy"].endswith("/strategy/mcp")

    foreign_session = await api.post(
        "/auth/mcp-token", json={"session_id": str(uuid.uuid4())}, headers=account.headers
    )
    assert foreign_session.status_code == 404

    bad_domain = await api.post("/auth/mcp-token", json={"domains": ["admin"]}, headers=account.headers)
    assert bad_domain.status_code == 422
    assert bad_domain.json()["errors"][0]["pointer"] == "/domains/0"
